"""What the tests of rnnlab's helper processes share: markers for what the
machine allows, fixtures, and ways to watch processes end.

Imported by the test files beside it (pytest puts ``tests/`` on the path).
Each fixture here applies to every test of a file that imports it:
``two_threads`` (two threads, a helper that is not resting, closed
afterwards) and ``small_models_split`` (the batch halves for any batch of
two rows or more, the helper never found slow).
"""

import multiprocessing
import os
import signal
import sys
import time

import numpy as np
import pytest

import common.parallel as parallel
from common import blas, data_parallel, step_worker

needs_blas_control = pytest.mark.skipif(
    blas.get_threads() is None,
    reason="NumPy's BLAS is not an OpenBLAS whose thread count rnnlab can set",
)
needs_helpers = pytest.mark.skipif(
    not step_worker.AVAILABLE or sys.platform != "linux",
    reason="helper processes run only on x86-64 Linux",
)
needs_processes = pytest.mark.skipif(not data_parallel.PROCESSES_AVAILABLE,
                                     reason="the helper process is for x86-64 only")
needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(),
    reason="this platform cannot fork",
)


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    """Two threads, helpers allowed and not resting, none left from another
    test (one that trains without this fixture keeps its helper), and closed
    afterwards."""
    data_parallel._close()
    parallel._close_processes()
    monkeypatch.setattr(parallel, "_threads", 2)
    monkeypatch.setattr(parallel, "_processes_resting_until", 0.0)
    monkeypatch.setattr(data_parallel, "_resting_until", 0.0)
    monkeypatch.setattr(data_parallel, "_disabled", False)
    try:
        yield
    finally:
        data_parallel._close()
        parallel._close_processes()


def parent_pids() -> dict:
    """Every process's pid, with the pid of its parent (Linux /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:  # (ended meanwhile)
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def children(pid) -> list:
    """The pids of the processes whose parent is ``pid``."""
    return [child for child, parent in parent_pids().items() if parent == pid]


def descendants(pid) -> list:
    """The pids of every process below ``pid``."""
    parents = parent_pids()
    found, todo = [], [pid]
    while todo:
        above = todo.pop()
        below = [child for child, parent in parents.items() if parent == above]
        found += below
        todo += below
    return found


def gone(pid) -> bool:
    """Whether process ``pid`` has ended (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(condition, seconds=30.0) -> bool:
    """Whether ``condition()`` comes true within ``seconds`` (asked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def wait_gone(pids, seconds=15) -> bool:
    """Whether all of ``pids`` end within ``seconds`` (a helper notices its
    parent is gone within ``step_worker.PARENT_CHECK_SECONDS``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.1)
    return all(gone(p) for p in pids)


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture(autouse=True)
def small_models_split(monkeypatch):
    """Any batch of at least two rows splits; the helper is not resting, and is
    never found slow (on a busy machine it could be, and would rest: fewer
    posts than a test counts)."""
    monkeypatch.setattr(data_parallel, "SLOW_SECONDS", 60.0)
    monkeypatch.setattr(data_parallel, "MIN_HALF_ROWS", 1)
    monkeypatch.setattr(data_parallel, "MIN_HALF_STEP_MULTIPLY_ADDS", 1)
    monkeypatch.setattr(data_parallel, "num_threads", lambda: 2)
    monkeypatch.setattr(data_parallel, "_resting_until", 0.0)
    monkeypatch.setattr(data_parallel, "_disabled", False)


def lm_batches(rng, n_batches, V, rows=9, T=5):
    """``n_batches`` pairs of random ids ``(rows, T)`` below ``V``: a language
    model's inputs and targets."""
    return [(rng.integers(0, V, (rows, T)), rng.integers(0, V, (rows, T)))
            for _ in range(n_batches)]


def assert_halves_carry_the_whole_batchs_state(halved, whole, batches, H):
    """Batch after batch, ``halved`` trained by halves gives the loss, the
    gradients and the carried state ``whole`` gives on the whole batch (the
    same model in float64: within round-off); the state is the whole batch's
    (each entry ``(rows, H)``), for the next batch."""
    x, t = batches[0]
    with data_parallel.batch_halves(halved, x.shape, t.shape) as forward_backward:
        for x, t in batches:
            loss = forward_backward(x, t)
            expected = whole.forward(x, t)
            whole.backward()
            assert loss == pytest.approx(expected, rel=1e-13)
            for g, e in zip(halved.grads, whole.grads, strict=True):
                np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)
            for s, e in zip(halved.get_state(), whole.get_state(), strict=True):
                assert s.shape == (len(x), H)
                np.testing.assert_allclose(s, e, rtol=1e-12, atol=1e-14)
