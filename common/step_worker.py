"""A helper process that computes a block of every step's product of a time loop.

Why this exists. A recurrent layer's time loop makes one small product a
step (``h @ Wh``, ``dA @ Wh.T``), 64 steps in a row, each needing the last.
Sharing it between two cores means handing half of it over and waiting
for it, twice a step. A thread of this process can only wait by sleeping
(a lock) or by spinning with the GIL, which the other thread needs; waking
a sleeping thread costs 50-100 us a step on a virtual machine, about what
half the product saves at character-model sizes. A thread that spins in C
through ``ctypes`` still sleeps whenever it needs the GIL back, and with
any other job on the machine a thread that has been spinning is not woken
ahead of it: the LSTM's loop took 292 ms instead of 6 with one
``nice -n 19`` job beside it. A separate *process* has its own interpreter
and no GIL to wait for: it spins in Python on a word of shared memory, and
the hand-off costs a few microseconds (the LSTM's forward at H = 256,
N = 32: 12.6 ms against 21.2 ms on one core, 14.5 ms with two ``nice``
jobs beside it, 30.7 against 31.8-36.1 ms with a busy job at normal
priority).

The protocol. The worker process maps one shared segment holding its block
of the weights ``W`` (K, m), the step's input ``a`` (n, K) and its output
``out`` (n, m), and two counters on separate cache lines: the step posted
by the caller and the step done by the worker. A step: the caller copies
``a`` into the segment and posts the next step number; the worker, which
spins on that counter, computes ``a @ W`` into ``out`` and writes the step
number as done; the caller, having computed its own block meanwhile, spins
until it sees it and reads ``out``. On x86-64 a core's stores reach the
others in the order they were made, so a counter seen means the data
before it is there; other machines use :mod:`common.parallel`'s threads.
Between loops the worker waits on its standard input (it sleeps, costing
nothing); it runs in a session of its own, so that a Ctrl-C or a signal
sent to the caller's process group does not reach it (the caller stops it),
and exits when the caller's process ends.

The segment's lifetime (here and in :mod:`common.batch_worker`). A
helper just started first says ``up`` on its standard output, once its
Python has started and it has imported what it needs (a third of a second
to a second); only then does the caller create the segment under a name in
/dev/shm (:func:`create_segment`), hand the name to the helper, and remove
the name as soon as the helper answers that it has mapped it
(:func:`remove_name`): both go on using their mappings, which the system
frees when the last of them is unmapped, however each process ends. A name
left behind would outlive a caller killed before it could remove it
(SIGKILL, a default SIGTERM, ``os._exit``, a ``multiprocessing.Pool``
worker ended by ``terminate()``, as leaving ``with Pool()`` does), in
/dev/shm and in the resource tracker's list, which warns of "leaked
shared_memory objects" at its exit. So a name exists only from the
segment's creation until the helper, already running, has mapped it
(milliseconds): a helper never opens a segment by name again (a larger
segment is a new one, with a new name). Where the system cannot remove a
name that is still mapped (not POSIX) the caller keeps it until it
releases the segment.

A caller killed within those milliseconds (``kill -9`` of its process
group, as a scheduler or ``docker kill`` does, takes its resource tracker
too) still leaves a name. So the names say who made them,
``rnnlab_PID_RANDOM`` (PID: the creating process; at most 28 characters
with the leading slash, within macOS's 31), and :func:`create_segment`
first removes from /dev/shm every name of that pattern whose process no
longer exists (:func:`remove_leftovers`; where there is no /dev/shm to
list, as on macOS, it removes nothing). Names of any other pattern are
never touched.

A helper whose caller is gone (its replies meet a closed pipe) exits at
once, quietly, with no traceback on the terminal (:func:`reply`).

Run as ``python -m common.step_worker``, the segment's name the first line
of its standard input; :class:`StepWorker` starts it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import platform
import re
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
import weakref
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import numpy as np

# Offsets (in int64 words) of the two counters, 64 bytes apart.
_POSTED, _DONE = 0, 8
_HEADER_BYTES = 128
_STOP = -1  # posted: the loop has ended; done: the worker has left it

AVAILABLE = platform.machine().lower() in ("x86_64", "amd64")
# The largest segment a helper maps. Shared memory lives in a small file
# system on some machines (64 MiB in a Docker container by default), and
# writing past its end kills the process, so larger loops use threads.
MAX_SEGMENT_BYTES = 16 << 20
# A step's block takes microseconds to milliseconds: a helper that has not
# answered in STEP_TIMEOUT_SECONDS is hung (stopped, or stuck in its BLAS),
# and is killed; the caller computes its blocks itself, with the same bits.
STEP_TIMEOUT_SECONDS = 30.0
# Once the user asked the run to stop (Ctrl-C or SIGTERM, see
# common.training_guards.StopOnSignals), a helper is given only this long:
# the stop must not wait for a hung one.
STOP_GRACE_SECONDS = 2.0
# A helper starts (Python, NumPy, the model's modules) and maps its segment
# in seconds at most: one that has said nothing in START_TIMEOUT_SECONDS is
# stuck (stopped, an import that hangs), and is killed; the caller goes on
# without it.
START_TIMEOUT_SECONDS = 60.0
# A helper checks this often whether the process that started it still lives.
PARENT_CHECK_SECONDS = 0.5
# POSIX removes a shared segment's name while processes keep it mapped; on
# Windows a segment has a name only while a handle to it is open, and
# SharedMemory.unlink does nothing.
NAMES_REMOVABLE_WHILE_MAPPED = os.name == "posix"
# The segments this process created whose names it has removed: unlinking
# one again would remove another's segment that got its name since, and make
# the resource tracker print a traceback (it has forgotten the name).
_names_removed = weakref.WeakSet()
# The names of this module's segments: "rnnlab_" PID "_" 12 hex digits (see
# the module docstring). A PID has at most 7 digits on Linux (pid_max is at
# most 2^22) and 5 on macOS.
SEGMENT_PREFIX = "rnnlab_"
_SEGMENT_NAME = re.compile(r"rnnlab_([1-9][0-9]{0,6})_[0-9a-f]{12}")
# Where a POSIX system lists its shared segments' names (Linux); elsewhere
# no leftovers are looked for.
SHM_DIR = "/dev/shm"
# A leftover name is removed only once this old (see remove_leftovers).
LEFTOVER_AGE_SECONDS = 60.0
# What a helper just started says once it is up (Python started, modules imported).
UP = "up"
# The status a helper exits with when its caller is gone (see reply).
CALLER_GONE_STATUS = 3


def _layout(K, m, n, dtype):
    """Byte offsets of W (K, m), a (n, K) and out (n, m) after the header, and the total."""
    item = np.dtype(dtype).itemsize
    offsets, position = [], _HEADER_BYTES
    for size in (K * m, n * K, n * m):
        offsets.append(position)
        position += -(-size * item // 64) * 64  # each array on its own cache lines
    return offsets, position


def _arrays(buffer, K, m, n, dtype):
    (w_at, a_at, out_at), _ = _layout(K, m, n, dtype)
    W = np.ndarray((K, m), dtype, buffer, offset=w_at)
    a = np.ndarray((n, K), dtype, buffer, offset=a_at)
    out = np.ndarray((n, m), dtype, buffer, offset=out_at)
    return W, a, out


def fits(blocks, n_rows) -> bool:
    """Whether helper processes can take these column blocks of ``W`` for
    inputs of ``n_rows`` rows: each segment within MAX_SEGMENT_BYTES and,
    where it can be read, within half the free shared memory."""
    sizes = [_layout(*W.shape, n_rows, W.dtype)[1] for W in blocks]
    if not sizes or max(sizes) > MAX_SEGMENT_BYTES:
        return False
    return fits_shared_memory(sum(sizes))


def fits_shared_memory(n_bytes) -> bool:
    """Whether ``n_bytes`` of new shared memory take at most half of what is
    free, where that can be read (a full /dev/shm kills the process that
    writes past its end)."""
    try:
        stats = os.statvfs("/dev/shm")
    except (AttributeError, OSError):  # not Linux: no small file system to fill
        return True
    return n_bytes <= stats.f_bavail * stats.f_frsize // 2


def segment_name() -> str:
    """A fresh name for a segment of this process's: ``rnnlab_PID_RANDOM``."""
    return f"{SEGMENT_PREFIX}{os.getpid()}_{secrets.token_hex(6)}"


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts; one of another user's
    too, which ``kill`` may not signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # PermissionError: it exists
        return True
    return True


