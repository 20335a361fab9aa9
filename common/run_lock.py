"""One training at a time per checkpoint file.

Why this exists. A checkpoint is written atomically (a temporary file, then
a rename), so no reader ever sees half of one. But two trainings that
write the same path (the same command started twice, or ``--resume
run.npz`` while the run that writes it is still going) would each replace
the other's file in turn, and a run resumed later would continue whichever
wrote last: one run's work lost without a word. So a training with a
checkpoint holds an advisory lock (``fcntl.flock``) on a file beside it,
``PATH.lock`` (for a name too long for that, a hash of it), for as long
as it trains, and a second one finds it held and is refused before its
first batch (:class:`CheckpointInUse`, naming the holder's process id).
The lock belongs to the file that is written: a checkpoint that is a
symbolic link is written through (its target is replaced), so its lock is
the target's, ``TARGET.lock`` beside that file, and a run given the link
and one given the target hold one lock.

The system releases the lock when its holder ends, however it ends (a
``PATH.lock`` left by a killed process holds nothing, and the next run
takes it); a holder that ends normally removes the file. Holds nest
within a process: the training scripts hold the lock for their whole run,
and the ``fit`` calls they make inside take it again. A forked child does
not keep its parent's lock. Where ``fcntl`` is missing (Windows), or the
lock file cannot be made, nothing is locked.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from common.serialization import folders_on_the_way, short_stem, write_target

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


class CheckpointInUse(RuntimeError):
    """Another running training writes its checkpoints to the same file."""


# The lock files this process holds (real paths): [descriptor or None, depth].
_held: dict = {}
# The folders made for a lock file, deepest first: removed with it when left empty.
_made: dict = {}


def lock_path(path) -> str:
    """The lock file of the checkpoint ``path``: ``PATH.lock``, beside the file
    a write to ``path`` replaces (for a symbolic link, the file it points to:
    the link and its target share one lock). For a name too long to take
    ``.lock`` (over 200 bytes), ``h`` and a hash of it stand in for it."""
    folder, name = os.path.split(write_target(os.fspath(path)))
    return os.path.join(folder, short_stem(name) + ".lock")


@contextmanager
def holding_checkpoint(path):
    """A context in which this process holds ``path``'s lock (``path`` None:
    nothing); raises :class:`CheckpointInUse` on entry when another process
    holds it."""
    if path is None or fcntl is None:
        yield
        return
    name = os.path.realpath(lock_path(path))
    entry = _held.get(name)
    if entry is None:
        entry = _held[name] = [_acquire(name, path), 0]
    entry[1] += 1
    try:
        yield
    finally:
        entry[1] -= 1
        if entry[1] == 0 and _held.get(name) is entry:  # (not in a forked child)
            del _held[name]
            _release(name, entry[0])


def _acquire(name, path):
    """The descriptor of the lock file ``name``, locked by this process; None
    where it cannot be made or locked (the checkpoint's own checks then say
    what is wrong with its folder)."""
    # The checkpoint's folder, made now rather than by its first write: without
    # the lock file in it, a second training would not be kept out until then.
    # (Not for a path that names a folder, which the run's checks refuse.)
    if os.path.basename(os.fspath(path)) not in ("", os.curdir, os.pardir):
        _made[name] = _make_folders(name)
    while True:
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise CheckpointInUse(
                f"checkpoint {os.fspath(path)} is in use: another training ({holder}) writes "
                f"its checkpoints there; wait for it to end, or give another checkpoint path "
                f"(the lock is {name})") from None
        except OSError:  # a file system without locks
            os.close(fd)
            return None
        # A holder that ended between this open and this lock has removed the
        # file: the lock must be on the file now at the path, or taken again.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(name))
        except OSError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _make_folders(lock) -> list:
    """Make the folders on the way to the file ``lock`` that are missing
    (:func:`common.serialization.folders_on_the_way`); return those this
    process made, deepest first (where one cannot be made, the run's checks
    say why)."""
    made = []
    for _ in range(3):  # (again from the top when another run removed a folder meanwhile)
        path, missing = folders_on_the_way(lock)
        try:
            for name in missing:
                path = os.path.join(path, name)
                try:
                    os.mkdir(path)
                except FileExistsError:  # another run (a sweep into sibling folders) made it
                    continue
                made.append(path)
            break
        except FileNotFoundError:  # one above was removed by a run that was refused
            continue
        except OSError:
            break
    return made[::-1]


def _read_holder(fd) -> str:
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return "a process"
    return f"process {pid}"


def _release(name, fd):
    if fd is not None:
        try:
            os.unlink(name)  # while still locked: who opened it before re-checks the path
        except OSError:
            pass
        os.close(fd)
    # The folders made for the lock, if the run wrote nothing in them (it was refused).
    for folder in _made.pop(name, []):
        try:
            os.rmdir(folder)
        except OSError:
            break


def _after_fork_in_child():
    """The child closes its copies of the parent's lock files (the parent's
    lock lasts while any copy is open) and holds none of its own."""
    for fd, _ in _held.values():
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _held.clear()
    _made.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
