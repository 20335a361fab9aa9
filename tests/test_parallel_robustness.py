"""The multi-core machinery under stress: timing, forks, hung or orphaned
helpers, exit, and two trainings at once (common.parallel,
common.data_parallel, common.batch_worker, common.step_worker).

Each test leaves no helper process and no shared segment behind: helpers
are closed (or killed by pid) in ``finally``. Whatever could hang on a
broken implementation runs in a child process or under a watchdog with a
generous timeout.
"""

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import common.parallel as parallel
from common import batch_worker, data_parallel
from common.optimizer import Adam
from common.trainer import RnnlmTrainer, Trainer
from models import BetterRnnlm, Rnnlm, Seq2seq

from helper_processes import (  # noqa: F401  (two_threads: a fixture for every test here)
    gone,
    kill_all,
    needs_blas_control,
    needs_fork,
    needs_helpers,
    needs_processes,
    two_threads,
)

ROOT = Path(__file__).resolve().parent.parent


def digest(model):
    h = hashlib.sha256()
    for p in model.params:
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def pairs(rows=512):
    rng = np.random.default_rng(0)
    return rng.integers(0, 13, (rows, 7)), rng.integers(0, 13, (rows, 5))


def fit_seq2seq(rows=512):
    model = Seq2seq(13, 16, 128, seed=0)
    x, t = pairs(rows)
    Trainer(model, Adam()).fit(x, t, max_epoch=1, batch_size=128, max_grad=5.0, verbose=False)
    return model


def run_script(code, timeout=120, **options):
    """Run ``code`` in a fresh interpreter on this checkout; return it finished."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    if "stdout" not in options:
        options["capture_output"] = True
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          text=True, timeout=timeout, **options)


# -- 1. The cut never depends on timing --------------------------------------------


@needs_blas_control
def test_matmul_cuts_the_same_whether_or_not_deferred_work_is_running(monkeypatch):
    """A product large enough to cut gave other bits while deferred work held
    the pool (it was computed whole), so the same run gave other weights."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 128)).astype(np.float32)
    b = rng.standard_normal((128, 512)).astype(np.float32)
    results = []
    for busy in (False, True):
        monkeypatch.setattr(parallel, "_busy", lambda busy=busy: busy)
        with parallel.managed():
            results.append(parallel.matmul(a, b))
    np.testing.assert_array_equal(results[0], results[1])


def test_while_deferred_work_runs_every_block_is_computed_once_by_whoever_is_free():
    """This thread takes the blocks one by one; a pool thread that comes free
    takes some too (here the pool is free at once)."""
    threads, lock = [], threading.Lock()

    def block(i):
        def run():
            time.sleep(0.002)
            with lock:
                threads.append((i, threading.get_ident()))
        return run

    with parallel.managed():
        parallel._run_as_threads_free_up([block(i) for i in range(40)])
    assert sorted(i for i, _ in threads) == list(range(40))


def test_an_error_in_a_block_taken_in_turn_reaches_the_caller():
    def fail():
        raise ZeroDivisionError("block 3")

    ran = []
    tasks = [lambda i=i: ran.append(i) for i in range(3)] + [fail]
    with parallel.managed(), pytest.raises(ZeroDivisionError, match="block 3"):
        parallel._run_as_threads_free_up(tasks)
    assert sorted(ran) == [0, 1, 2]


@needs_blas_control
def test_batch_blocks_are_cut_the_same_whether_or_not_deferred_work_is_running(monkeypatch):
    blocks = []
    for busy in (False, True):
        monkeypatch.setattr(parallel, "_busy", lambda busy=busy: busy)
        seen = []
        with parallel.managed():
            parallel.for_batch_blocks(lambda x, seen=seen: seen.append(x.shape[0]),
                                      [np.zeros((64, 3))],
                                      [0], row_multiply_adds=1 << 22)
        blocks.append(sorted(seen))
    assert blocks[0] == blocks[1] == [32, 32]


# -- 4. Losing the step worker does not change the bits ------------------------------


def fit_better_rnnlm():
    rng = np.random.default_rng(0)
    corpus = rng.integers(0, 50, 32 * 16 * 4 + 1)
    model = BetterRnnlm(50, 64, 128, 0.0, seed=0)  # h @ Wh: 32 x 128 x 512 = 2^21 a step
    RnnlmTrainer(model, Adam(0.003)).fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=32,
                                         time_size=16, max_grad=5.0, verbose=False)
    return digest(model)


@needs_blas_control
@needs_helpers
def test_same_bits_with_step_processes_enabled_or_not(monkeypatch):
    """A step worker that dies (or a /dev/shm that cannot hold it) turns
    STEP_PROCESSES off; that used to move the threshold of the cut."""
    with_processes = fit_better_rnnlm()
    monkeypatch.setattr(parallel, "STEP_PROCESSES", False)
    assert fit_better_rnnlm() == with_processes