def remove_leftovers() -> list:
    """Remove from /dev/shm the segments named by :func:`segment_name` whose
    creating process no longer exists (killed before it could remove the
    name, see the module docstring) and that are older than
    LEFTOVER_AGE_SECONDS; the names removed. Names of any other pattern,
    those whose process lives, and young ones are left alone; where /dev/shm
    cannot be listed (not Linux) nothing is done.

    The age: a live name exists for milliseconds, and the process of a
    name made in another PID namespace (a container sharing /dev/shm) looks
    dead from this one; an old name cannot be anyone's in use."""
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return []
    removed = []
    for name in names:
        match = _SEGMENT_NAME.fullmatch(name)
        if match is None or process_exists(int(match.group(1))):
            continue
        path = os.path.join(SHM_DIR, name)
        try:
            info = os.lstat(path)
            age = time.time() - info.st_mtime
            # (A time ahead of the clock: the clock was set back since. Old.)
            if not stat.S_ISREG(info.st_mode) or -5.0 <= age < LEFTOVER_AGE_SECONDS:
                continue
            os.unlink(path)
        except OSError:  # removed meanwhile (another process's sweep), or not ours to remove
            continue
        removed.append(name)
    return removed


def create_segment(size: int) -> shared_memory.SharedMemory:
    """A new shared segment of ``size`` bytes for a helper, named by
    :func:`segment_name`, once the leftovers of processes that were killed
    are removed (:func:`remove_leftovers`). Call it only once the helper is
    up (:func:`wait_until_up`), and :func:`remove_name` once it has mapped it."""
    remove_leftovers()
    if os.name == "posix":
        # The tracker that SharedMemory registers the name with starts now, not
        # while the name exists.
        resource_tracker.ensure_running()
    # Mapped first without a name: SharedMemory, when it cannot map a segment
    # it created (no memory, ulimit -v), unregisters from the tracker a name it
    # registers only once mapped, and the tracker printed a KeyError traceback.
    mmap.mmap(-1, max(size, 1)).close()
    for _ in range(16):
        try:
            return shared_memory.SharedMemory(segment_name(), create=True, size=size)
        except FileExistsError:  # (48 random bits drawn twice)
            continue
    raise FileExistsError("no free name for a shared segment")


