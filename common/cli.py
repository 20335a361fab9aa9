"""What the training scripts' command lines share.

* A resumed run keeps the settings its checkpoint recorded, and a flag given
  on the command line that would change one of them is refused rather than
  silently overridden. For that a script must know which flags the command
  line gave itself, a default value included: :func:`explicit_dests`.
* Help texts show every default that is a value, in words where the help
  says ``(default: ...)`` itself: :class:`HelpFormatter`.
* A number out of range is refused while the command line is read, with
  the range in the message: the argparse types :func:`at_least` (integers)
  and :func:`positive_float` (finite, above zero: not ``nan``, not ``inf``).
* What a diverging batch does, ``--on-nan``: :func:`add_on_nan_argument`.
* Every file a run will write is checked before it starts:
  :func:`output_flags_problem` (for one path,
  :func:`common.serialization.output_path_problem`, which ``fit`` uses too);
  and a checkpoint of another run is not overwritten unless asked:
  :func:`checkpoint_problem`.
* A run holds its checkpoint file's lock from start to end, and one that
  finds another training writing that file stops with a message:
  :func:`run_holding_checkpoint`.
* A path's leading ``~`` is the home folder, also where the shell leaves it
  as it is (``--save=~/m.npz``): the argparse types :func:`user_path` and
  :func:`plot_path`.
* A reader that stops reading (``| head``, quitting ``less``) does not end
  a run: :func:`outputs_may_close`; nor does a character that the output's
  encoding cannot hold: :func:`writable`, :func:`outputs_escaped`.
"""

import argparse
import contextlib
import copy
import errno
import math
import os
import sys
import warnings

from common.checkpoint import is_checkpoint_file, least_bytes, params_bytes
from common.plot import FORMATS, plot_format
from common.run_lock import CheckpointInUse, holding_checkpoint
from common.serialization import (
    folders_on_the_way,
    has_pickle_name,
    load_npz_meta,
    output_path_problem,
    replaced_size,
    same_file,
    space_problem,
    write_target,
)
from common.training_guards import MAX_SKIPS_IN_A_ROW
from common.units_html import PAGE_MARKS


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    """Defaults shown, except ``None`` (a help text says what no value means,
    ``(default: ...)`` in words where it needs to); the description's
    paragraphs and examples kept as written."""

    def _get_help_string(self, action):
        if "(default:" in (action.help or "") or action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_on_nan_argument(group) -> None:
    """Add ``--on-nan {raise,skip}`` (``fit``'s ``on_nan``) to an argparse group."""
    group.add_argument(
        "--on-nan", choices=["raise", "skip"], default="raise",
        help="a batch whose loss is NaN, infinite or far worse than guessing: 'raise' stops "
             "the run (the last checkpoint is kept), 'skip' drops the batch and goes on "
             f"(stopping after {MAX_SKIPS_IN_A_ROW} such batches in a row)")


@contextlib.contextmanager
def overflow_left_to_the_guard():
    """``with overflow_left_to_the_guard(): trainer.fit(...)``: NumPy's
    overflow and invalid-value warnings are not shown. The trainer's
    divergence guard reports a NaN or runaway loss in one line that says what
    to do; the warnings would only come before it, pointing into the library."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message="(overflow|invalid value) encountered")
        yield


def skipped_batches_notice(trainer) -> str | None:
    """The line to print after a run that skipped batches (``--on-nan skip``), or None."""
    n = trainer.skipped_batches
    if not n:
        return None
    return (f"notice: {n} batch{'es' if n != 1 else ''} with a NaN, infinite or runaway loss "
            f"{'were' if n != 1 else 'was'} skipped (--on-nan skip); a smaller --lr or clipping "
            f"may avoid {'them' if n != 1 else 'it'}")


def at_least(low: int, high: int | None = None):
    """An argparse ``type``: an integer of at least ``low`` (and at most ``high``)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def none_or(convert):
    """An argparse ``type``: ``none`` (any case) for None, the option's "off"
    (no clipping, no schedule, the model's own init), else ``convert(text)``;
    so that a script whose defaults turn an option on (a reproduction's
    clipping) can still be run without it."""
    def parse(text: str):
        return None if text.strip().lower() == "none" else convert(text)
    parse.__name__ = getattr(convert, "__name__", "value")  # argparse's "invalid float value"
    return parse


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


