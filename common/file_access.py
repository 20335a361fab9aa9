"""Why this user cannot reach or read a file that exists, in words that say
how to fix it.

Two permission problems hide behind misleading answers:

- a file inside a folder this user may not enter (no search permission,
  ``x``, as in ``drwx------`` of another user): ``os.path.exists`` and
  ``Path.is_file`` answer False, because the system refuses to look, and a
  program says "no such file" of a file that is there;
- a file this user may not read (``-rw-------`` of another user): ``open``
  raises a bare ``[Errno 13] Permission denied``, naming neither the cause
  nor the fix.

Neither shows when the tests run as root, who may enter and read anything;
``tests/test_file_access.py`` takes a user's permissions for the moment
each check runs.
"""

from __future__ import annotations

import os
import stat


def blocked_folder(path: str | os.PathLike) -> str | None:
    """The folder on the way to ``path`` that this user may not enter, or None
    when the system can look at ``path`` (whether or not something is there).

    The deepest folder on the way that can be looked at is the one that
    refuses: every folder above it lets this user through.
    """
    try:
        os.stat(path)
        return None
    except PermissionError:
        pass
    except (OSError, ValueError):  # not there, or a name the OS refuses
        return None
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            os.stat(folder)
            return folder
        except PermissionError:
            parent = os.path.dirname(folder)
            if parent == folder:
                return folder
            folder = parent
        except (OSError, ValueError):
            return None


def _owns(path: str) -> bool:
    """Whether this user owns ``path`` (and so may change its permissions)."""
    try:
        return os.stat(path).st_uid == os.geteuid()
    except (OSError, AttributeError):  # (no geteuid on Windows)
        return False


def unreachable_words(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be found although it may be there: a folder on the
    way that this user may not enter, in words with the fix; None when
    nothing on the way refuses (then ``path`` is simply not there)."""
    folder = blocked_folder(path)
    if folder is None:
        return None
    fix = (f"chmod u+x {folder}" if _owns(folder) else
           f"its owner can let others in: chmod a+x {folder}")
    return f"cannot reach {os.fsdecode(path)}: this user may not enter the folder {folder} ({fix})"


def unreadable_words(path: str | os.PathLike) -> str:
    """Why opening ``path`` for reading raised ``PermissionError``, in words
    with the fix (a folder on the way that refuses, or the file itself)."""
    path = os.fsdecode(path)
    fix = f"chmod u+r {path}" if _owns(path) else f"its owner can allow it: chmod a+r {path}"
    return unreachable_words(path) or f"cannot read {path}: this user may not read it ({fix})"


def is_terminal(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a terminal (``/dev/stdin`` typed at), which gives
    its text only as it is typed, and ends at Ctrl-D."""
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False  # (not opened: opening a named pipe would let its writer go on)
    except (OSError, ValueError, TypeError):
        return False
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError, TypeError):
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)
