"""The one helper process shared by every batch_halves / answer_halves context
of a process (common.data_parallel), and what becomes of a batch whose helper
has died or whose own half raised.

The helper holds one replica and one segment: a batch takes it from its
begin and post until its half has come back, and a thread that finds it
taken computes both halves itself, the same bits and answers. A helper that
died between two batches is replaced, the batch computed here; a half in
flight when this process's half raised is waited for and dropped, so that a
loop that catches the error and goes on keeps the helper-less run's bits.

The races are made certain, not timed: the thread that has the helper is
held inside its wait (between post and the half's return) by an Event while
the other thread works.
"""

import os
import select
import signal
import threading
import time

import numpy as np
import pytest

from common import batch_worker, data_parallel
from models import Rnnlm, Seq2seq

from helper_processes import (  # noqa: F401  (fixtures for every test here)
    needs_helpers,
    small_models_split,
    two_threads,
)

pytestmark = needs_helpers

V, D, H = 11, 4, 6
ROWS, T_ENC, SAMPLE = 12, 5, 4


@pytest.fixture(autouse=True)
def short_helper_timeout(monkeypatch):
    """A helper that does not answer is given up after seconds, not 30: a test
    that fails does so quickly rather than spin."""
    monkeypatch.setattr(data_parallel, "HELPER_TIMEOUT_SECONDS", 5.0)
    monkeypatch.setattr(data_parallel, "HELPER_TIMEOUT_FACTOR", 1.0)


def questions(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (ROWS, T_ENC)), rng.integers(0, V, ROWS)


