"""rnnlab sharing a step's work among the cores (common.parallel).

Real sizes only cross the thresholds at PTB scale, so the ``spread`` fixture
lowers them: every product is cut into blocks, every recurrent batch into
row blocks, every step product of a recurrent layer into column blocks,
and weight gradients are deferred to the pool. The results must
be the plain computation's (within float32 round-off, or exactly where no
product is re-blocked), gradients must stay exact, and a seed must still
give one run bit for bit.
"""

import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import common.parallel as parallel
from common import blas, step_worker
from common.gradcheck import check_function
from common.optimizer import SGD
from common.trainer import RnnlmTrainer
from layers import TimeGRU, TimeLSTM, TimeRNN
from models import BetterRnnlm, GruRnnlm, SimpleRnnlm

needs_blas_control = pytest.mark.skipif(
    blas.get_threads() is None,
    reason="NumPy's BLAS is not an OpenBLAS whose thread count rnnlab can set",
)


@pytest.fixture(params=["threads", "processes"])
def helpers(request, monkeypatch):
    """Step products shared with pool threads, or with helper processes
    (common.step_worker) where the machine allows them (x86-64; elsewhere
    both runs use threads)."""
    monkeypatch.setattr(parallel, "STEP_PROCESSES",
                        request.param == "processes" and step_worker.AVAILABLE)
    return request.param


@pytest.fixture(autouse=True)
def helper_processes_not_resting(monkeypatch):
    """Each test starts with helper processes allowed to serve (a slow hand-off
    in an earlier test, on a busy machine, may have sent them to rest)."""
    monkeypatch.setattr(parallel, "_processes_resting_until", 0.0)


@pytest.fixture
def spread(monkeypatch):
    """Two threads, and thresholds so low that everything is spread."""
    monkeypatch.setattr(parallel, "_threads", 2)
    monkeypatch.setattr(parallel, "BLOCK_MULTIPLY_ADDS", 1)
    monkeypatch.setattr(parallel, "MIN_BATCH_ROWS", 1)
    monkeypatch.setattr(parallel, "MIN_STEP_MULTIPLY_ADDS", 1)
    monkeypatch.setattr(parallel, "MIN_SPLIT_STEP_MULTIPLY_ADDS", 1)
    monkeypatch.setattr(parallel, "MIN_SPLIT_STEP_MULTIPLY_ADDS_PROCESS", 1)
    monkeypatch.setattr(parallel, "MIN_SPLIT_COLUMNS", 1)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 1)
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", 8)


def one_thread_product(a, b):
    """``a @ b`` as BLAS computes it on one thread, which is how the seam runs
    every product (BLAS's threads may split the sum differently: on some
    kernels, e.g. OPENBLAS_CORETYPE=Haswell, the bits then differ)."""
    before = blas.get_threads()
    blas.set_threads(1)
    try:
        return a @ b
    finally:
        if before is not None:
            blas.set_threads(before)


@needs_blas_control
@pytest.mark.parametrize("shape", [(37, 11, 90), (90, 11, 37), (64, 300, 64)])
def test_matmul_in_blocks_equals_the_plain_product(spread, shape):
    M, K, N = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    with parallel.managed():
        c = parallel.matmul(a, b)
        out = np.empty((M, N), dtype=np.float32)
        assert parallel.matmul(a, b, out=out) is out
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out, c)
    # Outside managed() it takes the cores for its own call: the same blocks, the same bits.
    np.testing.assert_array_equal(parallel.matmul(a, b), c)


@needs_blas_control
def test_managed_makes_blas_single_threaded_for_its_whole_extent(spread):
    """Issue 12, finding 5: BLAS's spinning workers made small models 25-90x
    slower on a busy machine when rnnlab's own pool was never used, because
    BLAS was only made single-threaded once the pool was used."""
    before = blas.get_threads()
    with parallel.managed():
        assert blas.get_threads() == 1  # at once, before anything is spread
        with parallel.managed():  # nested: the inner exit restores nothing
            pass
        assert blas.get_threads() == 1
    assert blas.get_threads() == before


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2.5"])
def test_a_bad_thread_count_is_refused_on_entering_managed(monkeypatch, value):
    """Issue 12, finding 6: ``RNNLAB_NUM_THREADS=abc`` failed mid-training
    (0 and -1 were silently taken as 1); now the context a run starts with
    refuses it, naming the variable."""
    monkeypatch.setenv("RNNLAB_NUM_THREADS", value)
    monkeypatch.setattr(parallel, "_threads", None)
    # (Unset, it is the CPUs the process may use, at most 8: the message said "every".)
    with pytest.raises(ValueError, match=r"RNNLAB_NUM_THREADS must be a positive integer .* "
                                         r"unset it to use the available CPUs \(at most 8\)"):
        with parallel.managed():
            pass


