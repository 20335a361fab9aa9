"""An ordinary user's file permissions for a test run as root (as CI runs it).

Root may enter, read and replace anything, so a test of what a user may not
do shows nothing when it runs as root. :func:`a_users_permissions` makes the
process take the effective user and group of ``nobody`` for a block, and
gives root's back after; in a process run by a user it changes nothing
(that user is shut out by the test's own ``chmod``).

While it holds nobody's ids, the process cannot read what root alone may
(a Python installed under ``/root``, a checkout in a mode-700 folder): what
the checks import late is imported here first. A codec that failed to load
would stay unknown for the rest of the process (``encodings`` remembers the
failure), and every later test reading an ``.npz`` file would fail; and
matplotlib, half imported, would fail every later figure (the scripts'
check that it starts imports it: a file of these tests run alone failed so).

Imported by the test files beside it (pytest puts ``tests/`` on the path).
"""

import contextlib
import encodings.cp437  # noqa: F401  (zipfile's file names)
import os

import pytest
from matplotlib.figure import Figure  # noqa: F401  (what the scripts' drawing check imports)

NOBODY = 65534  # the user and group ``nobody`` of Linux
AS_ROOT = os.name == "posix" and os.geteuid() == 0


@contextlib.contextmanager
def a_users_permissions():
    """File access, inside the block, as an ordinary user has it."""
    if not AS_ROOT:
        yield
        return
    try:
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
    except OSError as exc:  # e.g. a user namespace that maps root alone
        os.setegid(0)
        pytest.skip(f"this root cannot take another user's ids here ({exc})")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
