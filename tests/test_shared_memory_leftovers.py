"""What a caller killed with SIGKILL leaves in /dev/shm, and what its helper prints.

1. A leftover segment (its creator was killed between creating it and its
   helper mapping it) stayed in /dev/shm forever: nothing knew whose it was.
   The names now say who made them (``rnnlab_PID_RANDOM``), and creating a
   segment first removes those whose creator no longer exists.
2. The caller created the segment as soon as the helper process existed,
   and the name stayed while the helper started Python and imported NumPy
   (0.3-1 s): a ``kill -9`` of the caller's process group then left it. The
   helper now says it is up first, and only then is the segment created.
3. A helper whose caller was killed printed a BrokenPipeError traceback (or
   a FileNotFoundError one) on the terminal, after the shell's prompt; it
   now exits quietly.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import pytest

from common import batch_worker, step_worker
from models import Seq2seq

from helper_processes import (  # noqa: F401  (two_threads: a fixture for every test here)
    kill_all,
    needs_helpers,
    two_threads,
    wait_gone,
)

ROOT = Path(__file__).resolve().parent.parent
SHM = Path("/dev/shm")


def start_helper(kind):
    """A helper of ``kind`` begun on a small loop or model; the worker."""
    if kind == "step":
        import numpy as np

        worker = step_worker.StepWorker()
        worker.begin(np.ones((64, 64), np.float32), 8)
        worker.end()  # (out of its loop: it exits as soon as close() closes its input)
    else:
        worker = batch_worker.BatchWorker()
        worker.begin(Seq2seq(13, 8, 16, seed=0), (8, 7), (8, 5))
    return worker


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# -- 1. Leftovers of killed creators are removed -------------------------------------------


@needs_helpers
@pytest.mark.parametrize("kind", ["step", "batch"])
def test_leftovers_of_dead_creators_are_removed_at_the_next_segment(kind):
    sleeper = subprocess.Popen(["sleep", "60"])
    token = os.urandom(6).hex()
    dead = f"rnnlab_{dead_pid()}_{token}"
    alive = f"rnnlab_{sleeper.pid}_{token}"
    init = f"rnnlab_1_{token}"  # (not ours to signal unless we are root: exists all the same)
    foreign = [f"psm_{token[:8]}", f"rnnlab_{dead_pid()}_{token}x", f"rnnlab_{token}",
               f"rnnlab_{dead_pid()}_{token.upper()}x", f"other_{dead_pid()}_{token}"]
    # A dead creator's name made a moment ago: another PID namespace's live
    # process (a container sharing /dev/shm) looks dead from here.
    young = f"rnnlab_{dead_pid()}_{token[::-1]}"
    # One whose time is ahead of the clock (set back since): old, not young.
    ahead = f"rnnlab_{dead_pid()}_{token[6:]}{token[:6]}"
    names = [dead, alive, init, young, ahead, *foreign]
    worker = None
    try:
        old = time.time() - 2 * step_worker.LEFTOVER_AGE_SECONDS
        for name in names:
            (SHM / name).write_bytes(b"\0" * 4096)
            if name != young:
                when = time.time() + 3600 if name == ahead else old
                os.utime(SHM / name, (when, when))
        worker = start_helper(kind)
        assert not (SHM / dead).exists(), "a dead creator's segment was left"
        assert not (SHM / ahead).exists(), "a segment dated ahead of the clock was left"
        for name in [alive, init, young, *foreign]:
            assert (SHM / name).exists(), f"{name} was removed"
        # Ours: named after this process (and nameless once mapped).
        assert worker.segment.name.startswith(f"rnnlab_{os.getpid()}_")
        assert len("/" + worker.segment.name) <= 31  # macOS's limit
        assert not (SHM / worker.segment.name).exists()
    finally:
        if worker is not None:
            worker.close()
        sleeper.kill()
        sleeper.wait()
        for name in names:
            (SHM / name).unlink(missing_ok=True)


# -- 2. No segment while the helper starts --------------------------------------------------


# Run by every Python process started with this on its path: a helper's start
# takes SLOW seconds longer, then leaves a mark.
SLOW_START = """
import os, sys, time

if any(m in sys.orig_argv for m in ("common.step_worker", "common.batch_worker")):
    time.sleep(0.5)
    open(os.environ["RNNLAB_TEST_STARTED"], "w").close()
