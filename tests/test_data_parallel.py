"""Each half of a mini-batch on its own core (common.data_parallel).

A sequence-to-sequence batch is computed as two halves, the second by a
helper process holding a replica of the model. The loss and gradients must
be the whole batch's (within round-off; to float64 precision in float64),
and the same bits whether the helper computes its half or this process
does, so that a seed gives one run whatever happens to the helper.
Thresholds are lowered so that a small model splits.
"""

from pathlib import Path

import numpy as np
import pytest

import common.data_parallel as data_parallel
from common import batch_worker
from common.optimizer import Adam
from common.trainer import RnnlmTrainer, Trainer
from models import (
    AttentionSeq2seq,
    BetterRnnlm,
    GruRnnlm,
    PeekySeq2seq,
    Rnnlm,
    Seq2seq,
    SimpleRnnlm,
)

from helper_processes import (  # noqa: F401  (small_models_split: a fixture for every test here)
    assert_halves_carry_the_whole_batchs_state,
    lm_batches,
    needs_processes,
    small_models_split,
)

V, D, H = 11, 4, 6


@pytest.fixture
def no_helper(monkeypatch):
    """The helper cannot be had: this process computes both halves."""
    monkeypatch.setattr(data_parallel, "_disabled", True)


def pairs(rng, n, T_enc=5, T_dec=4):
    return rng.integers(0, V, (n, T_enc)), rng.integers(0, V, (n, T_dec + 1))


def halves_grads(model, x, t):
    """The loss and a copy of the gradients, computed by halves."""
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        loss = forward_backward(x, t)
    return loss, [g.copy() for g in model.grads]


def whole_grads(model, x, t):
    loss = model.forward(x, t)
    model.backward()
    return loss, [g.copy() for g in model.grads]


@pytest.mark.parametrize("model_class", [Seq2seq, PeekySeq2seq, AttentionSeq2seq])
def test_halves_give_the_whole_batch_loss_and_gradients(model_class):
    rng = np.random.default_rng(0)
    x, t = pairs(rng, 9)  # halves of 4 and 5 rows
    t[0, -1] = t[6, -1] = t[7, -1] = -1  # ignored targets: the halves weigh by their scored targets
    model = model_class(V, D, H, seed=1, dtype=np.float64)
    loss, grads = halves_grads(model, x, t)
    expected_loss, expected = whole_grads(model, x, t)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    for g, e, name in zip(grads, expected, model.named_params(), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-14, err_msg=name)


def test_float32_halves_are_the_whole_batch_within_round_off():
    rng = np.random.default_rng(1)
    x, t = pairs(rng, 16)
    model = Seq2seq(V, D, H, seed=2)
    loss, grads = halves_grads(model, x, t)
    expected_loss, expected = whole_grads(model, x, t)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    for g, e in zip(grads, expected, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)


@needs_processes
@pytest.mark.parametrize("model_class", [Seq2seq, AttentionSeq2seq])
def test_the_helper_gives_the_bits_of_this_process_alone(model_class, monkeypatch):
    rng = np.random.default_rng(2)
    x, t = pairs(rng, 12)
    model = model_class(V, D, H, seed=3)
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        loss = forward_backward(x, t)
        assert data_parallel._worker is not None and data_parallel._worker.alive()
    grads = [g.copy() for g in model.grads]
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone_loss, alone = halves_grads(model, x, t)
    assert loss == alone_loss
    for g, a in zip(grads, alone, strict=True):
        np.testing.assert_array_equal(g, a)


@needs_processes
def test_the_helper_leaves_the_targets_the_loss_ignores_unscored_as_here(monkeypatch):
    """A loss told to ignore a padding id: the helper's replica, built with the
    default label, scored the padding, and its half came back wrong."""
    rng = np.random.default_rng(9)
    x, t = pairs(rng, 12)
    t[:, 1:] = np.maximum(t[:, 1:], 1)
    t[::2, -2:] = 0  # padding
    model = Seq2seq(V, D, H, seed=3)
    model.loss_layer.ignore_label = 0
    loss, grads = halves_grads(model, x, t)
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone_loss, alone = halves_grads(model, x, t)
    assert loss == alone_loss
    for g, a in zip(grads, alone, strict=True):
        np.testing.assert_array_equal(g, a)


