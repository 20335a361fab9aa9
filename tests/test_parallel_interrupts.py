"""A Ctrl-C caught by one's own loop (a notebook, a hand-written training
loop) leaves the multi-core machinery as it found it, wherever it lands:

- while a step product hands its block to a pool thread: the thread is
  still stopped with the others (it blocked the process's exit forever);
- while :class:`common.parallel.managed` switches BLAS to one thread, or
  back: the thread count BLAS had is not lost (it stayed at 1);
- while a step helper process starts: helpers are tried again later (they
  were never used again in the process);

and ``RNNLAB_NUM_THREADS`` above the CPUs available is capped, with a
warning (1000 started one spinning helper per block, and never finished).
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import common.parallel as parallel
from common import blas, step_worker

needs_blas_control = pytest.mark.skipif(
    blas.get_threads() is None,
    reason="NumPy's BLAS is not an OpenBLAS whose thread count rnnlab can set",
)


class Once:
    """A function that raises KeyboardInterrupt at its first call (after
    calling ``real``, when ``after``), then behaves as ``real``."""

    def __init__(self, real, after=False):
        self.real, self.after, self.calls = real, after, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            if self.after:
                self.real(*args, **kwargs)
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


@needs_blas_control
def test_ctrl_c_as_a_pool_thread_starts_leaves_no_thread_behind(monkeypatch):
    monkeypatch.setattr(parallel, "_threads", 2)
    monkeypatch.setattr(parallel, "STEP_PROCESSES", False)
    for threshold in ("BLOCK_MULTIPLY_ADDS", "MIN_BATCH_ROWS", "MIN_STEP_MULTIPLY_ADDS",
                      "MIN_SPLIT_STEP_MULTIPLY_ADDS", "MIN_SPLIT_STEP_MULTIPLY_ADDS_PROCESS",
                      "MIN_SPLIT_COLUMNS"):
        monkeypatch.setattr(parallel, threshold, 1)  # everything split
    served = []
    real_serve = parallel._Worker._serve

    def serve(self):
        served.append(self)
        real_serve(self)
        served.remove(self)  # the thread ended

    monkeypatch.setattr(parallel._Worker, "_serve", serve)
    # The interrupt lands just after the pool thread was handed its loop.
    monkeypatch.setattr(parallel, "_submit", Once(parallel._submit, after=True))
    W = np.random.default_rng(0).standard_normal((6, 37)).astype(np.float32)
    a = np.ones((4, 6), np.float32)
    out = np.empty((4, 37), np.float32)
    with pytest.raises(KeyboardInterrupt):
        with parallel.step_products(W, 4) as product:
            product(a, out)
    deadline = time.monotonic() + 10
    while served and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served == []  # else it waited forever, and so did the process's exit
    with parallel.step_products(W, 4) as product:  # and the next loop works
        np.testing.assert_allclose(product(a, out), a @ W, rtol=1e-5)


@pytest.fixture
def blas_threads():
    """BLAS with two threads or more, as it starts on a machine of two cores:
    with one (OPENBLAS_NUM_THREADS=1), managed() would have nothing to give back."""
    original = blas.get_threads()
    if original == 1:
        blas.set_threads(2)
    if blas.get_threads() == 1:
        pytest.skip("this BLAS keeps one thread: managed() has nothing to give back")
    yield
    blas.set_threads(original)


@needs_blas_control
@pytest.mark.parametrize("where", ["entering", "leaving"])
def test_ctrl_c_while_managed_switches_blas_gives_its_threads_back(monkeypatch, where,
                                                                   blas_threads):
    monkeypatch.setattr(parallel, "_threads", 2)
    before = blas.get_threads()
    assert parallel._managed_depth == 0
    # The interrupt lands once BLAS was switched (entering) or given back (leaving).
    target = 1 if where == "entering" else before

    def set_threads(n, real=blas.set_threads):
        done = real(n)
        if n == target and not interrupted:
            interrupted.append(n)
            raise KeyboardInterrupt
        return done

    interrupted = []
    monkeypatch.setattr(blas, "set_threads", set_threads)
    with pytest.raises(KeyboardInterrupt):
        with parallel.managed():
            pass
    assert interrupted
    with parallel.managed():  # the next context gives BLAS back what it had
        assert blas.get_threads() == 1
    assert parallel._managed_depth == 0 and blas.get_threads() == before


def test_ctrl_c_while_a_step_helper_starts_leaves_helpers_to_try_again(monkeypatch):
    if not step_worker.AVAILABLE:
        pytest.skip("no step helper processes on this platform")
    # This process's helpers as if none had been started (an earlier test's
    # would serve, or rest after a slow hand-off).
    monkeypatch.setattr(parallel, "STEP_PROCESSES", True)
    monkeypatch.setattr(parallel, "_processes", [])
    monkeypatch.setattr(parallel, "_processes_in_use", False)
    monkeypatch.setattr(parallel, "_processes_resting_until", 0.0)
    starting = Once(step_worker.StepWorker.__init__)
    monkeypatch.setattr(step_worker.StepWorker, "__init__",
                        lambda self, *args, **kwargs: starting(self, *args, **kwargs))
    blocks = [np.ones((64, 64), np.float32)]
    with pytest.raises(KeyboardInterrupt):
        parallel._step_processes(1, blocks, 64)
    assert not parallel._processes_in_use  # the claim is given back
    try:
        assert len(parallel._step_processes(1, blocks, 64)) == 1
    finally:
        parallel._release_processes(parallel._processes[:1])
        parallel._close_processes()


def test_a_thread_count_above_the_cpus_is_capped_with_a_warning(monkeypatch):
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("RNNLAB_NUM_THREADS", "1000")
    monkeypatch.setattr(parallel, "_threads", None)
    with pytest.warns(RuntimeWarning, match="RNNLAB_NUM_THREADS=1000 is more than the 2 "
                                            "CPUs this process may use: using 2"):
        assert parallel.num_threads() == 2
    monkeypatch.setenv("RNNLAB_NUM_THREADS", "2")
    monkeypatch.setattr(parallel, "_threads", None)
    assert parallel.num_threads() == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_child_forked_while_a_thread_writes_to_a_helper_does_not_hang():
    """A thread of the parent inside a write to a helper's pipe (it holds the
    pipe's buffer lock) when another forks: the child lets go of the pipe
    without that lock, whose holder does not exist in the child."""
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              stdin=subprocess.PIPE, text=True)

    def write():  # blocks: the helper reads nothing, and the pipe holds 64 KiB
        try:
            helper.stdin.write("x" * (1 << 20))
            helper.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(0.3)
    try:
        pid = os.fork()
        if pid == 0:  # the child
            try:
                step_worker.forget_process(helper)
            finally:
                os._exit(0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung letting go of the helper's pipe")
    finally:
        helper.kill()
        helper.wait()
        writer.join(timeout=10)