def output_flags_problem(args: argparse.Namespace, examples: dict[str, str],
                         inputs: tuple[str, ...] = (),
                         may_replace: tuple[tuple[str, str], ...] = ()) -> str | None:
    """Why one of the output files ``args`` names cannot be written, or None.

    ``examples`` maps each destination that names a file (``"save"``,
    ``"plot"`` ...) to the file name a message suggests when a folder is
    given; a destination ``args`` lacks or leaves empty is skipped. Two
    destinations may not name the same file: the one written last would
    replace the other (a model saved over the checkpoint leaves a run that
    cannot be resumed). Nor may an output name one of the input files of the
    destinations ``inputs`` (``"data"``, ``"load"`` ...): writing it would
    destroy what the run reads, ``--overwrite`` or not; except the pairs
    ``(output, input)`` of ``may_replace`` (``("save", "load")``: a model
    updated in place, as asked). An output whose folder is not there yet is
    written after making it, said in a notice on stderr (a mistyped folder,
    or a drive that is not mounted, would otherwise take the file unseen).
    """
    read = {os.path.realpath(path): name for name in inputs if (path := getattr(args, name, None))}
    given = {}
    for dest, example in examples.items():
        path = getattr(args, dest, None)
        if not path:
            continue
        if problem := output_path_problem(flag(dest), path, example):
            return problem
        other = given.setdefault(os.path.realpath(path), dest)
        if other != dest:
            return (f"{flag(other)} and {flag(dest)} name the same file {path}; the one "
                    f"written last would replace the other: give them different names")
        source = read.get(os.path.realpath(path))
        if source and (dest, source) not in may_replace:
            return (f"{flag(dest)} {path} is the {flag(source)} file: writing it would destroy "
                    f"that file; give another name")
        if dest not in ("save", "checkpoint") and (problem := picture_over_problem(
                flag(dest), path, getattr(args, "overwrite", None), page=dest == "html")):
            return problem  # (a model or a checkpoint, of any name, has checks of its own)
    for path, dest in given.items():
        if dest != "checkpoint":  # (its lock makes its folder: run_holding_checkpoint says so)
            made_folder_notice(flag(dest), path)
    return None


def picture_over_problem(flag_name: str, path: str, overwrite: bool | None,
                         page: bool = False) -> str | None:
    """Why drawing a picture or writing a page (``page``) at ``path`` would
    replace a file of the user's, or None: one there already is replaced
    only if it is empty or one that rnnlab writes there (a picture
    matplotlib drew, which says so inside, or a JPEG, which has no place to
    say it; a units page, whose head names rnnlab, or an earlier one, by
    its script's last lines), or with ``overwrite`` (None: the script has
    no --overwrite). A model or a checkpoint (.npz) has its own checks."""
    suffix = os.path.splitext(os.fsdecode(path))[1].lower()
    if overwrite or suffix == ".npz" or not (page or suffix in FORMATS):
        return None

    def ours(path):
        try:
            with open(path, "rb") as f:
                head = f.read(1 << 16)
                f.seek(max(f.seek(0, os.SEEK_END) - (1 << 16), 0))
                both = head + f.read()
        except PermissionError:
            raise
        except OSError:  # (the write says why)
            return True
        if page:
            return any(mark.encode() in both for mark in PAGE_MARKS)
        if FORMATS[suffix] == "jpg":
            return head.startswith(b"\xff\xd8\xff")
        return b"matplotlib" in both.lower()

    how = "move it away first" if overwrite is None else "pass --overwrite to replace it"
    return not_ours_problem(flag_name, path, f"a {'page' if page else 'picture'} rnnlab wrote",
                            ours, how)


