"""Two limits of the multi-core machinery, lifted.

1. A helper's shared segment (common.step_worker, common.batch_worker) kept
   its name in /dev/shm until the process that created it released it: one
   killed first (SIGKILL, os._exit, a pool's terminate()) left it named, and
   Python's resource tracker warned of "leaked shared_memory objects". Its
   name is now removed as soon as the helper has mapped it.
2. Two threads each running a hand-written training loop shared the one
   queue of common.parallel.deferred(): one thread went on to its update
   with its weight gradients still queued, or ran or dropped the other's.
   The queue now belongs to one thread at a time, and the loops give the
   bits they give one after the other.

Nothing here asserts a time: whatever could hang runs with a generous
timeout, and the helpers and segments a test makes are gone when it ends.
"""

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import common.parallel as parallel
from common import batch_worker, blas, step_worker
from models import Rnnlm, Seq2seq

from helper_processes import (  # noqa: F401  (two_threads: a fixture for every test here)
    gone,
    kill_all,
    needs_blas_control,
    needs_helpers,
    two_threads,
    wait_gone,
)

ROOT = Path(__file__).resolve().parent.parent
SHM = Path("/dev/shm")


def named(name) -> bool:
    return (SHM / name).exists()


def unlink_if_named(names):
    """Remove segments a failing test left named (what the tracker would warn of)."""
    for name in names:
        try:
            (SHM / name).unlink()
        except OSError:
            pass


# -- 1. Nothing named outlives the helper's attach ----------------------------------------


@needs_helpers
def test_a_step_workers_segment_loses_its_name_once_the_helper_maps_it():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((128, 256)).astype(np.float32)
    worker = step_worker.StepWorker()
    names, pids = [], []
    try:
        worker.begin(W, 32)
        names.append(worker.segment.name)
        pids.append(worker.process.pid)
        assert not named(names[0])  # (it stayed until close() unlinked it)
        a = rng.standard_normal((32, 128)).astype(np.float32)
        worker.post(a)
        np.testing.assert_allclose(worker.wait(), a @ W, rtol=1e-5, atol=1e-5)
        worker.end()
        # A loop whose segment is larger: a new segment (and process), nameless too.
        W = rng.standard_normal((128, 1024)).astype(np.float32)
        worker.begin(W, 256)
        names.append(worker.segment.name)
        pids.append(worker.process.pid)
        assert names[1] != names[0] and not named(names[1])
        assert wait_gone(pids[:1])
        a = rng.standard_normal((256, 128)).astype(np.float32)
        worker.post(a)
        np.testing.assert_allclose(worker.wait(), a @ W, rtol=1e-5, atol=1e-5)
        worker.end()
        worker.close()  # only unmaps now: no second unlink
        worker.close()
        assert wait_gone(pids)
    finally:
        worker.close()
        kill_all(pids)
        unlink_if_named(names)


@needs_helpers
def test_a_batch_workers_segment_loses_its_name_once_the_helper_maps_it():
    model = Seq2seq(13, 16, 32, seed=0)
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 13, (64, 7)), rng.integers(0, 13, (64, 5))
    worker = batch_worker.BatchWorker()
    names = []
    try:
        worker.begin(model, x.shape, t.shape)
        names.append(worker.segment.name)
        assert not named(names[0])  # (it stayed until close() unlinked it)
        worker.post(model.params, x, t)
        loss, grads, _ = worker.wait(timeout=60)
        with parallel.managed(), parallel.one_core():
            expected = model.forward(x, t)
            model.backward()
        assert loss == pytest.approx(expected, rel=1e-6)
        for mine, theirs in zip(model.grads, grads, strict=True):
            np.testing.assert_allclose(theirs, mine, rtol=1e-5, atol=1e-7)
        # Begun again (a new run): a new segment, which the helper maps by its name.
        worker.begin(model, (32, 7), (32, 5))
        names.append(worker.segment.name)
        assert names[1] != names[0] and not named(names[1])
        worker.post(model.params, x[:32], t[:32])
        assert np.isfinite(worker.wait(timeout=60)[0])
        pid = worker.process.pid
        worker.close()
        assert wait_gone([pid])
    finally:
        if worker.process is not None:
            kill_all([worker.process.pid])
        worker.close()
        unlink_if_named(names)