def wait_until_up(process: subprocess.Popen, what: str) -> None:
    """In the caller: wait for a helper just started to say it is up (see
    the module docstring); OSError when it says anything else or dies,
    :class:`HelperHung` when it says nothing in time (:func:`read_reply`)."""
    line = read_reply(process, what)
    if line != UP:
        raise OSError(f"the {what} process did not start ({line or 'no reply'})")


def read_reply(process: subprocess.Popen, what: str) -> str:
    """In the caller: the next line a helper writes while it starts or
    begins, stripped ('' when it has ended). One that writes nothing in
    START_TIMEOUT_SECONDS (STOP_GRACE_SECONDS once a stop is requested) is
    killed: :class:`HelperHung`. (Read with no
    limit, a helper stopped at its start held ``fit`` for ever, and the
    first Ctrl-C, which asks for a stop at the next batch, did nothing.)

    The line is read on a thread of its own: a pipe's buffered reader gives
    no way to wait for a line with a time limit (a select on the pipe would
    miss a line the reader has already taken in)."""
    reply = []

    def read():
        try:
            reply.append(process.stdout.readline())
        except (OSError, ValueError):  # (closed by the caller meanwhile)
            reply.append("")

    reader = threading.Thread(target=read, name=f"rnnlab {what} reply", daemon=True)
    reader.start()
    started = time.monotonic()
    while reader.is_alive():
        reader.join(0.05)
        allowed = STOP_GRACE_SECONDS if stop_requested() else START_TIMEOUT_SECONDS
        if reader.is_alive() and time.monotonic() - started > allowed:
            kill_process(process)  # (its pipe then ends: the reader returns)
            reader.join(5)
            raise HelperHung(f"the {what} process did not answer in {allowed:g} s (stopped, "
                             f"or stuck while it starts); it was killed")
    return reply[0].strip() if reply else ""