def not_ours_problem(flag_name: str, path: str, what: str, ours, how: str) -> str | None:
    """Why writing an output at ``path`` would replace a file of the user's,
    or None: there is none, or it is empty (nothing to lose), or ``ours(path)``
    says it is ``what`` the output is (rnnlab wrote it there before). A file
    that cannot be read to tell is refused too; ``how``: the way to replace
    it anyway."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) == 0 or ours(path):
            return None
    except PermissionError:
        return (f"{flag_name} {path} exists already and cannot be read (no permission) to tell "
                f"whether it is {what}: give another name, or {how}")
    return (f"{flag_name} {path} exists already and is not {what} (another file?): give "
            f"another name, or {how}")


def made_folder_notice(flag_name: str, path: str) -> None:
    """Say on stderr that the folder of the output ``path`` is not there and
    is made for it (a mistyped folder, or a drive that is not mounted, would
    otherwise take the file unseen)."""
    existing, missing = folders_on_the_way(write_target(path))
    if missing:
        print(f"notice: {flag_name}: the folder {os.path.join(existing, *missing)} is not "
              f"there; it is made to write {os.path.basename(path)} in it", file=sys.stderr)


def drawing_problem(args: argparse.Namespace, dests: tuple[str, ...],
                    may_skip: bool = True) -> str | None:
    """Why matplotlib cannot draw the figures that the destinations ``dests``
    of ``args`` ask for (``"plot"`` ...), or None; to check before a long run,
    whose figures are drawn during it and at its end. ``import matplotlib``
    fails for an ``MPLBACKEND`` it does not know (a typo, a trailing space)
    or a broken installation, and the figures were then lost, after the
    run. ``may_skip``: the flags take ``none`` (no figure), which the
    message then offers."""
    asked = [flag(dest) for dest in dests if getattr(args, dest, None)]
    if not asked:
        return None
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401 (what the figures are drawn on)
    except Exception as exc:  # noqa: BLE001 - any failure to start is the user's to see
        skip = f", or pass {' '.join(f'{a} none' for a in asked)}" if may_skip else ""
        return (f"{' and '.join(asked)} need{'s' if len(asked) == 1 else ''} matplotlib, "
                f"which cannot start ({exc}); fix that (MPLBACKEND=agg draws to files){skip}")
    return None


def same_setting(name: str, given, recorded, paths=()) -> bool:
    """Whether the value ``given`` for the setting ``name`` on resuming is the
    run's ``recorded`` one: a setting in ``paths`` by the file it names (a
    path through a link to its folder is the same file, see
    :func:`~common.serialization.same_file`), anything else by value."""
    if name in paths and given and recorded:
        return same_file(given, recorded)
    return given == recorded


def checkpoint_problem(checkpoint: str | None, resume: str | None, overwrite: bool) -> str | None:
    """Why writing ``checkpoint`` would lose an earlier run, or None.

    An existing checkpoint file is another run's, unless it is the one
    being resumed; it is replaced only with ``overwrite``.
    """
    if not checkpoint or not os.path.exists(checkpoint) or overwrite:
        return None
    if resume and same_file(resume, checkpoint):
        return None
    if not is_checkpoint_file(checkpoint):  # --resume would refuse it: not a run to continue
        return (f"--checkpoint {checkpoint} exists already and is not a training checkpoint "
                f"(a saved model? another file?): give another name, or pass --overwrite to "
                f"replace it")
    return (f"--checkpoint {checkpoint} exists already (an earlier run?): continue it with "
            f"--resume {checkpoint}, or pass --overwrite to replace it")


def point_at_null(stream) -> None:
    """Point ``stream``'s file descriptor at the null device: what was still
    to be written (to a reader that has gone, ``| head``) goes nowhere, and
    the interpreter's flush at exit raises no ``BrokenPipeError``."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, stream.fileno())
    finally:
        os.close(null)


def _reader_gone(exc: OSError) -> bool:
    """Whether a write failed because no one reads the stream any more: a pipe
    whose reader left (``BrokenPipeError``), or a terminal that went away
    (``EIO``: its window closed, its SSH connection dropped)."""
    return isinstance(exc, BrokenPipeError) or exc.errno == errno.EIO


def writable(text: str, stream, warn: bool = True) -> str:
    """``text`` with the characters that ``stream``'s encoding cannot hold written
    as backslash escapes (``\\U0001f600``), and (``warn``) a ``warning:`` line
    on stderr saying so; ``text`` itself when it can be written as it is.

    Without this, a character the output cannot hold (accents or emoji of a
    ``--text-file`` or ``--data`` file, on an ASCII or cp1252 terminal, or
    under ``PYTHONIOENCODING=ascii``) ends the program in a
    ``UnicodeEncodeError``: a generated sample, or a training run after its
    first epoch, lost.
    """
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return text
    try:
        text.encode(encoding, getattr(stream, "errors", None) or "strict")
    except UnicodeEncodeError:
        if warn:
            print(f"warning: the output's encoding ({encoding}) cannot hold some characters "
                  f"of the text; they are written as backslash escapes (\\xe9, \\U0001f600). "
                  f"For the characters themselves, run with PYTHONIOENCODING=utf-8",
                  file=sys.stderr)
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:  # an encoding or error handler Python does not know: as it is
        pass
    return text