# A module whose import takes a second, then leaves a mark: the helper imports it
# to build its replica.
SLOW_TO_IMPORT = """
import os
import time

from tests.replicable_example import GruSeq2seq

time.sleep(1.0)
open(os.environ["RNNLAB_TEST_MARK"], "w").close()


class SlowGruSeq2seq(GruSeq2seq):
    replicable = True
"""


@needs_helpers
def test_the_name_is_gone_before_the_helper_builds_its_replica(tmp_path, monkeypatch):
    """Building the model (importing its module) is the longest part of a
    helper's start: the name is removed once the segment is mapped, before
    that, not after."""
    (tmp_path / "slow_to_import.py").write_text(SLOW_TO_IMPORT)
    mark = tmp_path / "imported"
    monkeypatch.setenv("RNNLAB_TEST_MARK", str(mark))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # (for the helper; ROOT goes first)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = __import__("slow_to_import").SlowGruSeq2seq(13, 8, 16, seed=0)
    mark.unlink()  # (this process's import made it)
    when_removed = []
    remove_name = step_worker.remove_name

    def watching(segment):
        when_removed.append(mark.exists())
        remove_name(segment)

    monkeypatch.setattr(step_worker, "remove_name", watching)
    worker = batch_worker.BatchWorker()
    try:
        worker.begin(model, (8, 7), (8, 5))
        assert when_removed == [False]  # the helper had not imported the module yet
        assert mark.exists() and not named(worker.segment.name)
    finally:
        worker.close()


# The script trains a Seq2seq by halves (a batch helper) and begins a step
# helper, prints their pids and segments' names, then ends as END says,
# running no cleanup of its own.
TRAIN_THEN_END = """
    import os, signal
    import numpy as np
    from common import data_parallel, parallel, step_worker
    from common.optimizer import Adam
    from common.trainer import Trainer
    from models import Seq2seq

    parallel._threads = 2
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 13, (256, 7)), rng.integers(0, 13, (256, 5))
    Trainer(Seq2seq(13, 16, 128, seed=0), Adam()).fit(x, t, max_epoch=1, batch_size=128,
                                                        verbose=False)
    stepper = step_worker.StepWorker()
    stepper.begin(np.ones((128, 256), np.float32), 32)
    stepper.end()
    halves = data_parallel._worker
    print("helpers", halves.process.pid, stepper.process.pid, flush=True)
    print("segments", halves.segment.name, stepper.segment.name, flush=True)
    END
"""


@needs_helpers
@pytest.mark.parametrize("end", ["os.kill(os.getpid(), signal.SIGKILL)", "os._exit(0)"])
def test_a_process_killed_after_training_leaves_nothing_named(end):
    """The resource tracker (which outlives the process) used to remove the
    segments, warning of "leaked shared_memory objects"; a tracker killed
    with the process left them in /dev/shm."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    code = textwrap.dedent(TRAIN_THEN_END).replace("END", end)
    # (It returns once every holder of its stderr has ended: the helpers and
    # the tracker too.)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=180)
    lines = dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if " " in line)
    pids = [int(p) for p in lines.get("helpers", "").split()]
    names = lines.get("segments", "").split()
    try:
        assert pids and names, result.stderr
        assert "leaked shared_memory" not in result.stderr, result.stderr
        assert not [name for name in names if named(name)]
        assert wait_gone(pids), "a helper outlived its parent"
    finally:
        kill_all(pids)
        unlink_if_named(names)


# -- 2. Two threads in deferred() at once --------------------------------------------------


def digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def train_by_hand(seed, iters, barrier=None):
    """A hand-written loop (forward, backward, SGD) on an Rnnlm whose output
    layer's weight gradient (700 x 101 x 2000 multiply-adds) is deferred to the
    pool; the digest of the gradients of every iteration, and of the weights."""
    V, N, T = 2000, 20, 35
    model = Rnnlm(V, 100, 100, seed=seed)
    rng = np.random.default_rng(seed)
    seen = []
    for _ in range(iters):
        xs, ts = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
        loss = model.forward(xs, ts)
        if barrier is not None:
            barrier.wait(120)  # both threads in backward (and its deferred()) at once
        model.backward()
        seen.append((loss, digest(model.grads)))
        for p, g in zip(model.params, model.grads, strict=True):
            p -= np.float32(0.1) * g
    return seen, digest(model.params)


@needs_blas_control
def test_two_threads_training_by_hand_at_once_get_the_bits_of_one_after_the_other():
    """A thread used to leave deferred() with its gradients still queued (the
    other was inside too), or to drop the other's queued work."""
    iters = 6
    expected = {seed: train_by_hand(seed, iters) for seed in (1, 2)}
    found, errors = {}, []
    barrier = threading.Barrier(2)

    def run(seed):
        try:
            found[seed] = train_by_hand(seed, iters, barrier)
        except BaseException as error:  # (reported below)
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads), "a training thread hung"
    assert not errors, errors
    for seed in (1, 2):
        assert found[seed] == expected[seed], f"model {seed}"


