"""What the training scripts' command lines share.

* A resumed run keeps the settings its checkpoint recorded, and a flag given
  on the command line that would change one of them is refused rather than
  silently overridden. For that a script must know which flags the command
  line gave itself, a default value included: :func:`explicit_dests`.
* A file the run will write (the model, a plot, a checkpoint) must be
  writable before training starts, not found unwritable after it:
  :func:`output_path_problem`; and a checkpoint of another run is not
  overwritten unless asked: :func:`checkpoint_problem`.
"""

import argparse
import copy
import os
import tempfile


def explicit_dests(parser: argparse.ArgumentParser, argv=None) -> set[str]:
    """The destinations that ``argv`` (default: ``sys.argv[1:]``) sets itself.

    ``argv`` is parsed again by a copy of ``parser`` without its defaults,
    so a flag given with its default value (``--model plain``) counts as
    given, and one left out does not.
    """
    bare = copy.deepcopy(parser)
    for action in bare._actions:
        action.default = argparse.SUPPRESS
    return set(vars(bare.parse_args(argv)))


def flag(dest: str) -> str:
    """The command-line flag of a destination: ``"hidden_size"`` -> ``"--hidden-size"``."""
    return "--" + dest.replace("_", "-")


def output_path_problem(flag_name: str, path: str, example: str) -> str | None:
    """Why the file ``path`` (given with ``flag_name``) cannot be written, or None.

    Folders that do not exist yet count as writable where they can be
    created (the writers create them); the check writes and removes one
    temporary file in an existing folder. ``example`` is a file name the
    message suggests when ``path`` is a folder.
    """
    if os.path.isdir(path):
        return (f"{flag_name} {path} is a folder; give a file name in it, e.g. "
                f"{os.path.join(path, example)}")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{flag_name} {path}: {existing} is a file, not a folder"
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{flag_name} {path}: cannot create folders in {existing}"
        return None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"{flag_name} {path}: cannot write in {folder} ({exc.strerror})"
    return None


def checkpoint_problem(checkpoint: str | None, resume: str | None, overwrite: bool) -> str | None:
    """Why writing ``checkpoint`` would lose an earlier run, or None.

    An existing checkpoint file is another run's, unless it is the one
    being resumed; it is replaced only with ``overwrite``.
    """
    if not checkpoint or not os.path.exists(checkpoint) or overwrite:
        return None
    if resume and os.path.abspath(resume) == os.path.abspath(checkpoint):
        return None
    return (f"--checkpoint {checkpoint} exists already (an earlier run?): continue it with "
            f"--resume {checkpoint}, or pass --overwrite to replace it")