class _EscapingStream:
    """``sys.stdout`` or ``sys.stderr`` that writes what its encoding cannot
    hold as backslash escapes (:func:`writable`; one warning)."""

    def __init__(self, stream):
        self._stream, self._warned = stream, False

    def write(self, text):
        try:
            return self._stream.write(text)
        except UnicodeEncodeError:  # (raised before anything is written)
            self._stream.write(writable(text, self._stream, warn=not self._warned))
            self._warned = True
            return len(text)

    def __getattr__(self, name):  # flush, isatty, fileno, encoding ... of the stream itself
        return getattr(self._stream, name)


@contextlib.contextmanager
def outputs_escaped():
    """``with outputs_escaped(): ...``: what is printed to stdout or stderr
    that their encoding cannot hold is written as backslash escapes, with a
    warning, instead of ending the program (see :func:`writable`)."""
    real = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (None if s is None else _EscapingStream(s) for s in real)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = real


class _StreamThatMayClose(_EscapingStream):
    """``sys.stdout`` or ``sys.stderr`` that may stop taking what is written: a
    write or flush that finds the pipe closed (``BrokenPipeError``), the
    terminal gone (``EIO``), or the disk of a file it is redirected to full
    (``ENOSPC``, a quota, ``ulimit -f``) points the stream at the null device
    (:func:`point_at_null`) and the run goes on, printing to nobody, with one
    notice on stderr the first time. What the stream's encoding cannot hold
    is escaped, as by :class:`_EscapingStream`."""

    def __init__(self, stream, name, notice=True):
        super().__init__(stream)
        self._name, self._notice, self.stopped, self.error = name, notice, False, None

    def write(self, text):
        if self.stopped:
            return len(text)
        try:
            return super().write(text)
        except OSError as exc:
            self._to_null(exc)
            return len(text)

    def flush(self):
        if self.stopped:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            self._to_null(exc)

    def _to_null(self, exc: OSError):
        self.stopped, self.error = True, exc
        # What the stream still holds goes nowhere, also at the interpreter's exit
        # (a stream without a descriptor, a StringIO, is only left alone).
        with contextlib.suppress(OSError, ValueError):
            point_at_null(self._stream)
        if self._name == "stdout" and self._notice:
            why = ("was closed (its reader stopped reading)" if _reader_gone(exc) else
                   f"cannot be written ({exc.strerror or exc})")
            print(f"notice: stdout {why}; the run goes on without printing, and writes its "
                  f"files as asked (Ctrl-C stops it)", file=sys.stderr)


def write_if_memory_left(write) -> None:
    """``write()`` (a run's model and plot, after it ran out of memory); an
    ``error:`` line, not a traceback, when no memory is left for that either."""
    try:
        write()
    except MemoryError:
        print("error: no memory was left to write the model and the plot either",
              file=sys.stderr)


def results_status(status: int) -> int:
    """The exit status of a run whose results are what it prints (a
    benchmark's figures, its ``--json``), given the ``status`` it ended with,
    inside :func:`outputs_may_close`: 1, with an ``error:`` line, when
    stdout could not be written (a full disk, ``/dev/full``) though someone
    wanted it, for the results are then lost; ``status`` otherwise (a reader
    that stopped reading, ``| head``, wanted no more)."""
    error = getattr(sys.stdout, "error", None)
    if status != 0 or error is None or _reader_gone(error):
        return status
    print(f"error: the results could not be written to stdout "
          f"({error.strerror or error}): they are lost; run again with stdout where it "
          f"can be written", file=sys.stderr)
    return 1


