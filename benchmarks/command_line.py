"""What the benchmark's and the timing scripts' command lines share.

As the training scripts do: a value out of range, a bad
``RNNLAB_NUM_THREADS`` or a PTB folder that is not there is a one-line
usage error (exit status 2) before any work starts, and Ctrl-C or SIGTERM
end a run with one line, ``interrupted`` or ``terminated``, and the exit
status 130 or 143, the cleanup of ``finally`` blocks and ``with`` statements
done (no traceback, no helper process or temporary folder left behind). A
reader of stdout that stops reading (``| head``), or a full disk under it,
does not end a run in a traceback (:func:`outputs_may_close`); nor does
another revision's code that a timing script cannot call as it calls this
checkout's: that is a usage error naming the revision
(:func:`timing_other_code`).

This module imports nothing of rnnlab's packages at import time: the
scripts that time another checkout (``--repo``) import ``common``,
``layers`` and ``models`` from there, after reading their flags.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys

INTERRUPTED, TERMINATED = 130, 143


def cpu_count() -> int:
    """The number of CPUs this process may use (at least 1): its affinity
    where the system says (``taskset``, a container's CPU set), else the
    machine's. (As common.parallel counts them; not imported from there:
    this module imports none of rnnlab's packages, see --repo.)"""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_count(text: str) -> int:
    """An argparse ``type``: a thread count from 1 to the CPUs this process may use."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    cpus = cpu_count()
    if not 1 <= value <= cpus:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {cpus} (the CPUs this process may use), got {value}")
    return value


thread_count.__name__ = "thread count"


def thread_setting_problem() -> str | None:
    """What is wrong with ``RNNLAB_NUM_THREADS``, or None, by the rule of the
    ``common.parallel`` importable now (another checkout's, with ``--repo``;
    one too old to read the variable has nothing to say)."""
    try:
        from common import parallel
    except ImportError:
        return None
    check = getattr(parallel, "thread_count_problem", None)
    if check is not None:
        return check()
    try:
        parallel.num_threads()
    except AttributeError:
        return None
    except ValueError as exc:
        return str(exc)
    return None


def data_dir_problem(data_dir: str | None) -> str | None:
    """Why ``--data-dir data_dir`` cannot be PTB's folder, in one line, or None
    (``None``: not given; what is in the folder is checked on loading)."""
    if data_dir is None:
        return None
    if data_dir == "":
        return ("--data-dir is empty; name the folder that holds ptb.train.txt, "
                "ptb.valid.txt, ptb.test.txt, or leave the flag out")
    if not os.path.isdir(data_dir):
        try:
            from common.file_access import unreachable_words
        except ImportError:  # an older checkout (--repo)
            unreachable = None
        else:
            unreachable = unreachable_words(data_dir)
        what = ("a file, not a folder" if os.path.exists(data_dir) else
                unreachable or "no such folder")
        return (f"--data-dir {data_dir}: {what} (give the folder that holds ptb.train.txt, "
                "ptb.valid.txt, ptb.test.txt, or leave the flag out)")
    return None


def ptb_error_in_flag_words(exc: Exception) -> str:
    """The message of a failed ``ptb.load_data(..., data_dir=...)`` in the
    words of a command line with ``--data-dir``, on one line."""
    try:
        from common.cli import ptb_message_in_flag_words
    except ImportError:  # an older checkout (--repo): its words as they are
        message = str(exc)
    else:
        message = ptb_message_in_flag_words(str(exc))
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def load_ptb(parser: argparse.ArgumentParser, splits, data_dir: str | None) -> list:
    """The corpora of PTB's ``splits`` (``ptb.load_data(split, data_dir)[0]``
    each); a folder without them is a usage error of ``parser``."""
    if problem := data_dir_problem(data_dir):
        parser.error(problem)
    from datasets import ptb

    not_found = getattr(ptb, "DataNotFoundError", RuntimeError)
    try:
        return [ptb.load_data(split, data_dir=data_dir)[0] for split in splits]
    except (ValueError, not_found, OSError) as exc:  # DataSourceError is a ValueError
        parser.error(ptb_error_in_flag_words(exc))


def memory_problem(parts: dict[str, int], hint: str) -> str | None:
    """Why arrays of ``parts`` (what -> bytes; a lower bound of what a run
    will hold at once) cannot fit in the memory available now, or None.
    ``hint`` says what to give instead. By :mod:`common.memory`, when the
    checkout imported has it."""
    try:
        from common.memory import BASE_BYTES, NotEnoughMemory, available_bytes, check_memory
    except ImportError:
        return None
    estimate = {**parts, "total": sum(parts.values()) + BASE_BYTES}
    try:
        check_memory(estimate, available_bytes(), hint)
    except NotEnoughMemory as exc:
        return str(exc)
    return None


def outputs_may_close(checkout: str):
    """``common.cli.outputs_may_close()`` of the rnnlab checkout in the folder
    ``checkout``, put first on ``sys.path``: while open, a reader of stdout
    that stops reading (``| head``), or a full disk under it (``> /dev/full``),
    does not end the run in a traceback; it goes on printing to nobody, with
    one notice on stderr. For the scripts that time another checkout
    (``--repo``): this module imports none of its packages itself. A
    checkout older than the helper has none: its timing prints as it always
    did."""
    # Not imported where the file is missing: an editable install of this
    # checkout would then give this checkout's cli.py, and with it its modules.
    if not os.path.isfile(os.path.join(checkout, "common", "cli.py")):
        return contextlib.nullcontext()
    try:
        from common.cli import outputs_may_close
    except ImportError:
        return contextlib.nullcontext()
    return outputs_may_close()


def results_status(status: int) -> int:
    """``common.cli.results_status(status)`` of the checkout whose
    :func:`outputs_may_close` is open: 1 when the results printed to stdout
    were lost to a full disk; ``status`` where that checkout has no such
    check (an older one)."""
    try:
        from common.cli import results_status as of_the_checkout
    except ImportError:
        return status
    return of_the_checkout(status)


@contextlib.contextmanager
def timing_other_code(parser: argparse.ArgumentParser, whose: str, advice: str):
    """While open, an exception that another revision's code raises as this
    script imports, builds or calls it is a one-line usage error of
    ``parser``: ``whose`` (``--against 1c5d22b: its layers/lstm.py``)
    cannot be timed by this script, the exception in a few words, and
    ``advice`` (a later revision), rather than a traceback from inside
    code this script no longer fits (a function since renamed, a call
    since changed). A ``MemoryError`` is left as it is: the sizes were
    checked before, and it is no fault of the revision."""
    try:
        yield
    except MemoryError:
        raise
    except Exception as exc:
        words = " ".join(str(exc).split())
        parser.error(f"{whose} cannot be timed by this script ({type(exc).__name__}"
                     f"{': ' + words if words else ''}); {advice}")


def repo_code(parser: argparse.ArgumentParser, repo: str, here: str, what: str):
    """:func:`timing_other_code` for the checkout ``repo`` of a ``--repo``
    script, ``what`` of it (``its layers``) named in the message; a null
    context when ``repo`` is this checkout, ``here``, whose own errors are
    left as they are."""
    if os.path.realpath(repo) == os.path.realpath(here):
        return contextlib.nullcontext()
    return timing_other_code(parser, f"--repo {repo}: {what}",
                             "give a checkout of a later revision")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that its cleanup runs."""

    exit_code = TERMINATED