def test_fit_refuses_a_bad_thread_count_before_the_first_step(monkeypatch):
    monkeypatch.setenv("RNNLAB_NUM_THREADS", "abc")
    monkeypatch.setattr(parallel, "_threads", None)
    model = SimpleRnnlm(20, 4, 4, seed=0)
    before = [p.copy() for p in model.params]
    corpus = np.arange(200) % 20
    with pytest.raises(ValueError, match="RNNLAB_NUM_THREADS"):
        RnnlmTrainer(model, SGD(1.0)).fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=2,
                                          time_size=5, verbose=False)
    for p, p0 in zip(model.params, before, strict=True):
        np.testing.assert_array_equal(p, p0)  # not one step was taken


def test_a_good_thread_count_is_used(monkeypatch):
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3},
                        raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 4)
    monkeypatch.setenv("RNNLAB_NUM_THREADS", " 3 ")
    monkeypatch.setattr(parallel, "_threads", None)
    assert parallel.num_threads() == 3


@needs_blas_control
def test_deferred_work_is_done_when_the_context_ends(spread):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 30)).astype(np.float32)
    b = rng.standard_normal((30, 70)).astype(np.float32)
    out = np.zeros((50, 70), dtype=np.float32)
    order = []
    with parallel.managed(), parallel.deferred():
        parallel.matmul_later(a, b, out)
        parallel.later(lambda: order.append("small, queued behind the product"))
    assert order == ["small, queued behind the product"]
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)


@needs_blas_control
def test_an_error_in_deferred_work_reaches_the_caller(spread):
    def fail():
        raise ZeroDivisionError("in a deferred task")

    a = np.ones((40, 40), dtype=np.float32)
    with pytest.raises(ZeroDivisionError, match="deferred task"):
        with parallel.managed(), parallel.deferred():
            parallel.matmul_later(a, a, np.empty_like(a))
            parallel.later(fail, large=True)
    # The queue is left empty: the next context starts clean.
    with parallel.managed(), parallel.deferred():
        parallel.later(lambda: None, large=True)


@needs_blas_control
def test_deferred_manages_the_cores_itself(spread):
    """A model's backward (which enters deferred()) shares its work in a
    hand-written loop too, and gives BLAS its threads back afterwards."""
    before = blas.get_threads()
    a = np.ones((64, 64), dtype=np.float32)
    out = np.empty_like(a)
    with parallel.deferred():
        assert blas.get_threads() == 1
        parallel.matmul_later(a, a, out)
        assert parallel._busy()  # queued for the pool, not done here
    np.testing.assert_array_equal(out, a @ a)
    assert blas.get_threads() == before