def reply(stream, line: str) -> None:
    """In a helper: write ``line`` to the caller on ``stream``. When nobody
    reads it any more (the caller is gone: killed, or ended while this
    process started), exit at once with CALLER_GONE_STATUS, printing
    nothing: no traceback lands on the terminal after the caller's end."""
    try:
        stream.write(line + "\n")
        stream.flush()
    except BrokenPipeError:
        caller_gone()


def caller_gone():
    """In a helper whose caller is gone: exit now, quietly (``os._exit``: the
    reply still buffered would fail again, noisily, at a normal exit)."""
    os._exit(CALLER_GONE_STATUS)


class HelperHung(OSError):
    """A helper process that did not answer in time: it has been killed, and
    the caller computes its part itself, as for one that died."""


def stop_requested() -> bool:
    """Whether the user has asked the training run to stop (a first Ctrl-C
    or SIGTERM caught by :class:`common.training_guards.StopOnSignals`),
    which a caller waiting on a helper then waits for only
    STOP_GRACE_SECONDS. (Not imported from there: a run that never
    imported it has asked nothing, and the helpers import this module.)"""
    guards = sys.modules.get("common.training_guards")
    return guards is not None and guards.stop_requested()


def outside_stacklevel() -> int:
    """The ``stacklevel`` of a warning raised by the caller of this function
    that points at the first frame outside rnnlab's own packages (the
    user's call of ``fit``, say), not at a line of rnnlab, nor of
    :mod:`contextlib` running one of rnnlab's contexts."""
    root = str(Path(__file__).resolve().parent.parent)
    inside = tuple(os.path.join(root, package) + os.sep
                   for package in ("common", "layers", "models"))
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith(inside)
                                 or frame.f_code.co_filename == contextlib.__file__):
        frame, level = frame.f_back, level + 1
    return level


def exit_with_parent() -> None:
    """In a helper: exit as soon as the process that started it is gone.

    The helper otherwise exits when its standard input closes; but a child
    the caller forked, or one that outlives it, may hold a copy of that
    pipe's write end, and the helper would stay (with its shared segment)
    as long as that child does.
    """
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="rnnlab-parent-watch", daemon=True).start()


def start_process(module: str, *args: str) -> subprocess.Popen:
    """``python -m module args`` as a helper process: BLAS single-threaded in
    it, this checkout on its path, pipes to its standard input and output."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=root, text=True,
        # Its own session: a Ctrl-C or a signal to the caller's process group
        # (while it starts, too) is the caller's to handle, not the helper's.
        start_new_session=True)


def stop_process(process: subprocess.Popen) -> None:
    """End a helper process: close its standard input (it exits), or kill it
    (and reap it, leaving no zombie)."""
    try:
        process.stdin.close()
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        kill_process(process)
    if process.stdout is not None:  # (left open, a ResourceWarning at exit)
        process.stdout.close()


def kill_process(process: subprocess.Popen) -> None:
    """Kill a helper process (a stopped one too) and reap it."""
    try:
        process.kill()
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass


def forget_process(process: subprocess.Popen) -> None:
    """In a forked child: let go of this process's copies of the pipes to a
    helper of the parent, without telling the helper anything (the parent
    goes on using it; a copy of the write end kept here would keep the
    helper alive after the parent).

    Not by closing the pipes' file objects: a thread of the parent may have
    held one's buffer lock at the fork (writing a command, waiting for a
    reply), and that thread does not exist here, so closing the object, or
    freeing it, would wait for the lock forever. Each descriptor is pointed
    at /dev/null instead, and the object kept for good."""
    for pipe in (process.stdin, process.stdout):
        if pipe is None:
            continue
        try:
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, pipe.fileno())  # (fileno takes no lock)
            finally:
                os.close(null)
        except (OSError, ValueError):
            pass
        _keep_for_good(pipe)
    process.stdin = process.stdout = None
    process.returncode = 0  # not ours to wait for: Popen's finaliser leaves it alone


def _keep_for_good(obj) -> None:
    """Never free ``obj``, not even at the interpreter's exit (which frees
    what modules hold: a file object freed then takes its lock too)."""
    try:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    except (ImportError, AttributeError):  # not CPython: held until the exit, at least
        _KEPT.append(obj)


_KEPT: list = []


def quiet_at_exit(close):
    """``close`` as an atexit function: Ctrl-C is ignored while it runs, and
    one that landed just before is absorbed (it would print a traceback
    from the atexit callback, and leave a helper or a segment behind)."""
    def run():
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for _ in range(3):
                try:
                    close()
                    return
                except KeyboardInterrupt:
                    continue
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
    return run


def close_in_multiprocessing_child(close) -> None:
    """Also run ``close`` (quietly, see :func:`quiet_at_exit`) when this process
    is a multiprocessing child that ends: it leaves through ``os._exit``,
    which skips atexit, after running multiprocessing's own finalizers. Call
    it in the process that starts the helper (a child starts with no
    finalizers of its parent's)."""
    from multiprocessing import util

    util.Finalize(None, quiet_at_exit(close), exitpriority=10)


def attach(name: str) -> shared_memory.SharedMemory:
    """Map the segment ``name`` that the caller created, in a helper process,
    without this process's resource tracker: the segment is the caller's.

    Before Python 3.13 (``track=False``), attaching registers the name with
    this process's tracker, which would remove it when this process ends, and
    a mapping that fails (no memory) unregisters a name the tracker never
    saw, which then printed a ``KeyError`` traceback on the user's terminal.
    """
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, track=False)
    register, unregister = resource_tracker.register, resource_tracker.unregister
    resource_tracker.register = resource_tracker.unregister = _untracked
    try:
        return shared_memory.SharedMemory(name)
    finally:
        resource_tracker.register, resource_tracker.unregister = register, unregister