@contextlib.contextmanager
def outputs_may_close(notice: bool = True):
    """``with outputs_may_close(): ...``: a long run whose stdout (or stderr)
    reader stops reading (``| head``, ``| true``, quitting ``less``), or
    whose log file's disk fills, goes on printing to nobody, and writes its
    checkpoint, model and plot as asked, instead of dying of a
    ``BrokenPipeError`` (or ``No space left on device``) with its work
    unsaved; nor does a character the output's encoding cannot hold end it
    (it is escaped, as :func:`outputs_escaped` does). With ``notice`` a line
    on stderr says so when stdout stops (``False``: a short command whose
    reader may well stop early, and which says itself what a lost stdout
    cost, by :func:`results_status`)."""
    real = sys.stdout, sys.stderr
    # A stream closed before the start (``>&-``) or absent (pythonw) is None:
    # what would be printed there goes nowhere.
    nowhere = [open(os.devnull, "w", encoding="utf-8") for stream in real if stream is None]
    stand_ins = iter(nowhere)
    sys.stdout = _StreamThatMayClose(real[0] or next(stand_ins), "stdout", notice)
    sys.stderr = _StreamThatMayClose(real[1] or next(stand_ins), "stderr")
    try:
        yield
    finally:
        try:
            # What is still buffered, here: a reader gone is no error at exit.
            for stream in (sys.stdout, sys.stderr):
                if isinstance(stream, _StreamThatMayClose):
                    stream.flush()
        finally:  # (an error of the flush that is no OSError still gives them back)
            sys.stdout, sys.stderr = real
            for stream in nowhere:
                stream.close()


def printable(name: str) -> str:
    """``name`` (a file name) as it can be printed and drawn: the bytes of a
    name that are not UTF-8 (Python keeps them as lone surrogates, which no
    output encoding and no figure title takes) shown as U+FFFD."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return name.encode("utf-8", "replace").decode("utf-8")


def run_holding_checkpoint(checkpoint: str | None, run, *args) -> int:
    """``run(*args)``'s exit status, with ``checkpoint``'s lock held all the
    while (:mod:`common.run_lock`); 1, with the reason on stderr, when
    another training holds it."""
    # (The lock is made beside it, making its folder; a path that cannot be is said by
    # the run's checks, with no notice first.)
    if checkpoint and output_path_problem("--checkpoint", checkpoint, "run.npz") is None:
        made_folder_notice("--checkpoint", checkpoint)
    try:
        with holding_checkpoint(checkpoint):
            return run(*args)
    except CheckpointInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def resumed_checkpoint_words(problem: str, args, explicit) -> str:
    """``problem``, about the ``--checkpoint`` file, in the words of a command
    line that gave ``--resume`` and no ``--checkpoint`` (not in ``explicit``):
    a resumed run writes its checkpoints to the file it resumes."""
    resume = getattr(args, "resume", None)
    if not resume or "checkpoint" in explicit or not problem.startswith("--checkpoint "):
        return problem
    return (f"--resume {problem[len('--checkpoint '):]}; a resumed run writes its checkpoints "
            f"there: give --checkpoint OTHER.npz to write them elsewhere")


def moved_checkpoint_notice(resume: str, settings: dict, outputs, explicit) -> str | None:
    """A notice when the checkpoint ``resume`` is not the file its run wrote
    (``settings['written_as']``, see :func:`recorded_paths`; a copy, or
    moved) while the run's recorded ``outputs`` (destinations, those not in
    ``explicit``) still go where that run began: they may be another run's
    files."""
    written_as = settings.get("written_as")
    if not written_as or not isinstance(written_as, str) or same_file(resume, written_as):
        return None
    paths = [f"{flag(k)} {settings[k]}" for k in outputs
             if k not in explicit and settings.get(k)]
    if not paths:
        return None
    return (f"notice: {resume} was written as {written_as}; its run's outputs go where that "
            f"run began ({', '.join(paths)}): give them anew to write elsewhere")


def disk_space_problem(trainer, save: str | None, checkpoint: str | None,
                       vocab, kept_copies: int = 0, checkpoint_every: int | None = None,
                       iterations: int | None = None) -> str | None:
    """Why the run's ``--checkpoint`` and ``--save`` files cannot fit on their
    disks, or None (:func:`common.serialization.space_problem`): checked once
    the model and optimizer are built, before the first batch. The model
    file holds at least the parameters and ``vocab`` (the tokens, id ->
    token: a JSON list in the metadata, four bytes a character); the
    checkpoint also the optimizer's state (:func:`common.checkpoint.least_bytes`)
    and the copies of the parameters the run keeps, ``kept_copies``: the
    best epoch's where it validates (in the first epoch's checkpoint on),
    and the last epoch's where it then puts the best back (in the last).
    A checkpoint written at every epoch's end is written at least twice
    (there and at the run's end), and so is one every ``checkpoint_every``
    of the run's ``iterations`` if they are as many (its first, then, may
    come before any validation); the old file is kept until the new one is
    whole: the second write needs the first file's space and its own,
    less a file the first replaced."""
    words = 4 * sum(len(str(vocab[i])) + 2 for i in range(len(vocab)))  # (with quotes)
    params, least = params_bytes(trainer.model), least_bytes(trainer)
    if checkpoint_every is None:
        first, twice = least + params * min(kept_copies, 1), True
    else:
        first = least
        twice = iterations is not None and iterations >= checkpoint_every
    largest = least + params * kept_copies
    at_once = largest
    if checkpoint and twice:
        at_once = max(first, first + largest - replaced_size(checkpoint))
    return space_problem({"--checkpoint": (checkpoint, largest, at_once),
                          "--save": (save, params + words)})


def save_over_problem(save: str | None, overwrite: bool) -> str | None:
    """Why writing a model to ``save`` would lose work, or None: the file is a
    training checkpoint (resumable with --resume), or another file than a
    saved model (notes, a corpus); replaced only with ``overwrite``. A saved
    model is replaced: that is what --save of a model's name asks."""
    if not save or overwrite:
        return None
    if os.path.isfile(save) and os.path.getsize(save) and is_checkpoint_file(save):
        return (f"--save {save} is a training checkpoint (a run --resume continues): a model "
                f"saved over it would end that run; give another name, or pass --overwrite to "
                f"replace it")

    def ours(path):
        try:
            return "model" in load_npz_meta(path)
        except PermissionError:
            raise
        except (OSError, ValueError):  # (not an .npz of rnnlab's)
            return False

    return not_ours_problem("--save", save, "a saved model", ours,
                            "pass --overwrite to replace it")