@needs_blas_control
@pytest.mark.parametrize("make", [
    lambda: SimpleRnnlm(50, 8, 8, seed=0),
    lambda: BetterRnnlm(50, 8, 8, num_layers=2, dropout_ratio=0.0, seed=0),
])
def test_a_hand_written_loop_computes_what_fit_computes(spread, make):
    """The seam's functions manage the cores for their own calls, so a loop
    that knows nothing of managed() shares the work as fit does: the same
    blocks, the same numbers, bit for bit."""
    corpus = np.random.default_rng(7).integers(0, 50, size=400)
    xs, ts = corpus[:-1], corpus[1:]
    fitted = make()
    RnnlmTrainer(fitted, SGD(1.0)).fit(xs, ts, max_epoch=1, batch_size=6, time_size=5,
                                       max_iters=4, verbose=False)
    model, optimizer, batches = make(), SGD(1.0), RnnlmTrainer(None, None)
    before = blas.get_threads()
    for _ in range(4):
        batch_x, batch_t = batches.get_batch(xs, ts, 6, 5)
        model.forward(batch_x, batch_t)
        model.backward()
        optimizer.update(model.params, model.grads)
    assert blas.get_threads() == before  # no process-wide setting left behind
    for a, b in zip(fitted.params, model.params, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_blas_control
def test_batch_blocks_cover_every_row_once(spread, monkeypatch):
    """A time loop written over whole arrays gets the same rows of each:
    the batch is axis 1 of a time-major array and axis 0 of a state."""
    seen = np.zeros(10, dtype=int)
    steps = np.zeros((3, 10, 2))
    state = np.arange(10.0)
    calls = []

    def work(steps_block, state_block):
        calls.append(len(state_block))
        steps_block += state_block[None, :, None]
        seen[state_block.astype(int)] += 1

    with parallel.managed():
        parallel.for_batch_blocks(work, (steps, state), batch_axes=(1, 0), row_multiply_adds=10)
    np.testing.assert_array_equal(seen, 1)
    np.testing.assert_array_equal(steps, np.broadcast_to(state[None, :, None], steps.shape))
    assert calls == [5, 5]  # one block per thread
    calls.clear()
    monkeypatch.setattr(parallel, "_threads", 1)
    parallel.for_batch_blocks(work, (steps, state), batch_axes=(1, 0), row_multiply_adds=10)
    assert calls == [10]  # with one thread: once, on the whole batch


@needs_blas_control
def test_step_products_share_the_columns_among_the_threads(spread, monkeypatch):
    """Each step's a @ W as column blocks of W, one per thread (the second on
    a pool thread, for the whole context; on this thread while deferred work
    holds the pool, unless the product is large)."""
    monkeypatch.setattr(parallel, "STEP_PROCESSES", False)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 37)).astype(np.float32)
    a_steps = rng.standard_normal((5, 4, 6)).astype(np.float32)
    started = []

    class Worker(parallel._Worker):
        def __init__(self, W_block, s, e, workers):
            started.append((s, e))
            super().__init__(W_block, s, e, workers)

    monkeypatch.setattr(parallel, "_Worker", Worker)

    def run():
        out = np.empty((5, 4, 37), dtype=np.float32)
        with parallel.step_products(W, 4) as product:
            for t in range(5):
                out_t = out[t]
                assert product(a_steps[t], out_t) is out_t
        return out

    threaded = run()
    assert started == [(18, 37)]  # one worker, for the second half of the columns
    np.testing.assert_allclose(threaded, a_steps @ W, rtol=1e-5, atol=1e-5)
    with parallel.deferred():  # deferred work holds the other core: this thread does both blocks
        parallel.later(time.sleep, 0.2, large=True)
        np.testing.assert_array_equal(run(), threaded)  # the same blocks, the same bits
    assert started == [(18, 37)]
    with monkeypatch.context() as m, parallel.deferred():  # a large product: a worker helps anyway
        m.setattr(parallel, "MAX_SPLIT_STEP_MULTIPLY_ADDS_PROCESS", 1)
        parallel.later(time.sleep, 0.2, large=True)
        np.testing.assert_array_equal(run(), threaded)
    assert started == [(18, 37)] * 2
    with monkeypatch.context() as m:  # BLAS out of rnnlab's hands: this thread does both blocks
        m.setattr(parallel, "_can_spread", lambda: False)
        np.testing.assert_array_equal(run(), threaded)  # the same blocks, the same bits
    assert started == [(18, 37)] * 2
    monkeypatch.setattr(parallel, "_threads", 1)
    np.testing.assert_allclose(run(), a_steps @ W, rtol=1e-5, atol=1e-5)
    assert started == [(18, 37)] * 2  # one thread: no worker


@needs_blas_control
def test_a_short_step_product_is_the_plain_product(monkeypatch):
    monkeypatch.setattr(parallel, "_threads", 2)
    rng = np.random.default_rng(1)
    W = rng.standard_normal((100, 400)).astype(np.float32)
    a = rng.standard_normal((20, 100)).astype(np.float32)
    out = np.empty((20, 400), dtype=np.float32)
    with parallel.step_products(W.T.T, 20) as product:  # 800,000 multiply-adds: short
        product(a, out)
    np.testing.assert_array_equal(out, one_thread_product(a, W))


def right_operands(monkeypatch, product, a, out, calls=1):
    """Call ``product(a, out)`` ``calls`` times; return ``(shape, contiguous)``
    of the right operand of every ``np.matmul`` it made (the weights' blocks)."""
    seen = []
    matmul = np.matmul

    def spy(x, b, **kwargs):
        seen.append((b.shape, b.flags.c_contiguous))
        return matmul(x, b, **kwargs)

    monkeypatch.setattr(np, "matmul", spy)
    try:
        for _ in range(calls):
            product(a, out)
    finally:
        monkeypatch.setattr(np, "matmul", matmul)
    return seen