# -- 2. A fork after training ---------------------------------------------------------


def fit_rnnlm():
    rng = np.random.default_rng(0)
    corpus = rng.integers(0, 2000, 20 * 35 * 2 + 1)
    model = Rnnlm(2000, 100, 100, seed=0)  # its Affine's products go to the pool
    RnnlmTrainer(model, Adam()).fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=20,
                                    time_size=35, max_grad=5.0, verbose=False)
    return digest(model)


def _fit_in_child(queue):
    queue.put(fit_rnnlm())


@needs_blas_control
@needs_fork
# Forking a process whose pool threads run is what this test is about; since
# Python 3.12, fork() warns of it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_trains_after_its_parent_did():
    """The child inherited a thread pool whose threads do not exist in it, and
    hung forever in its first product."""
    expected = fit_rnnlm()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_fit_in_child, args=(queue,))
    child.start()
    try:
        child.join(timeout=90)
        assert not child.is_alive(), "the forked child hung"
        assert child.exitcode == 0
        assert queue.get(timeout=5) == expected
    finally:
        if child.is_alive():
            child.kill()
            child.join()


# -- 3. A hung helper ------------------------------------------------------------------


@needs_blas_control
@needs_helpers
def test_a_hung_batch_worker_is_replaced_and_the_bits_stay(monkeypatch):
    """A helper frozen (SIGSTOP) mid-step used to make fit spin forever."""
    monkeypatch.setattr(data_parallel, "_disabled", True)
    expected = digest(fit_seq2seq())  # this process computes both halves
    monkeypatch.setattr(data_parallel, "_disabled", False)
    monkeypatch.setattr(data_parallel, "HELPER_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(data_parallel, "HELPER_TIMEOUT_FACTOR", 1.0)
    frozen = []
    post = batch_worker.BatchWorker.post

    def post_then_freeze(self, *args, **kwargs):
        post(self, *args, **kwargs)
        if self.step == 2 and not frozen:
            frozen.append(self.process.pid)
            os.kill(self.process.pid, signal.SIGSTOP)

    monkeypatch.setattr(batch_worker.BatchWorker, "post", post_then_freeze)
    # On a broken implementation the wait never ends: a watchdog kills the
    # frozen helper after 30 s, and the time taken fails the test.
    watchdog = threading.Timer(30, lambda: kill_all(frozen))
    watchdog.start()
    started = time.monotonic()
    try:
        with pytest.warns(RuntimeWarning, match="did not answer"):
            model = fit_seq2seq()
        assert time.monotonic() - started < 25
        assert frozen and gone(frozen[0])
        assert digest(model) == expected
    finally:
        watchdog.cancel()
        kill_all(frozen)


HUNG_HELPER_AND_SIGTERM = """
    import os, signal, sys, threading
    import numpy as np
    from common import batch_worker, parallel
    from common.optimizer import Adam
    from common.trainer import Trainer
    from common.training_guards import TrainingInterrupted
    from models import Seq2seq

    parallel._threads = 2
    post = batch_worker.BatchWorker.post

    def post_then_freeze(self, *args, **kwargs):
        post(self, *args, **kwargs)
        if self.step == 2:
            print("helper", self.process.pid, flush=True)
            os.kill(self.process.pid, signal.SIGSTOP)
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()

    batch_worker.BatchWorker.post = post_then_freeze
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 13, (2048, 7)), rng.integers(0, 13, (2048, 5))
    try:
        Trainer(Seq2seq(13, 16, 128, seed=0), Adam()).fit(x, t, max_epoch=5, batch_size=128,
                                                            verbose=False)
    except TrainingInterrupted as error:
        print("interrupted", error.signal, flush=True)
"""


@needs_blas_control
@needs_helpers
def test_sigterm_stops_a_run_whose_helper_hung():
    """The first SIGTERM only sets a flag that a spinning wait never read."""
    started = time.monotonic()
    try:
        result = run_script(HUNG_HELPER_AND_SIGTERM, timeout=60)
        output = result.stdout
    except subprocess.TimeoutExpired as error:
        output = error.stdout.decode() if isinstance(error.stdout, bytes) else error.stdout or ""
        result = None
    finally:
        helpers = [int(line.split()[1]) for line in (locals().get("output") or "").splitlines()
                   if line.startswith("helper ")]
        kill_all(helpers)
    assert result is not None, "SIGTERM did not stop the run"
    assert "interrupted SIGTERM" in output, result.stderr
    assert time.monotonic() - started < 45


# -- 5. A forked child does not keep the parent's helpers alive -------------------------


# The start of the scripts below: fit() trains a Seq2seq for an epoch of two
# batches, each by halves, the second in the helper process.
FITS_SEQ2SEQ = """
    import numpy as np
    from common import data_parallel, parallel, step_worker
    from common.optimizer import Adam
    from common.trainer import Trainer
    from models import Seq2seq

    def fit():
        parallel._threads = 2
        rng = np.random.default_rng(0)
        x, t = rng.integers(0, 13, (256, 7)), rng.integers(0, 13, (256, 5))
        Trainer(Seq2seq(13, 16, 128, seed=0), Adam()).fit(x, t, max_epoch=1, batch_size=128,
                                                            verbose=False)
"""

FORK_THEN_EXIT = FITS_SEQ2SEQ + """
    import multiprocessing, os, sys, time

    fit()
    stepper = step_worker.StepWorker()
    stepper.begin(np.ones((128, 256), np.float32), 32)
    stepper.end()
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
    child.start()
    with open(sys.argv[1], "w") as f:  # (not stdout: the sleeping child holds it too)
        print("helpers", data_parallel._worker.process.pid, stepper.process.pid, file=f)
        print("child", child.pid, file=f)
    os._exit(0)
"""


@needs_blas_control
@needs_helpers
@needs_fork
def test_helpers_end_with_their_parent_despite_a_forked_child(tmp_path):
    """The child held the write end of each helper's stdin: they outlived the
    parent (with their segments) as long as it lived."""
    listed = tmp_path / "pids"
    with open(tmp_path / "stderr", "w") as stderr:
        run_script(FORK_THEN_EXIT.replace("sys.argv[1]", repr(str(listed))),
                   stdout=subprocess.DEVNULL, stderr=stderr)
    pids = {}
    for line in (listed.read_text().splitlines() if listed.exists() else []):
        name, *numbers = line.split()
        pids[name] = [int(n) for n in numbers]
    try:
        assert pids.get("helpers"), (tmp_path / "stderr").read_text()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(gone(p) for p in pids["helpers"]):
            time.sleep(0.1)
        assert all(gone(p) for p in pids["helpers"]), "a helper outlived its parent"
    finally:
        kill_all(pids.get("helpers", []) + pids.get("child", []))


# -- 8. Ctrl-C during exit's cleanup ----------------------------------------------------


CTRL_C_AT_EXIT = FITS_SEQ2SEQ + """
    fit()
    print("helper", data_parallel._worker.process.pid, flush=True)
    stop = step_worker.stop_process
    calls = []

    def interrupted_once(process):  # a second Ctrl-C landing in the cleanup's wait
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        stop(process)

    step_worker.stop_process = interrupted_once
"""


@needs_blas_control
@needs_helpers
def test_a_ctrl_c_during_exit_cleanup_is_quiet_and_stops_the_helper():
    result = run_script(CTRL_C_AT_EXIT)
    helpers = [int(line.split()[1]) for line in result.stdout.splitlines()
               if line.startswith("helper ")]
    try:
        assert helpers, result.stderr
        assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, \
            result.stderr
        assert "leaked" not in result.stderr, result.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not gone(helpers[0]):
            time.sleep(0.1)
        assert gone(helpers[0])
    finally:
        kill_all(helpers)


# -- 6. Two trainings in two threads at once ---------------------------------------------


def test_a_second_training_in_another_thread_at_once_is_refused():
    """Both used to share the one helper, corrupting each other's halves."""
    model = Seq2seq(13, 16, 128, seed=0)
    entered, leave = threading.Event(), threading.Event()

    def first():
        with data_parallel.batch_halves(model, (128, 7), (128, 5)):
            entered.set()
            leave.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert entered.wait(30)
        with pytest.raises(RuntimeError, match="one model at a time per process"):
            with data_parallel.batch_halves(model, (128, 7), (128, 5)):
                pass
    finally:
        leave.set()
        thread.join()
    with data_parallel.batch_halves(model, (128, 7), (128, 5)):  # the other one has ended
        with data_parallel.batch_halves(model, (128, 7), (128, 5)):  # nested in one thread
            pass


# -- Minor: fallback warnings point at the caller -----------------------------------------


@needs_blas_control
@needs_helpers
def test_the_fallback_warning_points_at_the_callers_line(monkeypatch):
    def fail(self, *args, **kwargs):
        raise OSError("no helper today")

    monkeypatch.setattr(batch_worker.BatchWorker, "begin", fail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_seq2seq(256)
    found = [w for w in caught if "no helper today" in str(w.message)]
    assert found and found[0].filename == __file__


# -- 7. A multiprocessing child's helper ends with it ---------------------------------------


CHILD_TRAINS = FITS_SEQ2SEQ + """
    import multiprocessing

    if __name__ == "__main__":
        child = multiprocessing.get_context("fork").Process(target=fit)
        child.start()
        child.join()
        print("child", child.exitcode)
"""


@needs_blas_control
@needs_helpers
@needs_fork
def test_a_multiprocessing_child_closes_its_helper_and_segment(tmp_path):
    """A child ends through os._exit, skipping atexit: its helper's segment was
    left to the resource tracker, which warned of a leak at the parent's exit.
    (A pool's workers ended by terminate() run nothing at all: see below.)"""
    script = tmp_path / "child_trains.py"
    script.write_text(textwrap.dedent(CHILD_TRAINS))
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=120)
    assert "child 0" in result.stdout, result.stderr
    assert "leaked shared_memory" not in result.stderr, result.stderr


POOL_TERMINATED = FITS_SEQ2SEQ + """
    import multiprocessing, os
    from multiprocessing import resource_tracker

    def train(_):
        fit()
        return data_parallel._worker.process.pid, data_parallel._worker.segment.name

    if __name__ == "__main__":
        # The workers share this process's tracker: a segment they leave named
        # stays in /dev/shm until this process ends.
        resource_tracker.ensure_running()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            found = pool.map(train, range(2), chunksize=1)
        # (Leaving the block terminate()d the workers: SIGTERM, nothing run.)
        print("helpers", *[pid for pid, _ in found], flush=True)
        print("named", *[name for _, name in found if os.path.exists("/dev/shm/" + name)],
              flush=True)
        print("segments", *[name for _, name in found], flush=True)
"""


@needs_helpers
@needs_fork
def test_pool_workers_ended_by_terminate_leave_no_segment():
    """A worker of ``with Pool()`` gets SIGTERM when the block ends, and runs
    no cleanup: its helper's segment stayed in /dev/shm until the tracker
    removed it at the parent's exit, warning of "leaked shared_memory
    objects". The name is now removed as soon as the helper has mapped it."""
    result = run_script(POOL_TERMINATED, timeout=180)
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line}
    helpers = [int(pid) for pid in lines.get("helpers", [])]
    try:
        assert helpers, result.stderr
        assert lines.get("named") == [], "left named in /dev/shm: " + str(lines.get("named"))
        assert "leaked shared_memory" not in result.stderr, result.stderr
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(gone(p) for p in helpers):
            time.sleep(0.1)
        assert all(gone(p) for p in helpers), "a helper outlived its pool worker"
    finally:
        kill_all(helpers)
        for name in lines.get("segments", []):  # (what the tracker left, on failure)
            Path("/dev/shm", name).unlink(missing_ok=True)


