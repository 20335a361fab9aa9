"""What the training scripts' command lines share.

A resumed run keeps the settings its checkpoint recorded, and a flag given
on the command line that would change one of them is refused rather than
silently overridden. For that a script must know which flags the command
line gave itself, a default value included: :func:`explicit_dests`.
"""

import argparse
import copy


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