def _raise_terminated(signum, frame):
    raise Terminated("terminated")


@contextlib.contextmanager
def sigterm_raises():
    """While open, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt)
    in the main thread, so that ``finally`` blocks and ``with`` statements
    clean up as after Ctrl-C. Off the main thread, signals are left alone."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, AttributeError):  # not the main thread, or no SIGTERM
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_held():
    """While open, Ctrl-C (SIGINT) and SIGTERM are remembered, not acted on;
    the first that came is raised again as the block closes, where its
    handler (``KeyboardInterrupt``, :class:`Terminated`) runs as if it came
    then. For a step that must not be cut in two, such as starting a
    process: an interrupt in the middle of ``subprocess.Popen`` leaves the
    process running with no object to end it by. Off the main thread,
    signals are left alone."""
    came = []
    try:
        previous = {signum: signal.signal(signum, lambda signum, frame: came.append(signum))
                    for signum in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if came:
            signal.raise_signal(came[0])


def interrupt_status(exc: KeyboardInterrupt) -> int:
    """Print the line that ends an interrupted run; return its exit status:
    130 for Ctrl-C, 143 for SIGTERM (:class:`Terminated`, or the trainer's
    ``TrainingInterrupted``, whose ``exit_code`` says which)."""
    code = getattr(exc, "exit_code", INTERRUPTED)
    print("\ninterrupted" if code == INTERRUPTED else "\nterminated", file=sys.stderr)
    return code


def ends_on_interrupt(main):
    """Decorate a script's ``main(argv) -> exit status`` so that Ctrl-C and
    SIGTERM end it with one line and the status 130 or 143."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            with sigterm_raises():
                return main(*args, **kwargs)
        except KeyboardInterrupt as exc:
            return interrupt_status(exc)

    return wrapper