def two_models():
    """Two models of one shape (the helper's segment fits both) whose answers
    differ in the second half of the questions: answers handed to the wrong
    model show."""
    x, start = questions(0)
    a, b = Seq2seq(V, D, H, seed=1), Seq2seq(V, D, H, seed=2)
    assert not np.array_equal(a.generate(x[ROWS // 2:], start[ROWS // 2:], SAMPLE),
                              b.generate(x[ROWS // 2:], start[ROWS // 2:], SAMPLE))
    return a, b, x, start


class HeldInWait:
    """``BatchWorker.wait`` patched: the first wait of ``thread`` (the one
    holding the helper, its half in flight) blocks until ``go_on`` is set."""

    def __init__(self, monkeypatch):
        self.thread = None
        self.held, self.go_on = threading.Event(), threading.Event()
        original = batch_worker.BatchWorker.wait

        def wait(worker, *args, **kwargs):
            if threading.current_thread() is self.thread and not self.held.is_set():
                self.held.set()
                self.go_on.wait(30)
            return original(worker, *args, **kwargs)

        monkeypatch.setattr(batch_worker.BatchWorker, "wait", wait)


def count_calls(monkeypatch, name):
    """Calls of ``BatchWorker.<name>``, as a list that grows by one a call."""
    calls = []
    original = getattr(batch_worker.BatchWorker, name)

    def counted(worker, *args, **kwargs):
        calls.append(threading.current_thread().name)
        return original(worker, *args, **kwargs)

    monkeypatch.setattr(batch_worker.BatchWorker, name, counted)
    return calls


def answer_in_thread(model, x, start, results, held=None):
    """A thread answering ``x`` by halves with ``model`` into ``results``
    (the answers, or the error's text)."""
    def run():
        try:
            with data_parallel.answer_halves(model, ROWS, T_ENC, SAMPLE) as answer:
                results.append(answer(x, start, 1))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            results.append(f"{type(error).__name__}: {error}")

    thread = threading.Thread(target=run, name="holder")
    if held is not None:
        held.thread = thread
    return thread


def train_once(model, x, t):
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        loss = forward_backward(x, t)
    return loss, [g.copy() for g in model.grads]


@pytest.mark.parametrize("other", ["answers", "trains"])
def test_a_thread_whose_answers_are_in_flight_keeps_the_helper(other, monkeypatch):
    """Thread A's half is in the helper; the main thread answers (or trains on)
    model B meanwhile. It used to begin the helper on B under A: A got B's
    answers (or a training step's tuple) for its second half."""
    held = HeldInWait(monkeypatch)
    a, b, x, start = two_models()
    expected_a = a.generate(x, start, SAMPLE)
    results = []
    thread = answer_in_thread(a, x, start, results, held)
    thread.start()
    try:
        assert held.held.wait(30), "thread A never handed its half to the helper"
        if other == "answers":
            with data_parallel.answer_halves(b, ROWS, T_ENC, SAMPLE) as answer:
                np.testing.assert_array_equal(answer(x, start, 1), b.generate(x, start, SAMPLE))
        else:
            rng = np.random.default_rng(3)
            t = rng.integers(0, V, (ROWS, SAMPLE + 1))
            loss, grads = train_once(b, x, t)
    finally:
        held.go_on.set()
        thread.join(60)
    assert not thread.is_alive()
    assert len(results) == 1 and not isinstance(results[0], str), results
    np.testing.assert_array_equal(results[0], expected_a)
    if other == "trains":  # the same bits as this process computing both halves
        monkeypatch.setattr(data_parallel, "_disabled", True)
        alone_loss, alone = train_once(b, x, t)
        assert loss == alone_loss
        for g, h in zip(grads, alone, strict=True):
            np.testing.assert_array_equal(g, h)


def test_answering_in_a_second_thread_leaves_the_helper_to_an_open_context(monkeypatch):
    """Thread A answers two batches, and between them the main thread answers
    with model B. B used to begin the helper on itself, and A's second batch
    began it again: two rebuilt replicas for nothing. B now computes both
    halves itself (the same answers) and A keeps its replica."""
    a, b, x, start = two_models()
    begun = count_calls(monkeypatch, "begin")
    between, go_on = threading.Event(), threading.Event()
    results = []

    def run():
        try:
            with data_parallel.answer_halves(a, ROWS, T_ENC, SAMPLE) as answer:
                results.append(answer(x, start, 1))
                between.set()
                go_on.wait(30)
                results.append(answer(x, start, 1))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            results.append(f"{type(error).__name__}: {error}")

    thread = threading.Thread(target=run, name="holder")
    thread.start()
    try:
        assert between.wait(30)
        with data_parallel.answer_halves(b, ROWS, T_ENC, SAMPLE) as answer:
            np.testing.assert_array_equal(answer(x, start, 1), b.generate(x, start, SAMPLE))
    finally:
        go_on.set()
        thread.join(60)
    assert len(results) == 2 and not any(isinstance(r, str) for r in results), results
    for r in results:
        np.testing.assert_array_equal(r, a.generate(x, start, SAMPLE))
    assert begun == ["holder"]
    # Once A's context has ended, B gets the helper.
    posted = count_calls(monkeypatch, "post_answers")
    with data_parallel.answer_halves(b, ROWS, T_ENC, SAMPLE) as answer:
        np.testing.assert_array_equal(answer(x, start, 1), b.generate(x, start, SAMPLE))
    assert posted == ["MainThread"]


def wait_until_no_reader(worker, seconds=15):
    """Until the pipe to the killed helper has no reader left: a post then
    fails for certain instead of being written into the pipe."""
    poller = select.poll()
    poller.register(worker.process.stdin.fileno(), select.POLLOUT)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(events & select.POLLERR for _, events in poller.poll(0)):
            return
        time.sleep(0.02)
    pytest.fail("the killed helper's standard input still has a reader")


def kill_helper():
    worker = data_parallel._worker
    worker.process.kill()
    worker.process.wait()
    wait_until_no_reader(worker)


def test_a_helper_dead_before_a_training_batch_is_replaced_and_the_bits_stay(monkeypatch):
    """The OOM killer ends the helper while this process runs its optimizer
    step: the next post raised OSError out of fit, and the run was lost."""
    rng = np.random.default_rng(4)
    x, t = rng.integers(0, V, (ROWS, T_ENC)), rng.integers(0, V, (ROWS, SAMPLE + 1))
    model = Seq2seq(V, D, H, seed=5)
    posted = count_calls(monkeypatch, "post")
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        first = forward_backward(x, t)
        kill_helper()
        second = forward_backward(x, t)  # computed here
        grads = [g.copy() for g in model.grads]
        third = forward_backward(x, t)  # by a new helper
        assert data_parallel._worker is not None and data_parallel._worker.alive()
    assert len(posted) == 3
    assert first == second == third
    for g, h in zip(grads, model.grads, strict=True):
        np.testing.assert_array_equal(g, h)


def test_a_helper_dead_before_a_batch_of_questions_is_replaced(monkeypatch):
    a, _, x, start = two_models()
    expected = a.generate(x, start, SAMPLE)
    posted = count_calls(monkeypatch, "post_answers")
    with data_parallel.answer_halves(a, ROWS, T_ENC, SAMPLE) as answer:
        np.testing.assert_array_equal(answer(x, start, 1), expected)
        kill_helper()
        np.testing.assert_array_equal(answer(x, start, 1), expected)  # computed here
        np.testing.assert_array_equal(answer(x, start, 1), expected)  # by a new helper
        assert data_parallel._worker is not None and data_parallel._worker.alive()
    assert len(posted) == 3


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_loop_that_skips_a_batch_whose_half_raised_keeps_the_bits(error, monkeypatch):
    """A hand-written loop catches the error of a batch whose first half raised
    here while the helper had its second half, and goes on. The helper's
    unfinished step used to write its output state over the next batch's
    input state: every later loss and state differed from the helper-less
    run. The helper is stopped (SIGSTOP) from the bad batch's post until the
    next wait, so that its step is certainly unfinished when this process
    goes on."""
    rng = np.random.default_rng(6)
    rows, T = 12, 5
    batches = [(rng.integers(0, V, (rows, T)), rng.integers(0, V, (rows, T)))
               for _ in range(5)]
    BAD = 2
    stop = {"next_post": False, "pid": None}

    def run(helped):
        model = Rnnlm(V, D, H, seed=7)
        forward = model.forward
        raise_now = []

        def flaky_forward(xs, ts):
            if raise_now:
                raise_now.pop()
                raise error("bad batch")
            return forward(xs, ts)

        model.forward = flaky_forward  # (this process's; the helper builds its own)
        losses = []
        with data_parallel.batch_halves(model, (rows, T), (rows, T)) as forward_backward:
            for k, (x, t) in enumerate(batches):
                if k == BAD:
                    raise_now.append(True)  # this process's first half raises
                    stop["next_post"] = helped
                try:
                    losses.append(forward_backward(x, t))
                except error:
                    losses.append("skipped")
                    continue
                for p, g in zip(model.params, model.grads, strict=True):
                    p -= 0.5 * g
        return losses, [p.copy() for p in model.params] + model.get_state()

    post, wait = batch_worker.BatchWorker.post, batch_worker.BatchWorker.wait

    def post_stopped(worker, *args, **kwargs):
        if stop["next_post"]:
            stop.update(next_post=False, pid=worker.process.pid)
            os.kill(stop["pid"], signal.SIGSTOP)  # before it can read the step
        return post(worker, *args, **kwargs)

    def wait_continued(worker, *args, **kwargs):
        if stop["pid"] is not None:
            os.kill(stop["pid"], signal.SIGCONT)
            stop["pid"] = None
        return wait(worker, *args, **kwargs)

    monkeypatch.setattr(batch_worker.BatchWorker, "post", post_stopped)
    monkeypatch.setattr(batch_worker.BatchWorker, "wait", wait_continued)
    posted = count_calls(monkeypatch, "post")
    try:
        helped = run(True)
    finally:
        if stop["pid"] is not None:
            os.kill(stop["pid"], signal.SIGCONT)
    assert len(posted) == len(batches)  # every batch, the later ones too, by halves
    assert helped[0][BAD] == "skipped"
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone = run(False)
    assert helped[0] == alone[0]
    for p, q in zip(helped[1], alone[1], strict=True):
        np.testing.assert_array_equal(p, q)


# -- from a review of the above: what they left ------------------------------------------------


def run_script(code):
    """``code`` in a fresh Python (forks, class patches and killed helpers stay there);
    its standard output and standard error."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    # Two threads, as the fixture gives the tests above: a helper on a one-CPU machine too.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(root),
                                                PYTHONWARNINGS="always",
                                                RNNLAB_NUM_THREADS="2"))
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


LOOP = """
import os, signal, sys, time, numpy as np
from common import batch_worker, data_parallel as dp
from models import Rnnlm, Seq2seq
rng = np.random.default_rng(0)
"""


def test_a_caught_error_in_the_helpers_half_does_not_give_the_helper_up_later():
    """The half's own data error, recomputed here and raised, stayed recorded as a
    replica failure: the next helper death turned the helper off for good, with a
    warning quoting the old error."""
    out, err = run_script(LOOP + """
model = Seq2seq(13, 16, 128, seed=1)
x = rng.integers(0, 13, (128, 7)); t = rng.integers(0, 13, (128, 5))
bad = x.copy(); bad[-1, 2] = 99  # in the helper's half
with dp.batch_halves(model, x.shape, t.shape) as fb:
    fb(x, t)
    try:
        fb(bad, t)
    except ValueError:
        pass
    fb(x, t)
    os.kill(dp._worker.process.pid, signal.SIGKILL); time.sleep(0.2)
    for _ in range(3):
        fb(x, t)
    print(dp._worker is not None and dp._worker.alive())
""")
    assert out.split() == ["True"], err
    assert "failed on its half" not in err


def test_an_interrupted_settle_does_not_let_the_old_half_write_over_the_next():
    """A second Ctrl-C inside _settle (before its wait) left the helper's half
    running; the next batch was posted over it and got other bits."""
    script = LOOP + """
helper = sys.argv[1] == "helper"
if not helper:
    dp._helper = lambda *a, **k: None
real_busy = batch_worker.BatchWorker.busy
fired = []
def busy(self):
    if not fired and sys._getframe(1).f_code.co_name == "_settle":
        fired.append(1)
        raise KeyboardInterrupt  # (the second Ctrl-C)
    return real_busy(self)
batch_worker.BatchWorker.busy = busy
V, N, T = 200, 64, 64  # (a helper's half long enough to be in flight still)
model = Rnnlm(V, 32, 256, seed=1)
batches = [(rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))) for _ in range(5)]
bad = batches[0][0].copy(); bad[0, 3] = V + 5  # this process's half raises at once
with dp.batch_halves(model, (N, T), (N, T)) as fb:
    fb(*batches[1])
    try:
        try:
            fb(bad, batches[0][1])
        except ValueError:
            if not helper:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    for x, t in batches[2:]:
        fb(x, t)
print(repr(float(sum(float(np.abs(s).sum()) for s in model.get_state()))), bool(fired) == helper)
"""
    with_helper = run_script(script.replace("sys.argv[1]", '"helper"'))[0]
    alone = run_script(script.replace("sys.argv[1]", '"alone"'))[0]
    assert with_helper.split()[1] == alone.split()[1] == "True"
    assert with_helper.split()[0] == alone.split()[0]


def test_a_child_forked_in_an_open_context_computes_its_batches():
    """The child found the parent's forgotten helper still owned by the context:
    a TypeError from inside batch_worker."""
    out, err = run_script(LOOP + """
model = Seq2seq(13, 16, 128, seed=1)
x = rng.integers(0, 13, (128, 7)); t = rng.integers(0, 13, (128, 5))
with dp.batch_halves(model, x.shape, t.shape) as fb:
    first = fb(x, t)
    pid = os.fork()
    if pid == 0:
        try:
            print("child", fb(x, t) == first, flush=True)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    print("parent", fb(x, t) == first)
""")
    assert sorted(out.split()) == ["True", "True", "child", "parent"], err


def test_a_segment_whose_name_someone_else_removed_is_released_quietly():
    from common import step_worker

    segment = step_worker.create_segment(4096)
    os.unlink(f"/dev/shm/{segment.name}")  # (rm /dev/shm/rnnlab_*, another sweep)
    step_worker.release_segment(segment)  # raised FileNotFoundError