def train(model, x, t, epochs=2):
    trainer = Trainer(model, Adam(lr=0.01))
    trainer.fit(x, t, max_epoch=epochs, batch_size=8, max_grad=5.0, verbose=False)
    return trainer


@needs_processes
def test_the_trainer_splits_its_batches_and_a_seed_gives_one_run(monkeypatch):
    rng = np.random.default_rng(3)
    x, t = pairs(rng, 40)
    calls = []
    original = batch_worker.BatchWorker.post
    monkeypatch.setattr(batch_worker.BatchWorker, "post",
                        lambda self, *a: calls.append(1) or original(self, *a))
    helped = train(PeekySeq2seq(V, D, H, seed=4), x, t)
    assert len(calls) == 10  # every batch of the two epochs
    monkeypatch.setattr(data_parallel, "_disabled", True)
    alone = train(PeekySeq2seq(V, D, H, seed=4), x, t)
    assert helped.loss_list == alone.loss_list
    for a, b in zip(helped.model.params, alone.model.params, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_processes
def test_a_helper_that_dies_is_replaced_and_the_run_goes_on_with_the_same_bits():
    rng = np.random.default_rng(4)
    x, t = pairs(rng, 10)
    model = Seq2seq(V, D, H, seed=5)
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        first = forward_backward(x, t)
        data_parallel._worker.process.kill()
        data_parallel._worker.process.wait()
        second = forward_backward(x, t)  # this process computes the half
        grads = [g.copy() for g in model.grads]
        third = forward_backward(x, t)  # a new helper
        assert data_parallel._worker.alive()
    assert first == second == third
    for g, h in zip(grads, model.grads, strict=True):
        np.testing.assert_array_equal(g, h)


@needs_processes
def test_an_error_in_the_helpers_half_is_raised_here_with_its_message():
    rng = np.random.default_rng(5)
    x, t = pairs(rng, 10)
    x[8, 0] = V  # an id out of range, in the second half only
    model = Seq2seq(V, D, H, seed=6)
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward, \
            pytest.raises(ValueError, match="out of range|vocabulary"):
        forward_backward(x, t)


def test_what_splits(monkeypatch):
    monkeypatch.undo()  # the real thresholds
    if not data_parallel.PROCESSES_AVAILABLE:
        assert not data_parallel.splits(Seq2seq(13, 16, 128), 128)
        return
    monkeypatch.setattr(data_parallel, "num_threads", lambda: 2)
    assert data_parallel.splits(Seq2seq(13, 16, 128), 128)  # the textbook's addition
    assert data_parallel.splits(AttentionSeq2seq(59, 16, 256), 128)  # and dates
    assert data_parallel.splits(Rnnlm(50, 32, 256), 32)  # the character-level model
    assert data_parallel.splits(GruRnnlm(50, 32, 256), 32)
    assert data_parallel.splits(Rnnlm(50, 32, 512), 32)  # Wh of 4 MiB
    assert not data_parallel.splits(Rnnlm(50, 32, 1024), 32)  # 16 MiB: split by columns
    assert not data_parallel.splits(Rnnlm(10000, 100, 100), 20)  # word level: halves too short
    assert not data_parallel.splits(Seq2seq(13, 16, 32), 128)  # steps too small
    assert not data_parallel.splits(BetterRnnlm(50, 256, 256), 32)  # dropout: not replicated

    class MySeq2seq(Seq2seq):  # the helper could not build it
        pass

    assert not data_parallel.splits(MySeq2seq(13, 16, 128), 128)
    monkeypatch.setattr(data_parallel, "num_threads", lambda: 1)
    assert not data_parallel.splits(Seq2seq(13, 16, 128), 128)


def test_without_the_helper_a_batch_is_still_computed_by_halves(no_helper, monkeypatch):
    rng = np.random.default_rng(6)
    x, t = pairs(rng, 6)
    model = Seq2seq(V, D, H, seed=7, dtype=np.float64)
    halves = []
    original = data_parallel._forward_backward
    monkeypatch.setattr(data_parallel, "_forward_backward",
                        lambda m, x, t: halves.append(len(x)) or original(m, x, t))
    loss, grads = halves_grads(model, x, t)
    assert halves == [3, 3]
    expected_loss, expected = whole_grads(model, x, t)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-14)