def _untracked(name, rtype):
    pass


def unmap_inherited(segment: shared_memory.SharedMemory | None) -> None:
    """In a forked child: unmap its copy of a segment the parent owns (and
    goes on using), without removing its name (the parent's to remove,
    once its helper has mapped it, usually long before the fork)."""
    if segment is None:
        return
    try:
        segment.close()
    except BufferError:  # a view of it is still held here: the mapping stays
        pass


def remove_name(segment: shared_memory.SharedMemory) -> None:
    """Remove the name of a shared segment this process created, once its
    helper has mapped it; this process and the helper keep their mappings
    (see the module docstring). Nothing named is then left behind when
    either process ends, however it ends, and the resource tracker (which
    ``unlink`` tells) has nothing to warn about. Idempotent; where names
    cannot be removed while mapped it does nothing, and
    :func:`release_segment` removes the name."""
    if not NAMES_REMOVABLE_WHILE_MAPPED or segment in _names_removed:
        return
    try:
        segment.unlink()
    except FileNotFoundError:  # someone emptied /dev/shm: the tracker must forget it too
        resource_tracker.unregister(segment._name, "shared_memory")
    _names_removed.add(segment)


def release_segment(segment: shared_memory.SharedMemory) -> None:
    """Unmap a shared segment this process created, and remove its name
    unless :func:`remove_name` has."""
    try:
        segment.close()
    except BufferError:  # a caller still holds a view of it: the mapping stays
        pass
    if segment not in _names_removed:
        try:
            segment.unlink()
        except FileNotFoundError:  # removed by someone else: the tracker must forget it too
            resource_tracker.unregister(segment._name, "shared_memory")