def test_a_long_step_product_by_a_transposed_view_uses_a_contiguous_copy(monkeypatch):
    """Backward's ``dA @ Wh.T``: BLAS packs a contiguous copy faster than the
    transposed view, so a product long enough gets one, made once per loop."""
    monkeypatch.setattr(parallel, "MIN_COPY_STEP_MULTIPLY_ADDS", 1)
    monkeypatch.setattr(parallel, "MIN_SPLIT_STEP_MULTIPLY_ADDS", 1 << 40)  # never split
    rng = np.random.default_rng(2)
    Wh = rng.standard_normal((6, 24)).astype(np.float32)
    dA = rng.standard_normal((3, 24)).astype(np.float32)
    out = np.empty((3, 6), dtype=np.float32)
    with parallel.step_products(Wh.T, 3) as product:
        seen = right_operands(monkeypatch, product, dA, out, calls=2)
    assert [contiguous for _, contiguous in seen] == [True, True]
    np.testing.assert_allclose(out, dA @ Wh.T, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(parallel, "MIN_COPY_STEP_MULTIPLY_ADDS", 1 << 40)  # short: as given
    with parallel.step_products(Wh.T, 3) as product:
        seen = right_operands(monkeypatch, product, dA, out)
    assert [contiguous for _, contiguous in seen] == [False]


@pytest.mark.parametrize("rows", [3, 16])
@pytest.mark.parametrize("transposed", [False, True])
def test_on_one_core_a_few_rows_step_product_goes_by_narrow_column_blocks(monkeypatch, rows,
                                                                         transposed):
    """Inside one_core() (a half of a batch, computed by this process or a
    helper), a product of a few rows is cut into column blocks of W of
    ONE_CORE_BLOCK_ELEMENTS each, copied contiguous once: faster on one core."""
    monkeypatch.setattr(parallel, "ONE_CORE_BLOCK_ELEMENTS", 60)  # 60 // K = 5 columns
    monkeypatch.setattr(parallel, "MIN_SPLIT_COLUMNS", 1)
    rng = np.random.default_rng(4)
    Wh = rng.standard_normal((12, 22)).astype(np.float32)
    W = Wh[:, :12].T if transposed else Wh  # backward's Wh.T, or forward's Wh
    a = rng.standard_normal((rows, W.shape[0])).astype(np.float32)
    out = np.empty((rows, W.shape[1]), dtype=np.float32)
    with parallel.one_core(), parallel.step_products(W, rows) as product:
        seen = right_operands(monkeypatch, product, a, out)
    assert all(contiguous for _, contiguous in seen)
    assert [shape[1] for shape, _ in seen] == ([5, 5, 2] if transposed else [5, 5, 5, 5, 2])
    np.testing.assert_allclose(out, a @ W, rtol=1e-5, atol=1e-5)


def test_on_one_core_narrow_blocks_are_at_least_min_split_columns_wide(monkeypatch):
    """A W far wider than measured (K of 4096) is not cut into products of a
    column or two: blocks of MIN_SPLIT_COLUMNS."""
    rng = np.random.default_rng(6)
    W = rng.standard_normal((4096, 40)).astype(np.float32)
    a = rng.standard_normal((2, 4096)).astype(np.float32)
    out = np.empty((2, 40), dtype=np.float32)
    with parallel.one_core(), parallel.step_products(W, 2) as product:
        seen = right_operands(monkeypatch, product, a, out)
    assert [shape[1] for shape, _ in seen] == [16, 16, 8]
    np.testing.assert_allclose(out, a @ W, rtol=1e-4, atol=1e-4)


@needs_blas_control
def test_on_one_core_a_long_products_transposed_weights_are_used_whole(monkeypatch):
    """Backward's ``dA @ Wh.T`` on many rows inside one_core(): one product by
    one contiguous copy (two column blocks, as for threads, are slower)."""
    monkeypatch.setattr(parallel, "_threads", 2)
    monkeypatch.setattr(parallel, "MIN_SPLIT_STEP_MULTIPLY_ADDS", 1)
    monkeypatch.setattr(parallel, "MIN_SPLIT_STEP_MULTIPLY_ADDS_PROCESS", 1)
    rng = np.random.default_rng(5)
    Wh = rng.standard_normal((40, 160)).astype(np.float32)
    dA = rng.standard_normal((48, 160)).astype(np.float32)
    for W, expected in ((Wh.T, [((160, 40), True)]),
                        (Wh, [((40, 80), True), ((40, 80), True)])):
        out = np.empty((48, W.shape[1]), dtype=np.float32)
        a = dA if W.shape[0] == 160 else dA[:, :40]
        with parallel.managed(), parallel.one_core(), parallel.step_products(W, 48) as product:
            assert right_operands(monkeypatch, product, a, out) == expected
        np.testing.assert_allclose(out, a @ W, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_time_layers_on_one_core_equal_the_plain_loop_and_stay_exact(monkeypatch, kind):
    """The narrow blocks of one_core(): the same values as the plain loop
    (float32 round-off), and exact gradients (float64 central differences)."""
    monkeypatch.setattr(parallel, "ONE_CORE_BLOCK_ELEMENTS", 14)  # K = 7: blocks of 2 columns
    monkeypatch.setattr(parallel, "MIN_SPLIT_COLUMNS", 1)
    rng = np.random.default_rng(7)
    xs = rng.standard_normal((4, 3, 5)).astype(np.float32)
    dhs = rng.standard_normal((4, 3, 7)).astype(np.float32)
    results = []
    for narrow in (False, True):
        layer = time_layer(kind, np.random.default_rng(3), np.float32)
        with parallel.one_core() if narrow else parallel.managed():
            hs = layer.forward(xs)
            dxs = layer.backward(dhs)
        results.append([hs, dxs, layer.dh] + [g.copy() for g in layer.grads])
    for plain, narrow in zip(*results, strict=True):
        np.testing.assert_allclose(narrow, plain, rtol=1e-5, atol=1e-6)

    layer = time_layer(kind, rng, np.float64)
    layer.stateful = False
    xs = rng.standard_normal((3, 4, 5))
    weights = rng.standard_normal((3, 4, 7))

    def loss():
        with parallel.one_core():
            return float((layer.forward(xs) * weights).sum())

    def backward():
        loss()
        with parallel.one_core():
            dxs = layer.backward(weights)
        return [g.copy() for g in layer.grads] + [dxs]

    errors = check_function(loss, backward, list(layer.params) + [xs])
    assert max(errors) < 1e-6, errors


@needs_blas_control
def test_an_error_in_a_worker_reaches_the_caller_and_the_worker_stops(spread, helpers):
    W = np.ones((3, 8), dtype=np.float32)
    out = np.empty((2, 8), dtype=np.float32)
    with parallel.step_products(W, 2) as product:
        product(np.ones((2, 3), dtype=np.float32), out)
        with pytest.raises(ValueError):
            product(np.ones((2, 5), dtype=np.float32), out)  # wrong shape in both blocks
        product(np.ones((2, 3), dtype=np.float32), out)  # the worker still serves
    np.testing.assert_array_equal(out, 3)


@needs_blas_control
def test_a_step_interrupted_while_its_worker_computes_still_stops_the_worker(spread,
                                                                          monkeypatch):
    """Ctrl-C can arrive after a step was handed over and before it was waited
    for: leaving the context waits for that block, then stops the worker."""
    monkeypatch.setattr(parallel, "STEP_PROCESSES", False)
    W = np.ones((3, 8), dtype=np.float32)
    out = np.zeros((2, 8), dtype=np.float32)
    workers = []
    original = parallel._Worker.start

    def start_then_interrupt(self, a, out):
        workers.append(self)
        original(self, a, out)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m:
        m.setattr(parallel._Worker, "start", start_then_interrupt)
        with pytest.raises(KeyboardInterrupt), parallel.step_products(W, 2) as product:
            product(np.ones((2, 3), dtype=np.float32), out)
    assert workers and all(w.future.done() and not w.pending for w in workers)
    np.testing.assert_array_equal(out[:, 4:], 3)  # the worker's block was finished


@needs_blas_control
@pytest.mark.skipif(not step_worker.AVAILABLE, reason="helper processes are for x86-64 only")
def test_helper_processes_give_the_bits_of_this_thread_alone(spread):
    """A helper process computes the second column block of every step; the
    blocks are the same whoever computes them, so are the bits."""
    rng = np.random.default_rng(4)
    W = rng.standard_normal((6, 37)).astype(np.float32)
    a_steps = rng.standard_normal((5, 4, 6)).astype(np.float32)

    def run():
        out = np.empty((5, 4, 37), dtype=np.float32)
        with parallel.step_products(W, 4) as product:
            for t in range(5):
                product(a_steps[t], out[t])
        return out

    shared = run()
    assert parallel._processes and all(p.alive() for p in parallel._processes)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(parallel, "_can_spread", lambda: False)  # this thread does every block
        np.testing.assert_array_equal(run(), shared)
    np.testing.assert_allclose(shared, a_steps @ W, rtol=1e-5, atol=1e-5)
    with parallel.deferred():  # deferred work holds the pool: threads first, then processes
        parallel.later(time.sleep, 0.05, large=True)
        np.testing.assert_array_equal(run(), shared)


@needs_blas_control
@pytest.mark.skipif(not step_worker.AVAILABLE, reason="helper processes are for x86-64 only")
def test_loops_in_two_threads_at_once_take_turns_with_the_helper_processes(spread, monkeypatch):
    """Two time loops running at once (a user's threads, or for_batch_blocks):
    one has the helper processes, the other computes its blocks itself; both
    give the bits of a loop alone, and no helper is started twice."""
    monkeypatch.setattr(parallel, "STEP_PROCESSES", True)
    rng = np.random.default_rng(5)
    W = rng.standard_normal((16, 64)).astype(np.float32)
    a_steps = rng.standard_normal((2, 40, 8, 16)).astype(np.float32)

    def loop(k, outs, start):
        out = np.empty((40, 8, 64), dtype=np.float32)
        start.wait()
        with parallel.step_products(W, 8) as product:
            for t in range(40):
                product(a_steps[k, t], out[t])
        outs[k] = out

    with parallel.managed():
        alone = {}
        for k in range(2):
            loop(k, alone, threading.Barrier(1))
        for _ in range(3):
            parallel._close_processes()  # both threads find none: the start is the race
            together, start = {}, threading.Barrier(2)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "a helper process failed" would be an error
                threads = [threading.Thread(target=loop, args=(k, together, start), daemon=True)
                           for k in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                    assert not t.is_alive(), "a loop hung waiting for a helper process"
            for k in range(2):
                np.testing.assert_array_equal(together[k], alone[k])
    # No helper failed, none was started twice (on a busy machine the helpers
    # may have gone to rest, and the last round started none).
    assert parallel.STEP_PROCESSES and len(parallel._processes) <= 1
    assert not parallel._processes_in_use


@needs_blas_control
@pytest.mark.skipif(not step_worker.AVAILABLE, reason="helper processes are for x86-64 only")
def test_a_helper_process_that_dies_is_replaced_by_this_thread(spread, monkeypatch):
    monkeypatch.setattr(parallel, "STEP_PROCESSES", True)
    W = np.arange(24, dtype=np.float32).reshape(3, 8)
    a = np.ones((2, 3), dtype=np.float32)
    out = np.zeros((2, 8), dtype=np.float32)
    with parallel.step_products(W, 2) as product:
        product(a, out)
        assert parallel._processes
        for p in parallel._processes:
            p.process.kill()
            p.process.wait()
        out[...] = 0
        with pytest.warns(RuntimeWarning, match="helper process failed"):
            product(a, out)
    np.testing.assert_array_equal(out, a @ W)
    assert parallel.STEP_PROCESSES is False  # threads from now on
    assert not parallel._processes


@needs_blas_control
@pytest.mark.skipif(not step_worker.AVAILABLE, reason="helper processes are for x86-64 only")
def test_a_loop_interrupted_after_handing_a_step_to_a_helper_process_leaves_it_ready(spread):
    W = np.arange(24, dtype=np.float32).reshape(3, 8)
    a = np.ones((2, 3), dtype=np.float32)
    out = np.zeros((2, 8), dtype=np.float32)
    original = step_worker.StepWorker.post

    def post_then_interrupt(self, a):
        original(self, a)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m:
        m.setattr(step_worker.StepWorker, "post", post_then_interrupt)
        with pytest.raises(KeyboardInterrupt), parallel.step_products(W, 2) as product:
            product(a, out)
    assert not parallel._processes_in_use
    with parallel.step_products(W, 2) as product:  # the next loop is served as before
        product(2 * a, out)
    np.testing.assert_array_equal(out, 2 * a @ W)


@pytest.mark.skipif(not step_worker.AVAILABLE, reason="helper processes are for x86-64 only")
def test_a_helper_process_ends_with_the_process_that_started_it(tmp_path):
    """Killed without a word (no atexit), the caller leaves a helper that
    sees its parent gone and exits, also in the middle of a loop."""
    script = tmp_path / "orphan.py"
    script.write_text(
        "import os, numpy as np\n"
        "from common import step_worker\n"
        "w = step_worker.StepWorker()\n"
        "w.begin(np.ones((3, 8), np.float32), 2)\n"
        "print(w.process.pid, flush=True)\n"
        "os._exit(0)\n")
    root = Path(parallel.__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60)
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    pytest.fail("the helper process outlived its parent by 20 s")


def test_row_blocks_give_work_the_same_rows_of_every_array(spread):
    x = np.arange(40.0).reshape(20, 2)
    y = np.zeros(20)
    sizes = []

    def row_sums(x, y):
        sizes.append(len(x))
        y[...] = x.sum(axis=1)

    parallel.for_row_blocks(row_sums, x, y)
    np.testing.assert_array_equal(y, x.sum(axis=1))
    assert sizes == [4] * 5  # BLOCK_ELEMENTS = 8 elements: 4 rows of 2


def test_steps_at_once_is_every_step_where_the_cores_share_them_else_a_cached_block(
        monkeypatch):
    """A time loop's local derivatives: all steps at once where for_row_blocks
    would share them among the threads, else blocks of about BLOCK_ELEMENTS
    values (at least one step, at most all)."""
    monkeypatch.setattr(parallel, "_threads", 2)
    big = parallel.MIN_PARALLEL_ELEMENTS  # values a step: any number of steps is large
    with parallel.managed():
        assert parallel.steps_at_once(29, big) == 29
        assert parallel.steps_at_once(29, 64 * 1024) == 29  # 1.9 M values
        assert parallel.steps_at_once(7, 64 * 512) == 7  # 229 K values: one block anyway
        assert parallel.steps_at_once(35, 20 * 400) == parallel.BLOCK_ELEMENTS // 8000
        with parallel.one_core():
            assert parallel.steps_at_once(29, 64 * 1024) == parallel.BLOCK_ELEMENTS // 65536
            assert parallel.steps_at_once(29, big) == 1
            assert parallel.steps_at_once(3, 10) == 3
    monkeypatch.setattr(parallel, "_threads", 1)
    with parallel.managed():
        assert parallel.steps_at_once(29, 64 * 1024) == parallel.BLOCK_ELEMENTS // 65536


def time_layer(kind, rng, dtype):
    """A stateful TimeRNN, TimeLSTM or TimeGRU of D = 5, H = 7."""
    D, H = 5, 7
    cls, G, biases = {"rnn": (TimeRNN, H, 1), "lstm": (TimeLSTM, 4 * H, 1),
                      "gru": (TimeGRU, 3 * H, 2)}[kind]
    ws = [rng.standard_normal(s) * 0.5 for s in [(D, G), (H, G)] + [(G,)] * biases]
    return cls(*(w.astype(dtype) for w in ws), stateful=True)


@needs_blas_control
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_time_layers_with_shared_step_products_equal_one_thread(spread, helpers, monkeypatch,
                                                                kind):
    """Forward and backward with each step's product in two column blocks,
    the weight gradients deferred, against one thread."""
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((7, 4, 5)).astype(np.float32)
    dhs = rng.standard_normal((7, 4, 7)).astype(np.float32)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(parallel, "_threads", threads)
        layer = time_layer(kind, np.random.default_rng(3), np.float32)
        out = []
        for _ in range(2):  # stateful: the second batch starts from the first's state
            with parallel.managed(), parallel.deferred():
                hs = layer.forward(xs)
                dxs = layer.backward(dhs)
            out += [hs.copy(), dxs.copy(), layer.dh.copy()]
            out += [layer.dc.copy()] if kind == "lstm" else []
            out += [g.copy() for g in layer.grads]
        results.append(out)
    for plain, spread_out in zip(*results, strict=True):
        np.testing.assert_allclose(spread_out, plain, rtol=1e-5, atol=1e-6)


@needs_blas_control
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_time_layer_gradients_stay_exact_with_shared_step_products(spread, helpers, kind):
    """float64 central differences, each step's product in two column blocks."""
    rng = np.random.default_rng(6)
    layer = time_layer(kind, rng, np.float64)
    layer.stateful = False
    xs = rng.standard_normal((3, 4, 5))
    weights = rng.standard_normal((3, 4, 7))  # loss = sum(hs * weights)

    def loss():
        with parallel.managed():
            return float((layer.forward(xs) * weights).sum())

    def backward():
        loss()
        with parallel.managed(), parallel.deferred():
            dxs = layer.backward(weights)
        return [g.copy() for g in layer.grads] + [dxs]

    errors = check_function(loss, backward, list(layer.params) + [xs])
    assert max(errors) < 1e-6, errors


@needs_blas_control
def test_model_gradients_stay_exact_when_spread(spread):
    V, N, T = 9, 4, 3
    rng = np.random.default_rng(4)
    model = BetterRnnlm(V, 4, 4, num_layers=2, dropout_ratio=0.0, tie_weights=False,
                        seed=0, dtype=np.float64)
    for p in model.params:
        p[...] = rng.standard_normal(p.shape) * 0.5
    xs = rng.integers(0, V, size=(N, T))
    ts = rng.integers(0, V, size=(N, T))

    def loss():
        model.reset_state()
        with parallel.managed():
            return model.forward(xs, ts)

    def backward():
        loss()
        with parallel.managed():
            model.backward()  # weight gradients deferred to the pool
        return [g.copy() for g in model.grads]

    errors = check_function(loss, backward, list(model.params))
    assert max(errors) < 1e-6, errors


@needs_blas_control
@pytest.mark.parametrize("make", [
    lambda: SimpleRnnlm(50, 8, 8, seed=0),
    lambda: GruRnnlm(50, 8, 8, seed=0),
    lambda: BetterRnnlm(50, 8, 8, num_layers=2, dropout_ratio=0.2, seed=0),
])
def test_a_spread_run_is_deterministic_and_close_to_the_plain_one(spread, make):
    corpus = np.random.default_rng(5).integers(0, 50, size=600)

    def run():
        model = make()
        trainer = RnnlmTrainer(model, SGD(1.0))
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=2, batch_size=6, time_size=5,
                    max_grad=0.25, verbose=False)
        return model, trainer.ppl_list

    first, ppl_first = run()
    second, ppl_second = run()
    for a, b in zip(first.params, second.params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ppl_first == ppl_second

    with pytest.MonkeyPatch.context() as m:  # the same run with nothing spread
        m.setattr(parallel, "_threads", 1)
        plain, ppl_plain = run()
    for a, b in zip(first.params, plain.params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@needs_blas_control
@pytest.mark.parametrize("per_thread", sorted({parallel._ERRSTATE_PER_THREAD, True}))
def test_pool_threads_keep_the_callers_errstate(spread, per_thread, monkeypatch):
    # NumPy 1.x keeps errstate per thread: there the caller's is set on the pool
    # thread by hand (the branch is taken on NumPy 2 too, to run it; NumPy 2
    # keeps errstate in the context variables the pool's tasks run in).
    monkeypatch.setattr(parallel, "_ERRSTATE_PER_THREAD", per_thread)
    big = np.full((16, 4), 1e4, dtype=np.float32)
    out = np.empty_like(big)

    def work(x, y):
        np.exp(x, out=y)  # overflows to inf: a warning unless ignored

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore"), parallel.managed():
            parallel.for_row_blocks(work, big, out)
            with parallel.deferred():
                parallel.later(work, big, out, large=True)
    assert np.isinf(out).all()
    # 'call' mode with its function: every block's overflow reaches the caller's handler
    # (NumPy 1.x raised NameError on a pool thread given the mode without the function).
    calls = []
    with np.errstate(over="call", call=lambda kind, flag: calls.append(kind)), \
            parallel.managed():
        parallel.for_row_blocks(work, big, out)
    assert calls and set(calls) == {"overflow"}


def test_huge_logits_on_a_pool_thread_give_no_warning(monkeypatch):
    from layers import TimeSoftmaxWithLoss

    monkeypatch.setattr(parallel, "_threads", 2)
    rng = np.random.default_rng(6)
    xs = rng.standard_normal((8, 16, 10000)).astype(np.float32)
    xs[2, 0] *= 1e4  # row 32: in the second block of rows, which a pool thread takes
    ts = rng.integers(0, 10000, size=(8, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = TimeSoftmaxWithLoss().forward(xs, ts)
    assert np.isfinite(loss)


@needs_blas_control
def test_work_left_by_an_interrupted_context_is_dropped(spread):
    stale = []
    parallel._later.append(lambda: stale.append("from a step that never finished"))
    with parallel.managed(), parallel.deferred():
        pass
    assert stale == [] and not parallel._later


def test_a_kept_task_that_raises_leaves_no_queue_held_and_no_array_unfinished():
    # (The gradient checks keep deferred tasks to the end of their context; one
    # that raised left this thread holding the queue, and other tasks' arrays NaN.)
    a, b = np.zeros(3), np.zeros(3)

    def fails(out):
        raise RuntimeError("a task of one's own fails")

    with pytest.raises(RuntimeError, match="fails"), parallel._postponing():
        with parallel.deferred():
            parallel.later(np.add, np.ones(3), 1.0, out=a)
            parallel.later(fails, out=b)
            assert np.isnan(a).all()  # kept, not done
    np.testing.assert_array_equal(a, 2.0)  # done all the same
    assert parallel._queue_owner is None and not parallel._here.owns_queue
    assert parallel._here.postponed is None


def test_kept_tasks_of_a_context_inside_another_are_done_as_it_ends():
    a = np.zeros(3)
    with parallel.deferred(), parallel._postponing():
        with parallel.deferred():
            parallel.later(np.add, np.ones(3), 1.0, out=a)
        np.testing.assert_array_equal(a, 2.0)  # not left NaN until the outer one ends