@needs_blas_control
def test_a_thread_that_finds_the_queue_taken_does_its_deferred_work_itself():
    """The first thread's task is held on a pool thread; a second thread in
    deferred() meanwhile must neither leave with its own task undone (it
    used to sit behind the first's in the one queue) nor run, wait for or
    drop the first's."""
    release, queued, second_left = threading.Event(), threading.Event(), threading.Event()
    done = []

    def held():
        release.wait(60)
        done.append("first, held")

    def first():
        with parallel.deferred():
            parallel.later(held, large=True)
            parallel.later(done.append, "first, queued behind", large=True)
            queued.set()
            second_left.wait(60)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert queued.wait(60)
        with parallel.deferred():
            parallel.later(done.append, "second", large=True)
            assert done == ["second"]  # done at once, by this thread
        assert done == ["second"]
        second_left.set()
        release.set()
        thread.join(60)
        assert not thread.is_alive()
        assert sorted(done) == ["first, held", "first, queued behind", "second"]
        with parallel.deferred():  # the queue is free again: this thread's to use
            parallel.later(done.append, "third", large=True)
        assert done[-1] == "third"
    finally:
        second_left.set()
        release.set()
        thread.join(60)


@needs_blas_control
def test_another_thread_makes_blas_single_threaded_too():
    """threadpoolctl let only the first thread that set OpenBLAS's thread count
    (here the main thread) set it: in another thread managed() did nothing, and
    BLAS's threads ran beside rnnlab's (with other bits)."""
    before = blas.get_threads()
    try:
        assert blas.set_threads(2) and blas.get_threads() == 2  # (from this, the main thread)
        seen = []

        def inside():
            with parallel.managed():
                seen.append(blas.get_threads())
            seen.append(blas.get_threads())

        thread = threading.Thread(target=inside)
        thread.start()
        thread.join(60)
        assert seen == [1, 2]
    finally:
        blas.set_threads(before)
    assert blas.get_threads() == before


def _by_threadpoolctl(threads):
    for lib in blas._blas_libraries():
        lib.set_num_threads(threads)  # (this thread takes threadpoolctl's control)


@needs_blas_control
@pytest.mark.parametrize("set_first", [
    blas.set_threads,
    pytest.param(_by_threadpoolctl, marks=pytest.mark.skipif(
        blas._openblas_controller() is None,
        reason="threadpoolctl keeps no controlling thread for this BLAS")),
])
def test_blas_set_threads_works_from_any_thread(set_first):
    """blas.set_threads works from a thread while another thread set the
    count before: by rnnlab, or through threadpoolctl itself, as a user's
    ``threadpool_limits`` or another library does, which makes that thread
    threadpoolctl's controller. The count is the process's, and
    threadpoolctl 3.8 lets only its controller change it, silently: rnnlab
    takes the control for its call (force), or a training in a second
    thread ran with BLAS's threads beside its own, and other bits."""
    before = blas.get_threads()
    try:
        set_first(2)  # the main thread first
        seen = []
        thread = threading.Thread(target=lambda: seen.append((blas.set_threads(1),
                                                              blas.get_threads())))
        thread.start()
        thread.join(60)
        assert seen == [(True, 1)] and blas.get_threads() == 1
    finally:
        blas.set_threads(before)