def pickle_name_problem(args: argparse.Namespace, dests, suffix: str = ".npz") -> str | None:
    """Why a file named by a destination of ``dests`` has a pickle's name
    (``.pkl``, ``.pickle``), or None: rnnlab writes no pickles (``.npz``
    files, pages, pictures), and ``save_params`` would refuse the name after
    the whole run. ``suffix``: the name the files of ``dests`` should end in."""
    for dest in dests:
        path = getattr(args, dest, None)
        if path and has_pickle_name(path):
            kind = "its files are .npz: " if suffix == ".npz" else ""
            return (f"{flag(dest)} {path}: rnnlab never writes (or reads) pickles, "
                    f"whose loading can run any code; {kind}give a name ending in {suffix}")
    return None


def damaged_settings_problem(settings: dict, parser: argparse.ArgumentParser) -> str | None:
    """Why the run ``settings`` a checkpoint recorded cannot be command-line
    values of ``parser``, or None: each must be of its option's type (a
    number where the option takes a number ...), as a command line would
    give it; a hand-edited or damaged file says so instead of failing later
    inside the run."""
    for action in parser._actions:
        name = action.dest
        if name not in settings or settings[name] is None:
            continue
        value = settings[name]
        if action.nargs == 0:  # a switch
            fits = isinstance(value, bool)
        elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
            fits = False
        elif action.type is not None:  # parsed again from its text, as given
            try:
                parsed = action.type(str(value))
            except (ValueError, TypeError, argparse.ArgumentTypeError):
                fits = False
            else:
                # A run records parsed values: a number as a number, and an option left
                # off as null (skipped above), never the text "none" or "5".
                fits = parsed is not None and isinstance(parsed, str) == isinstance(value, str)
        else:
            fits = isinstance(value, str)
        if fits and action.choices is not None:
            fits = value in action.choices
        if not fits:
            return (f"the checkpoint is damaged: its setting {flag(name)} is {value!r}, "
                    f"not a value of that option")
    return None


def add_import_flag(parser) -> None:
    """``--import MODULE``: the module of a model class of one's own (see
    :func:`import_model_classes`)."""
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="MODULE",
                        help="a Python module (its name, found in the current folder or on "
                             "PYTHONPATH) that defines the class of a model of one's own; its "
                             "model classes are registered by name, so that a file saved from "
                             "one loads (runs the module's code; repeatable) (default: none)")


def model_load_words(exc: Exception) -> str:
    """What an error loading a model file says, with how to name the module
    of a class of one's own when the file's class is not registered."""
    from models import UnknownModelClass  # models imports common: import late

    hint = "; here, name the module that defines it with --import MODULE"
    return str(exc) + (hint if isinstance(exc, UnknownModelClass) else "")