"""


@needs_helpers
@pytest.mark.parametrize("kind", ["step", "batch"])
def test_the_segment_is_created_only_once_the_helper_has_started(kind, tmp_path,
                                                                  monkeypatch):
    """A segment created while its helper still starts is named for as long as
    the start takes; a caller killed meanwhile leaves it in /dev/shm."""
    (tmp_path / "sitecustomize.py").write_text(SLOW_START)
    started = tmp_path / "started"
    monkeypatch.setenv("RNNLAB_TEST_STARTED", str(started))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # (the helper's; ROOT goes first)
    created = []  # whether the helper had started, at each segment's creation
    real = shared_memory.SharedMemory

    def recording(*args, **kwargs):
        if kwargs.get("create") or (len(args) > 1 and args[1]):
            created.append(started.exists())
        return real(*args, **kwargs)

    monkeypatch.setattr(shared_memory, "SharedMemory", recording)
    worker = None
    try:
        worker = start_helper(kind)
        assert created == [True], "the segment was created while the helper was starting"
        assert started.exists() and not (SHM / worker.segment.name).exists()
    finally:
        if worker is not None:
            worker.close()


# -- 3. A helper whose caller is gone exits quietly -----------------------------------------


# The caller: starts a helper, stops it (SIGSTOP) while it starts or once it
# said it is up, hands it a segment's name (its line cut short: partial),
# prints the helper's pid, and kills itself. The test then lets the helper go
# on, with nobody to reply to.
CALLER = """
    import json, os, select, signal, sys
    from common import step_worker

    module, when, line = sys.argv[1:]
    process = step_worker.start_process(module)
    if when.startswith("up"):  # (the first line of a helper that says so: up)
        if select.select([process.stdout], [], [], 5)[0]:
            process.stdout.readline()
    os.kill(process.pid, signal.SIGSTOP)
    process.stdin.write(line[:len(line) // 2] if when.endswith("partial") else line + "\\n")
    process.stdin.flush()
    print(process.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


# A batch helper's begin for an empty layout (no parameters, one row), and its size.
EMPTY_LAYOUT = batch_worker.layout([], "float32", (1, 1), (1, 1))


def begin_line(segment):
    """A begin that a batch helper maps (EMPTY_LAYOUT)."""
    offsets, _ = EMPTY_LAYOUT
    spec = {"model": "models:Seq2seq", "config": {}, "dtype": "<f4", "param_shapes": [],
            "offsets": offsets, "x_shape": [1, 1], "t_shape": [1, 1], "state_sizes": [],
            "ignore_label": None, "segment": segment}
    return json.dumps({"begin": spec})


@needs_helpers
@pytest.mark.parametrize("module", ["common.step_worker", "common.batch_worker"])
@pytest.mark.parametrize("when", ["starting", "up-vanished", "up-mapped", "up-partial"])
def test_a_helper_whose_caller_was_killed_exits_without_a_traceback(module, when):
    """starting: it replies (up) to nobody; up-vanished: the segment named
    is gone (the caller's resource tracker removed it); up-mapped: it maps
    the segment, and says so to nobody; up-partial: the caller was killed
    while it wrote the line (its end is missing)."""
    segment = shared_memory.SharedMemory(create=True, size=EMPTY_LAYOUT[1])
    resource_tracker.unregister(segment._name, "shared_memory")  # (unlinked below)
    name = segment.name if when == "up-mapped" else f"rnnlab_1_{os.urandom(6).hex()}"
    line = begin_line(name) if module == "common.batch_worker" else name
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    caller = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CALLER), module, when, line],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    helper = None
    try:
        helper = int(caller.stdout.readline())
        assert caller.wait(timeout=30) == -signal.SIGKILL
        os.kill(helper, signal.SIGCONT)
        # (Read to the end: the helper holds the pipe.)
        _, err = caller.communicate(timeout=30)
        assert wait_gone([helper]), "the helper outlived its caller"
        assert "Traceback" not in err and "Error" not in err, err
        assert not err.strip(), err
    finally:
        if helper is not None:
            kill_all([helper])
        caller.kill()
        caller.communicate()
        segment.close()
        segment.unlink()


NO_ADDRESS_SPACE = """
import resource, sys
from multiprocessing import resource_tracker
from common import step_worker

resource_tracker.ensure_running()  # (started before the limit, as it would be)
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (size + (64 << 20), resource.RLIM_INFINITY))
try:
    if sys.argv[1] == "create":
        step_worker.create_segment(1 << 30)
    else:
        step_worker.attach(sys.argv[2])
except OSError as error:
    print(type(error).__name__, error.errno)
"""


@needs_helpers
@pytest.mark.parametrize("side", ["create", "attach"])
def test_a_segment_that_cannot_be_mapped_leaves_no_traceback_from_the_tracker(side):
    """No address space to map a segment (ulimit -v): SharedMemory unregistered
    from the resource tracker a name it had not registered, and the tracker
    printed a KeyError traceback beside the run's own out-of-memory message.
    (create: the caller's segment; attach: a helper mapping the caller's.)"""
    segment = shared_memory.SharedMemory(create=True, size=1 << 30) if side == "attach" else None
    try:
        done = subprocess.run(
            [sys.executable, "-c", NO_ADDRESS_SPACE, side, segment.name if segment else ""],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), text=True,
            capture_output=True, timeout=60)
        assert done.stdout.split()[-1] == "12", done.stdout + done.stderr  # ENOMEM
        assert not done.stderr.strip(), done.stderr
    finally:
        if segment is not None:
            segment.close()
            try:
                segment.unlink()  # (a failed attach removes the name, as CPython does)
            except FileNotFoundError:
                resource_tracker.unregister(segment._name, "shared_memory")


@needs_helpers
def test_a_helper_mapping_the_callers_segment_leaves_it_to_the_caller():
    """Attached without the helper's resource tracker: the segment outlives the
    helper, which neither removes it nor warns of a leak when it ends."""
    segment = shared_memory.SharedMemory(create=True, size=4096)
    try:
        code = ("import sys; from common import step_worker; "
                "s = step_worker.attach(sys.argv[1]); s.buf[0] = 7; s.close()")
        done = subprocess.run([sys.executable, "-c", code, segment.name], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), text=True,
                              capture_output=True, timeout=60)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr
        assert (SHM / segment.name).exists() and segment.buf[0] == 7
    finally:
        segment.close()
        segment.unlink()