def test_the_worker_builds_only_the_models_it_knows():
    with pytest.raises(ValueError, match="cannot build"):
        batch_worker.BatchWorker().begin(BetterRnnlm(V, H, H), (2, 3), (2, 3))


@needs_processes
def test_two_models_taking_turns_each_get_their_own_replica():
    rng = np.random.default_rng(7)
    x, t = pairs(rng, 10)
    plain, peeky = Seq2seq(V, D, H, seed=8), PeekySeq2seq(V, D, H, seed=9)
    with data_parallel.batch_halves(plain, x.shape, t.shape) as plain_step, \
            data_parallel.batch_halves(peeky, x.shape, t.shape) as peeky_step:
        losses = [plain_step(x, t), peeky_step(x, t), plain_step(x, t)]
        grads = [g.copy() for g in plain.grads]
    assert losses[0] == losses[2]
    expected_loss, expected = whole_grads(peeky, x, t)
    assert losses[1] == pytest.approx(expected_loss, rel=1e-5)
    for g, e in zip(grads, whole_grads(plain, x, t)[1], strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)


@needs_processes
def test_the_helpers_cpu_time_is_counted(monkeypatch):
    """Also once the helper has ended (replaced after it died or hung, or
    closed at the end of a fit): a benchmark reports a run's CPU time as
    this process's and its helpers', read after the helper may be gone."""
    rng = np.random.default_rng(8)
    x, t = pairs(rng, 200)
    model = Seq2seq(V, D, 64, seed=10)
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        for _ in range(20):
            forward_backward(x, t)
        used = data_parallel.helper_cpu_seconds()
    if not Path("/proc/self/stat").exists():  # only Linux says
        assert used == 0.0
    else:
        assert used > 0.0
        data_parallel._close()  # the helper ends
        assert data_parallel._worker is None
        assert data_parallel.helper_cpu_seconds() >= used


def helper_page_faults():
    """Minor page faults of the running helper so far (Linux's /proc)."""
    with open(f"/proc/{data_parallel._worker.process.pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])  # minflt


@needs_processes
@pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                    reason="only Linux counts another process's page faults")
def test_the_helper_keeps_the_memory_a_step_frees():
    # The addition task's sizes: with glibc's own thresholds each half's
    # arrays land on fresh pages again at every step (some 40-80 faults).
    # The quietest of three windows: a machine busy with other work can add a
    # few faults to one (6.4 a step was seen once, under a full test run
    # beside a training run), never the dozens of the fault this is about.
    rng = np.random.default_rng(3)
    x, t = rng.integers(0, 13, (128, 7)), rng.integers(0, 13, (128, 5))
    model = Seq2seq(13, 16, 128, seed=0)
    windows = []
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        for _ in range(10):
            forward_backward(x, t)
        for _ in range(3):
            before = helper_page_faults()
            for _ in range(10):
                forward_backward(x, t)
            windows.append((helper_page_faults() - before) / 10)
    assert min(windows) < 5, windows


@needs_processes
@pytest.mark.parametrize("k", [3, 7])
def test_stop_and_resume_by_halves_is_bit_identical(k, tmp_path):
    rng = np.random.default_rng(9)
    x, t = pairs(rng, 40)
    path = tmp_path / "ck.npz"
    fit = dict(max_epoch=2, batch_size=8, max_grad=5.0, verbose=False, seed=3)
    straight = Trainer(Seq2seq(V, D, H, seed=11), Adam(0.01)).fit(x, t, **fit)
    Trainer(Seq2seq(V, D, H, seed=11), Adam(0.01)).fit(x, t, max_iters=k, checkpoint=path, **fit)
    resumed = Trainer(Seq2seq(V, D, H, seed=12), Adam(0.01)).resume(path).fit(
        x, t, checkpoint=path, **fit)
    assert straight.loss_list == resumed.loss_list
    for p, q in zip(straight.model.params, resumed.model.params, strict=True):
        np.testing.assert_array_equal(p, q)


