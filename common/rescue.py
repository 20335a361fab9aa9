"""A trained model that cannot be written where the user asked is written
somewhere else, not lost.

A training run writes its model last, after minutes or hours of work. By
then the disk that was to hold it may have filled (another program, the
run's own checkpoints), a quota may be reached, the folder may have been
removed or made read-only, or the network share behind it may have gone
away. The scripts check the output paths and the free space before the
first batch, but nothing can stop the world from changing during the run,
and when the file cannot be written the parameters would end with the
process.

:func:`save_or_rescue` then writes the same file to the first of these
folders that takes it: the current folder, the home folder, the system's
temporary folder, and on Linux ``/dev/shm`` (in memory: often the one
place left when a machine's only disk is full). It skips the folder that
failed, and when the failure says the disk itself is out of room or
read-only it skips every folder on that disk. The rescued file gets the
name asked for when no file there has it, else ``<stem>-2<suffix>``,
``<stem>-3<suffix>`` ...: a name is taken by creating it (``O_EXCL``), so
an existing file is never replaced. The caller says where the file went;
the run still ends with an error, since the file is not where it was
asked to be.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from contextlib import suppress

from common.serialization import folders_on_the_way

__all__ = ["rescue_folders", "rescue_words", "save_or_rescue"]

# A full disk (or quota), one mounted read-only, one gone bad: no folder on
# it can take the file, so the rescue looks on other disks.
_WHOLE_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
# Linux's shared-memory folder: in memory, so often the one place left when
# the only disk is full; a file there lasts until shutdown.
_IN_MEMORY = "/dev/shm"
# The names a rescue tries in one folder before moving on.
_NAMES_PER_FOLDER = 100


def save_or_rescue(write: Callable[[str], str], path: str
                   ) -> tuple[str | None, OSError | None]:
    """``write(path)`` (which writes the file and returns the path written);
    when it raises ``OSError``, ``write`` again into each of
    :func:`rescue_folders` in turn until one succeeds.

    Returns ``(written, error)``: ``(path, None)`` when the file went where
    it was asked to; ``(other_path, error)`` when it was rescued there;
    ``(None, error)`` when no folder could take it. ``error`` is the
    ``OSError`` met at ``path``. Other exceptions pass on.
    """
    try:
        return write(path), None
    except OSError as exc:
        error = exc
    for folder in rescue_folders(path, error):
        written = _write_in(write, folder, os.path.basename(path))
        if written is not None:
            return written, error
    return None, error


def rescue_words(what: str, flag_name: str, path: str, written: str | None,
                 error: OSError) -> str:
    """The error line of a file ``what`` ("the model") that could not be
    written at ``path`` (given as ``flag_name``) with ``error``: where it went
    instead, or that no folder took it."""
    reason = error.strerror or str(error)
    if written is not None:
        last = (" (a folder in memory, emptied at shutdown: move the file before then)"
                if os.path.dirname(written) == _IN_MEMORY else "")
        return (f"cannot write {flag_name} {path} ({reason}); {what} was written to {written} "
                f"instead{last}")
    tried = rescue_folders(path, error)
    elsewhere = f", nor in {', '.join(tried)}" if tried else ""
    return f"cannot write {flag_name} {path} ({reason}){elsewhere}"


def rescue_folders(path: str, error: OSError) -> list[str]:
    """Where a file that could not be written at ``path`` (with ``error``)
    may go instead: the current, home and temporary folders and
    ``/dev/shm``, those that exist, each once,
    without ``path``'s own folder, and without its disk when ``error`` says
    the whole disk refuses (full, over quota, read-only, failing)."""
    try:
        own = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    except OSError:  # relative to a current folder that was removed
        own = None
    own_disk = _disk(own) if own is not None and error.errno in _WHOLE_DISK else None
    folders, seen = [], {own}
    for folder in (os.getcwd, lambda: os.path.expanduser("~"), tempfile.gettempdir,
                   lambda: _IN_MEMORY):
        try:
            candidate = os.path.realpath(folder())
        except OSError:  # the current folder removed, for one
            continue
        if candidate in seen or not os.path.isdir(candidate):
            continue
        seen.add(candidate)
        if own_disk is not None and _disk(candidate) == own_disk:
            continue
        folders.append(candidate)
    return folders


def _disk(folder: str) -> int | None:
    """The device number of the nearest existing folder at or above ``folder``
    (the one a file in it would be written under), or None."""
    existing, _ = folders_on_the_way(os.path.join(folder, "file"))
    try:
        return os.stat(existing).st_dev
    except OSError:
        return None


def _write_in(write, folder: str, name: str) -> str | None:
    """``write`` a new file in ``folder``, named ``name`` or a numbered form
    of it that no file there has; the path written, or None."""
    stem, suffix = os.path.splitext(name)
    for n in range(1, _NAMES_PER_FOLDER + 1):
        candidate = os.path.join(folder, name if n == 1 else f"{stem}-{n}{suffix}")
        try:
            # Taken by creating it: a file there, or a link, is never replaced.
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError:
            return None  # this folder takes no new file
        try:
            written = write(candidate)
        except BaseException as exc:  # Ctrl-C included: no empty file is left behind
            with suppress(OSError):
                os.unlink(candidate)
            if isinstance(exc, OSError):
                return None
            raise
        if written != candidate:  # (a writer that changed the name)
            with suppress(OSError):
                os.unlink(candidate)
        return written
    return None