RELOAD = FITS_SEQ2SEQ + """
    import importlib

    fit()
    first = data_parallel._worker.process
    importlib.reload(data_parallel)  # what Jupyter's autoreload does
    first.wait(timeout=10)  # the reload closed it (else: TimeoutExpired)
    fit()
    print("helpers", first.pid, data_parallel._worker.process.pid)
"""


@needs_blas_control
@needs_helpers
def test_reloading_the_module_closes_its_helper():
    # (Each reload orphaned a live helper and its segment until the process ended.)
    result = run_script(RELOAD, timeout=90)
    assert result.returncode == 0, result.stderr
    old, new = result.stdout.split()[1:3]
    assert old != new
    assert "leaked shared_memory" not in result.stderr


@needs_processes
@pytest.mark.skipif(os.name != "posix", reason="closes the child's standard error")
def test_the_batch_helper_starts_when_standard_error_is_closed(tmp_path):
    """A daemon or ``2>&-``: the helper's prints have nowhere to go, and it
    failed to start (it moved them to a standard error that was not there)."""
    out = tmp_path / "out.txt"
    code = f"""
        import sys, warnings
        import numpy as np
        from common import data_parallel
        from models import Seq2seq
        data_parallel.MIN_HALF_ROWS = data_parallel.MIN_HALF_STEP_MULTIPLY_ADDS = 1
        data_parallel.SLOW_SECONDS = 60.0
        data_parallel.num_threads = lambda: 2
        rng = np.random.default_rng(0)
        model = Seq2seq(9, 4, 8, seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with data_parallel.batch_halves(model, (8, 5), (8, 5)) as forward_backward:
                for _ in range(5):
                    forward_backward(rng.integers(0, 9, (8, 5)), rng.integers(0, 9, (8, 5)))
                alive = data_parallel._worker is not None and data_parallel._worker.alive()
        with open({str(out)!r}, "w") as f:
            print(sys.stderr is None, alive, [str(w.message) for w in caught], file=f)
        data_parallel._close()
        """
    done = run_script(code, preexec_fn=lambda: os.close(2))
    assert done.returncode == 0
    assert out.read_text().strip() == "True True []"