def test_no_helper_when_shared_memory_is_short(monkeypatch):
    monkeypatch.setattr(batch_worker.step_worker, "fits_shared_memory", lambda n: False)
    with pytest.raises(OSError, match="shared memory"):
        batch_worker.BatchWorker().begin(Seq2seq(V, D, H), (2, 5), (2, 5))


@pytest.mark.parametrize("model_class", [Seq2seq, PeekySeq2seq, AttentionSeq2seq])
@pytest.mark.parametrize("beam_width", [1, 3])
def test_questions_answered_by_halves_get_the_whole_batchs_answers(model_class, beam_width):
    rng = np.random.default_rng(10)
    x, t = pairs(rng, 11)
    model = model_class(V, D, H, seed=13, dtype=np.float64)
    with data_parallel.answer_halves(model, 11, x.shape[1], 4) as answer:
        ids = answer(x, t[:, 0], beam_width)
    np.testing.assert_array_equal(ids, model.generate(x, t[:, 0], 4, beam_width=beam_width))


@needs_processes
def test_the_helpers_answers_are_this_process_alones(monkeypatch):
    from common.util import seq2seq_correct

    rng = np.random.default_rng(11)
    x, t = pairs(rng, 30)
    model = AttentionSeq2seq(V, D, H, seed=14)
    posted = []
    original = batch_worker.BatchWorker.post_answers
    monkeypatch.setattr(batch_worker.BatchWorker, "post_answers",
                        lambda self, *a: posted.append(1) or original(self, *a))
    helped = seq2seq_correct(model, x, t, batch_size=8, beam_width=2)
    assert len(posted) == 4  # batches of 8, 8, 8 and 6
    monkeypatch.setattr(data_parallel, "_disabled", True)
    np.testing.assert_array_equal(helped, seq2seq_correct(model, x, t, batch_size=8,
                                                          beam_width=2))


@needs_processes
def test_a_bad_question_in_the_helpers_half_is_reported_here():
    from common.util import seq2seq_accuracy

    rng = np.random.default_rng(12)
    x, t = pairs(rng, 10)
    x[9, 1] = V + 3
    with pytest.raises(ValueError, match="xs"):
        seq2seq_accuracy(Seq2seq(V, D, H, seed=15), x, t)


# -- language models: the rows carry their hidden state from batch to batch -------------


@pytest.mark.parametrize("model_class", [SimpleRnnlm, Rnnlm, GruRnnlm])
def test_a_language_models_halves_carry_the_whole_batchs_state(model_class, no_helper):
    rng = np.random.default_rng(13)
    batches = lm_batches(rng, 3, V)
    batches[1][1][2, 3] = -1  # an ignored target
    halved = model_class(V, D, H, seed=16, dtype=np.float64)
    whole = model_class(V, D, H, seed=16, dtype=np.float64)
    assert_halves_carry_the_whole_batchs_state(halved, whole, batches, H)


@needs_processes
@pytest.mark.parametrize("model_class", [Rnnlm, GruRnnlm])
def test_a_language_models_helper_gives_the_bits_of_this_process_alone(model_class,
                                                                       monkeypatch):
    rng = np.random.default_rng(14)
    batches = lm_batches(rng, 3, V, rows=12)

    def run():
        model, results = model_class(V, D, H, seed=17), []
        with data_parallel.batch_halves(model, (12, 5), (12, 5)) as forward_backward:
            for x, t in batches:
                results.append((forward_backward(x, t), [g.copy() for g in model.grads],
                                model.get_state()))
        return results

    helped = run()
    assert data_parallel._worker is not None and data_parallel._worker.alive()
    monkeypatch.setattr(data_parallel, "_disabled", True)
    for (loss, grads, state), (loss_a, grads_a, state_a) in zip(helped, run(), strict=True):
        assert loss == loss_a
        for a, b in zip(grads + state, grads_a + state_a, strict=True):
            np.testing.assert_array_equal(a, b)