def import_model_classes(modules) -> str | None:
    """Import each module named in ``modules`` (as ``--import`` gives them:
    the current folder first, then ``sys.path``) and register every model
    class it defines in ``models.MODEL_CLASSES`` by its name, as a file
    saved from it names it (one of rnnlab's names, or an earlier module's,
    is then this module's class, with a notice on stderr). The current
    folder stays on ``sys.path``, as for ``python -m``: the module may
    import its neighbours later. What went wrong, as ``--import``'s, or None."""
    import importlib

    from models import MODEL_CLASSES, Model  # models imports common: import late

    if modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # (a script's sys.path starts at its own folder)
    for name in modules:
        if "/" in name or os.sep in name or name.endswith(".py"):  # a path: import reads none
            module, folder = _module_of_path(name)
            here = not folder or os.path.realpath(folder) == os.path.realpath(os.getcwd())
            return (f"--import {name}: give the module's name, as import takes it, not a "
                    f"path: --import {module}" + ("" if here else f", with {folder} on "
                                                  f"PYTHONPATH (or run from that folder)"))
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith(f"{exc.name}."):
                return (f"--import {name}: no module {exc.name!r} in the current folder or on "
                        f"PYTHONPATH (give the module's name, as import takes it, not a path)")
            return f"--import {name}: importing it failed: {exc}"
        except Exception as exc:  # (its code ran: whatever it raised is the user's to see)
            return f"--import {name}: importing it failed: {type(exc).__name__}: {exc}"
        for attr, value in vars(module).items():
            if not (isinstance(value, type) and issubclass(value, Model)
                    and value.__module__ == module.__name__ and attr == value.__name__):
                continue
            known = MODEL_CLASSES.get(attr)
            if known is not None and known is not value:
                print(f"notice: --import {name}: its class {attr} replaces the "
                      f"{known.__module__}.{attr} of that name for this run", file=sys.stderr)
            MODEL_CLASSES[attr] = value
    return None


def _module_of_path(path: str) -> tuple[str, str]:
    """``(dotted name, folder to import it from)`` of the module file or
    package folder ``path``: up through the folders that are packages (hold
    an ``__init__.py``), so that the module's relative imports still work."""
    path = path.rstrip("/" + os.sep) or path
    folder, name = os.path.split(path)
    if name.endswith(".py"):
        name = name[:-3]
    if name == "__init__":  # the package itself
        folder, name = os.path.split(folder)
    parts = [name]
    while folder and os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        parts.insert(0, package)
    return ".".join(parts), folder


def empty_flag_problem(args: argparse.Namespace, what: dict[str, str]) -> str | None:
    """Why a flag of ``what`` (destination -> what it names) was given an
    empty value, or None: say, an unset shell variable, which must not fall
    back on the default source."""
    for dest, thing in what.items():
        if getattr(args, dest, None) == "":
            return f"{flag(dest)} is empty; name {thing}, or leave the flag out"
    return None


def ptb_message_in_flag_words(message: str) -> str:
    """A message of ``datasets.ptb``, which names its ``data_dir`` argument, in the
    words of a command line with ``--data-dir``."""
    return (message.replace(" to ptb.load_data", "").replace("data_dir argument", "--data-dir")
            .replace("data_dir=...", "--data-dir").replace("data_dir=", "--data-dir ")
            .replace("data_dir ", "--data-dir "))


def recorded_paths(settings: dict, names, checkpoint: str | None) -> dict:
    """``settings`` with the paths under ``names`` made absolute (None stays
    None), as a run records them in its checkpoints: resumed from another
    folder, it writes its outputs where it began. With ``written_as``, the
    ``checkpoint`` file the run writes (whole), when it writes one: a copy
    resumed elsewhere says so (:func:`moved_checkpoint_notice`)."""
    recorded = {k: os.path.abspath(v) if k in names and v is not None else v
                for k, v in settings.items()}
    if checkpoint:
        recorded["written_as"] = os.path.abspath(checkpoint)
    return recorded


def user_path(text: str) -> str:
    """An argparse ``type`` for a file or folder: the path, a leading ``~``
    made the home folder. The shell does that for a word that starts with
    ``~``, not for ``--save=~/m.npz``, which would name a folder called ``~``."""
    return os.path.expanduser(text)


def plot_path(text: str) -> str | None:
    """An argparse ``type`` for a plot's file: ``None`` for ``''`` or ``'none'``
    (no plot), else the path (:func:`user_path`), whose suffix must name a format."""
    if text.lower() in ("", "none"):
        return None
    text = user_path(text)
    if os.path.isdir(text):  # output_path_problem's message says what to give instead
        return text
    try:
        plot_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