class StepWorker:
    """The caller's side of one helper process (see the module docstring).

    ``begin(W_block, n)`` starts a loop: the worker will compute
    ``a @ W_block`` for inputs ``a`` of ``n`` rows; ``post(a)`` hands it one
    step's input, ``wait()`` returns its output ``(n, m)`` (a view into the
    shared segment, valid until the next ``post``); ``end()`` ends the loop.
    ``close()`` stops the process. Raises OSError when the process cannot
    be started or has died.
    """

    # A new process's first products are slow (its BLAS and the shared pages
    # warm up): the caller judges the hand-off only after this many.
    WARM_UP_STEPS = 64

    def __init__(self):
        self.segment = None
        self.process = None
        self.counters = None
        self.step = 0
        self.served = 0  # steps served since the process started
        self.a = self.out = None

    @property
    def warm(self) -> bool:
        """Whether the process has served WARM_UP_STEPS steps."""
        return self.served >= self.WARM_UP_STEPS

    def _ensure(self, size):
        if self.segment is not None and self.segment.size >= size and self.alive():
            return
        self.close()
        self.served = 0
        try:
            # The process first, the segment once it is up: its name then
            # exists only while the process maps it (milliseconds), not while
            # Python starts and imports NumPy.
            self.process = start_process("common.step_worker")
            wait_until_up(self.process, "step worker")
            self.segment = create_segment(size)
            self.counters = np.ndarray((16,), np.int64, self.segment.buf)
            self.counters[:] = 0
            try:
                self.process.stdin.write(self.segment.name + "\n")
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError) as error:
                raise OSError("the step worker process did not start") from error
            if read_reply(self.process, "step worker") != "ready":
                raise OSError("the step worker process did not start")
        except BaseException:
            self.close()
            raise
        remove_name(self.segment)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def forget(self):
        """In a forked child: drop the parent's helper (see :func:`forget_process`)."""
        if self.process is not None:
            forget_process(self.process)
            self.process = None
        self.a = self.out = self.counters = None
        unmap_inherited(self.segment)
        self.segment = None

    def begin(self, W_block, n):
        K, m = W_block.shape
        _, size = _layout(K, m, n, W_block.dtype)
        self._ensure(max(size, 1 << 20))
        W, self.a, self.out = _arrays(self.segment.buf, K, m, n, W_block.dtype)
        W[...] = W_block
        self.counters[_POSTED] = self.counters[_DONE] = self.step = 0
        try:
            self.process.stdin.write(f"{K} {m} {n} {np.dtype(W_block.dtype).str}\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as error:
            raise OSError("the step worker process has died") from error

    def post(self, a):
        self.a[...] = a
        self.step += 1
        self.counters[_POSTED] = self.step

    def _until_done(self, value):
        """Spin until the worker writes ``value`` as done; False if it died
        first, or did not answer in STEP_TIMEOUT_SECONDS (STOP_GRACE_SECONDS
        once a stop is requested): then it is killed, as hung."""
        counters = self.counters
        spins = 0
        started = None
        while counters[_DONE] != value:
            spins += 1
            if spins & 0xFFFF == 0:
                if not self.alive():
                    return False
                now = time.monotonic()
                started = started or now
                limit = STOP_GRACE_SECONDS if stop_requested() else STEP_TIMEOUT_SECONDS
                if now - started > limit:
                    kill_process(self.process)
                    return False
        return True

    def wait(self):
        if not self._until_done(self.step):
            raise OSError("the step worker process has died or hung")
        self.served += 1
        return self.out

    def end(self):
        self.counters[_POSTED] = _STOP
        self._until_done(_STOP)

    def close(self):
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        if self.segment is not None:
            segment, self.segment = self.segment, None  # (released once, however it goes)
            self.a = self.out = self.counters = None
            release_segment(segment)


def _serve():
    """The worker's side: map the segment named on the first line of standard
    input, then serve loops until the caller closes it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    parent = os.getppid()
    exit_with_parent()  # waiting on stdin, it would outlive a parent whose fork holds the pipe
    reply(sys.stdout, UP)  # the caller creates the segment now
    name = sys.stdin.readline()
    # The caller closed it before naming a segment (or was killed while naming one).
    if not name.endswith("\n") or not name.strip():
        return
    name = name.strip()
    try:
        segment = attach(name)
    except OSError as error:
        reply(sys.stdout, f"error {type(error).__name__}: {error}")  # (exits if nobody reads)
        if os.getppid() != parent:  # the caller is gone (and so is its segment)
            caller_gone()
        sys.exit(1)  # (told to the caller, which goes on without this process)
    counters = np.ndarray((16,), np.int64, segment.buf)
    # Mapped: the caller now removes the name (remove_name).
    reply(sys.stdout, "ready")
    for line in sys.stdin:
        if not line.endswith("\n"):  # the caller was killed while writing it
            return
        K, m, n, dtype = line.split()
        W, a, out = _arrays(segment.buf, int(K), int(m), int(n), np.dtype(dtype))
        done = 0
        while True:
            spins = 0
            while counters[_POSTED] == done:
                spins += 1
                if spins & 0xFFFF == 0 and os.getppid() != parent:
                    return
            posted = int(counters[_POSTED])
            if posted == _STOP:
                counters[_DONE] = _STOP
                break
            np.matmul(a, W, out=out)
            done = posted
            counters[_DONE] = done
        del W, a, out


if __name__ == "__main__":
    _serve()