@needs_processes
@pytest.mark.parametrize("k", [4, 9])
def test_a_language_model_stopped_and_resumed_by_halves_is_bit_identical(k, tmp_path,
                                                                         monkeypatch):
    rng = np.random.default_rng(15)
    corpus = rng.integers(0, V, 400)
    xs, ts = corpus[:-1], corpus[1:]
    path = tmp_path / "ck.npz"
    fit = dict(max_epoch=2, batch_size=8, time_size=6, max_grad=5.0, verbose=False)
    posted = []
    original = batch_worker.BatchWorker.post
    monkeypatch.setattr(batch_worker.BatchWorker, "post",
                        lambda self, *a: posted.append(1) or original(self, *a))
    straight = RnnlmTrainer(Rnnlm(V, D, H, seed=18), Adam(0.01)).fit(xs, ts, **fit)
    RnnlmTrainer(Rnnlm(V, D, H, seed=18), Adam(0.01)).fit(xs, ts, max_iters=k,
                                                          checkpoint=path, **fit)
    resumed = RnnlmTrainer(Rnnlm(V, D, H, seed=19), Adam(0.01)).resume(path).fit(
        xs, ts, checkpoint=path, **fit)
    assert len(posted) == 2 * 2 * (399 // 48)  # every batch of both runs, by halves
    assert straight.ppl_list == resumed.ppl_list
    for p, q in zip(straight.model.params + straight.model.get_state(),
                    resumed.model.params + resumed.model.get_state(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_a_hand_written_loop_with_batch_halves_gives_fits_bits():
    """The book's loop, with forward_backward in place of forward and backward."""
    from common.util import clip_grads

    rng = np.random.default_rng(16)
    corpus = rng.integers(0, V, 300)
    xs, ts = corpus[:-1], corpus[1:]
    fitted = RnnlmTrainer(Rnnlm(V, D, H, seed=20), Adam(0.01)).fit(
        xs, ts, max_epoch=1, batch_size=8, time_size=5, max_grad=5.0, verbose=False)

    model, optimizer = Rnnlm(V, D, H, seed=20), Adam(0.01)
    batches = RnnlmTrainer(None, None)  # for get_batch, the book's way of reading lanes
    with data_parallel.batch_halves(model, (8, 5), (8, 5)) as forward_backward:
        for _ in range(len(xs) // (8 * 5)):
            x, t = batches.get_batch(xs, ts, 8, 5)
            forward_backward(x, t)
            clip_grads(model.grads, 5.0)
            optimizer.update(model.params, model.grads)
    for p, q in zip(fitted.model.params, model.params, strict=True):
        np.testing.assert_array_equal(p, q)


def test_a_batch_larger_than_the_context_was_made_for_is_computed_here():
    rng = np.random.default_rng(17)
    x, t = pairs(rng, 12)
    model = Seq2seq(V, D, H, seed=21, dtype=np.float64)
    with data_parallel.batch_halves(model, (6, 5), (6, 5)) as forward_backward:
        loss = forward_backward(x, t)  # 12 rows, made for 6
    grads = [g.copy() for g in model.grads]
    expected_loss, expected = whole_grads(model, x, t)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-14)


def test_an_error_in_a_half_leaves_the_whole_batchs_carried_state(no_helper):
    rng = np.random.default_rng(18)
    (x, t), = lm_batches(rng, 1, V, rows=8)
    model = Rnnlm(V, D, H, seed=22)
    with data_parallel.batch_halves(model, (8, 5), (8, 5)) as forward_backward:
        forward_backward(x, t)
        carried = model.get_state()
        bad = x.copy()
        bad[6, 0] = V  # in the second half
        with pytest.raises(ValueError, match="outside the vocabulary"):
            forward_backward(bad, t)
        for a, b in zip(model.get_state(), carried, strict=True):
            np.testing.assert_array_equal(a, b)  # (8, H), not a half's
        forward_backward(x, t)  # and the run can go on


@needs_processes
def test_a_helper_too_slow_three_batches_in_a_row_rests_and_this_process_goes_on(monkeypatch):
    """Another program has the helper's core: after SLOW_STEPS late batches in
    a row this process computes both halves for REST_SECONDS (the same bits),
    and rests() counts it."""
    import time

    rng = np.random.default_rng(9)
    x, t = pairs(rng, 12)
    model = Seq2seq(V, D, H, seed=4)
    wait = batch_worker.BatchWorker.wait
    posted = []

    def late_wait(self):
        time.sleep(0.05)  # far longer than this process's half of a tiny model
        return wait(self)

    def counting_post(self, *args, **kwargs):
        posted.append(1)
        return post(self, *args, **kwargs)

    post = batch_worker.BatchWorker.post
    monkeypatch.setattr(data_parallel, "SLOW_SECONDS", 0.01)  # (the module's own, 2 ms)
    monkeypatch.setattr(batch_worker.BatchWorker, "wait", late_wait)
    monkeypatch.setattr(batch_worker.BatchWorker, "post", counting_post)
    rests = data_parallel.rests()
    results = []
    with data_parallel.batch_halves(model, x.shape, t.shape) as forward_backward:
        for _ in range(data_parallel.SLOW_STEPS + 2):
            results.append((forward_backward(x, t), [g.copy() for g in model.grads]))
    assert data_parallel.rests() == rests + 1
    assert len(posted) == data_parallel.SLOW_STEPS  # then resting: no helper
    for loss, grads in results[1:]:  # the same batch and weights: the same bits
        assert loss == results[0][0]
        for g, g0 in zip(grads, results[0][1], strict=True):
            np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("model_class", [SimpleRnnlm, Rnnlm, GruRnnlm])
def test_a_language_model_whose_layer_carries_no_state_is_computed_whole(model_class):
    """A layer made ``stateful = False`` (independent windows) has no state to
    hand over, and the helper's replica would carry one: such a model is not
    replicated, and its batches are computed whole, as by hand."""
    rng = np.random.default_rng(21)
    batches = lm_batches(rng, 3, V, rows=12)
    model, by_hand = (model_class(V, D, H, seed=22, dtype=np.float64) for _ in range(2))
    for m in (model, by_hand):
        m._recurrent_layers()[0].stateful = False
    assert "stateful" in batch_worker.why_not_replicable(model)
    assert not data_parallel.splits(model, 12)
    with data_parallel.batch_halves(model, (12, 5), (12, 5)) as forward_backward:
        for x, t in batches:
            loss = forward_backward(x, t)
            assert loss == by_hand.forward(x, t)
            by_hand.backward()
            for g, e in zip(model.grads, by_hand.grads, strict=True):
                np.testing.assert_array_equal(g, e)


def test_fit_trains_a_language_model_whose_layer_carries_no_state_as_the_books_loop():
    rng = np.random.default_rng(23)
    corpus = rng.integers(0, V, 300)
    xs, ts = corpus[:-1], corpus[1:]
    model, by_hand = Rnnlm(V, D, H, seed=24), Rnnlm(V, D, H, seed=24)
    model.lstm.stateful = by_hand.lstm.stateful = False
    RnnlmTrainer(model, Adam(0.01)).fit(xs, ts, max_epoch=1, batch_size=8, time_size=5,
                                        verbose=False)
    optimizer, batches = Adam(0.01), RnnlmTrainer(None, None)
    for _ in range(len(xs) // (8 * 5)):
        x, t = batches.get_batch(xs, ts, 8, 5)
        by_hand.forward(x, t)
        by_hand.backward()
        optimizer.update(by_hand.params, by_hand.grads)
    for p, q in zip(model.params, by_hand.params, strict=True):
        np.testing.assert_array_equal(p, q)


@needs_processes
def test_a_model_too_large_for_shared_memory_leaves_the_helper_to_smaller_ones(monkeypatch):
    # (One model too large disabled the helper for every later model of the process.)
    from common import step_worker

    monkeypatch.setattr(data_parallel, "_disabled", False)  # (restored after)
    sizes = []
    monkeypatch.setattr(step_worker, "fits_shared_memory",
                        lambda n: sizes.append(n) or len(sizes) > 1)  # the first one too large
    posted = []
    original = batch_worker.BatchWorker.post
    monkeypatch.setattr(batch_worker.BatchWorker, "post",
                        lambda self, *a: posted.append(1) or original(self, *a))
    x, t = pairs(np.random.default_rng(16), 8)
    with pytest.warns(RuntimeWarning, match="would not fit in /dev/shm .*both halves of each "
                                            "batch of this model"):
        halves_grads(Seq2seq(V, D, H, seed=0), x, t)
    assert not posted and not data_parallel._disabled
    halves_grads(Seq2seq(V, D, H, seed=1), x, t)
    assert posted
