"""RnnlmTrainer: lanes of truncated BPTT, carried state, perplexity."""

import math
import os

import numpy as np
import pytest

from common.optimizer import SGD, Adam
from common.trainer import RnnlmTrainer
from common.util import clip_grads, eval_perplexity
from datasets import synthetic
from models import BetterRnnlm, SimpleRnnlm


def test_get_batch_reads_lanes_and_wraps_across_epochs():
    xs = np.arange(10)
    ts = xs + 100
    trainer = RnnlmTrainer(model=None, optimizer=None)
    # Two lanes start at 0 and at 10 // 2 = 5; each batch reads the next 3.
    bx, bt = trainer.get_batch(xs, ts, batch_size=2, time_size=3)
    np.testing.assert_array_equal(bx, [[0, 1, 2], [5, 6, 7]])
    np.testing.assert_array_equal(bt, bx + 100)
    # The second lane runs off the end and wraps to the start.
    bx, _ = trainer.get_batch(xs, ts, batch_size=2, time_size=3)
    np.testing.assert_array_equal(bx, [[3, 4, 5], [8, 9, 0]])
    # An "epoch" of this corpus is 10 // (2 * 3) = 1 iteration, so this batch
    # belongs to the next epoch and continues where the last one stopped.
    bx, _ = trainer.get_batch(xs, ts, batch_size=2, time_size=3)
    np.testing.assert_array_equal(bx, [[6, 7, 8], [1, 2, 3]])
    assert trainer.time_idx == 9


class RecordingRnnlm(SimpleRnnlm):
    """Remembers the hidden state each batch starts from and ends with."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.starts, self.ends = [], []

    def forward(self, xs, ts):
        self.starts.append(None if self.rnn.h is None else self.rnn.h.copy())
        loss = super().forward(xs, ts)
        self.ends.append(self.rnn.h.copy())
        return loss


def test_hidden_state_carries_across_batches_during_fit():
    corpus = np.random.default_rng(0).integers(0, 30, size=401)
    model = RecordingRnnlm(30, 8, 8, seed=0)
    RnnlmTrainer(model, SGD(0.1)).fit(corpus[:-1], corpus[1:], max_epoch=2, batch_size=4,
                                      time_size=10, verbose=False)
    assert len(model.starts) == 2 * (400 // 40)
    assert model.starts[0] is None  # the very first batch starts from zeros
    for start, previous_end in zip(model.starts[1:], model.ends[:-1], strict=True):
        np.testing.assert_array_equal(start, previous_end)  # across epochs too


def test_eval_perplexity_resets_state_and_counts_every_token():
    corpus = np.random.default_rng(1).integers(0, 20, size=100)
    model = SimpleRnnlm(20, 8, 8, seed=1)
    # One lane read in chunks of 7 equals one forward over the whole sequence.
    model.reset_state()
    whole = math.exp(model.forward(corpus[None, :-1], corpus[None, 1:]))
    assert eval_perplexity(model, corpus, batch_size=1, time_size=7) == pytest.approx(whole,
                                                                                      rel=1e-5)
    # Whatever state the model carries, evaluation starts from zeros.
    lanes = eval_perplexity(model, corpus, batch_size=3, time_size=5)
    model.rnn.set_state(np.ones((3, 8), np.float32))
    assert eval_perplexity(model, corpus, batch_size=3, time_size=5) == lanes


def test_eval_perplexity_gives_the_carried_state_back():
    corpus = np.random.default_rng(2).integers(0, 20, size=200)
    model = SimpleRnnlm(20, 8, 8, seed=2)
    trainer = RnnlmTrainer(model, SGD(0.5))
    options = dict(max_epoch=1, batch_size=4, time_size=5, verbose=False)
    trainer.fit(corpus[:-1], corpus[1:], max_iters=3, **options)
    carried = model.rnn.h.copy()
    eval_perplexity(model, corpus, batch_size=10)  # another batch size inside
    np.testing.assert_array_equal(model.rnn.h, carried)
    # So training goes on where it stopped, with its batch of 4.
    trainer.fit(corpus[:-1], corpus[1:], max_iters=6, **options)
    assert trainer.iteration == 6


def test_each_fit_call_trains_max_epoch_more_and_a_stopped_call_goes_on_to_its_end():
    """The book's rule, with resuming: every call trains max_epoch more epochs;
    a call stopped before its end (here by max_iters) is continued by the next
    call to the end it had."""
    corpus = np.random.default_rng(3).integers(0, 20, size=201)  # 200 // (4 * 5) = 10 an epoch
    trainer = RnnlmTrainer(SimpleRnnlm(20, 8, 8, seed=3), SGD(0.5))
    options = dict(batch_size=4, time_size=5, verbose=False)
    for _ in range(2):  # the book's loop: one epoch a call
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, **options)
    assert trainer.history["epoch"] == [1, 2] and trainer.fit_start_epoch is None

    trainer.fit(corpus[:-1], corpus[1:], max_epoch=3, max_iters=33, **options)
    assert (trainer.epoch, trainer.iteration, trainer.fit_start_epoch) == (3, 3, 2)
    assert trainer.epochs_to_reach(5) == 3 and trainer.epochs_to_reach(1) == 0
    assert trainer.epochs_to_reach(3) == 0  # 3 epochs done: past a run of 3, mid-epoch 4
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=3, **options)  # to epoch 2 + 3, not 3 + 3
    assert (trainer.epoch, trainer.iteration, trainer.fit_start_epoch) == (5, 0, None)
    assert trainer.epochs_to_reach(7) == 2 and trainer.epochs_to_reach(4) == 0
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, **options)
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5, 6]


def test_eval_perplexity_carries_the_state_along_each_lane_whatever_the_layers_are_set_to():
    """A lane is read in order, as ``token_surprisal`` and generation read a
    text: a model whose layers start every batch afresh (``stateful =
    False``) is scored as the same model carrying its state, not once per
    ``time_size`` window."""
    from models import Rnnlm

    ids = np.random.default_rng(9).integers(0, 9, size=80)
    model = Rnnlm(9, 6, 6, seed=0, init_scale=1.0, dtype=np.float64)
    carried = eval_perplexity(model, ids, batch_size=2)
    model.lstm.stateful = False
    assert eval_perplexity(model, ids, batch_size=2) == carried
    assert eval_perplexity(model, ids, batch_size=2, time_size=1000) == pytest.approx(
        carried, rel=1e-12)
    assert model.lstm.stateful is False  # as it was


def test_eval_perplexity_evaluates_inside_model_evaluating():
    class Spy(BetterRnnlm):
        def evaluating(self):
            self.entered = getattr(self, "entered", 0) + 1
            return super().evaluating()

    corpus = np.random.default_rng(4).integers(0, 20, size=120)
    model = Spy(20, 8, 8, 0.5, seed=4).train()
    ppl = eval_perplexity(model, corpus, batch_size=3)
    assert model.entered == 1
    assert all(layer.train_flg for layer in model.drop_layers)  # training mode given back
    assert eval_perplexity(model.eval(), corpus, batch_size=3) == ppl  # dropout was off


class HandMade:
    """A model object of one's own, without models.base.Model's evaluating(),
    eval() or train(): layers, loss_layer, forward, reset_state, get/set_state."""

    def __init__(self, inner):
        self.inner, self.layers, self.loss_layer = inner, inner.layers, inner.loss_layer

    def forward(self, xs, ts):
        return self.inner.forward(xs, ts)

    def reset_state(self):
        self.inner.reset_state()

    def get_state(self):
        return self.inner.get_state()

    def set_state(self, state):
        self.inner.set_state(state)


def test_eval_perplexity_of_a_model_without_evaluating_does_the_same_by_hand():
    corpus = np.random.default_rng(5).integers(0, 20, size=120)
    inner = BetterRnnlm(20, 8, 8, 0.5, seed=5)
    expected = eval_perplexity(inner, corpus, batch_size=3)
    inner.train()
    inner.forward(corpus[None, :10], corpus[None, 1:11])  # carries a state of batch 1
    carried = inner.get_state()
    assert eval_perplexity(HandMade(inner), corpus, batch_size=3) == expected  # dropout off
    assert all(layer.train_flg for layer in inner.drop_layers)
    for h, g in zip(inner.get_state(), carried, strict=True):
        np.testing.assert_array_equal(h, g)


def test_untrained_model_is_near_uniform_and_training_lowers_perplexity():
    corpus, word_to_id, _ = synthetic.load_data("train", n_tokens=3000)
    V = len(word_to_id)
    model = SimpleRnnlm(V, 16, 16, seed=0)
    assert eval_perplexity(model, corpus) == pytest.approx(V, rel=0.05)
    trainer = RnnlmTrainer(model, SGD(1.0))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=3, batch_size=10, time_size=10,
                eval_interval=5, verbose=False)
    assert trainer.ppl_list[-1] < trainer.ppl_list[0] / 2
    assert len(trainer.history["train_ppl"]) == 3


def test_clip_grads_scales_to_the_global_norm():
    grads = [np.full((2, 2), 3.0, np.float32), np.full(2, 4.0, np.float32)]
    norm = clip_grads(grads, max_norm=1.0)
    assert norm == pytest.approx(math.sqrt(4 * 9 + 2 * 16))
    assert math.sqrt(sum((g**2).sum() for g in grads)) == pytest.approx(1.0, rel=1e-5)
    assert grads[0].dtype == np.float32
    small = [np.ones(3, np.float32)]
    clip_grads(small, max_norm=10.0)
    np.testing.assert_array_equal(small[0], 1.0)  # under the limit: unchanged


@pytest.mark.parametrize("clip", [dict(max_grad=0.05), dict(clip_value=0.01)])
def test_a_tied_array_is_clipped_by_the_sum_of_its_gradients_as_in_the_books_loop(clip):
    """The book's loop sums a tied array's gradients (its ``remove_duplicate``)
    before clipping, so the norm is of the sum, as PyTorch's is of its one
    parameter; the values clipped are the sum's too."""
    from common.optimizer import Adam
    from common.util import clip_grads_value

    corpus = np.random.default_rng(8).integers(0, 30, size=401)
    xs, ts = corpus[:-1], corpus[1:]
    fitted = BetterRnnlm(30, 8, 8, 0.5, seed=4)  # D == H: tied
    assert fitted.params[0] is fitted.params[-2]
    RnnlmTrainer(fitted, Adam(0.01)).fit(xs, ts, max_epoch=2, batch_size=4, time_size=10,
                                         verbose=False, **clip)

    model, optimizer = BetterRnnlm(30, 8, 8, 0.5, seed=4), Adam(0.01)
    batches = RnnlmTrainer(None, None)  # for get_batch
    for _ in range(2 * (400 // 40)):
        model.forward(*batches.get_batch(xs, ts, 4, 10))
        model.backward()
        params, grads, place = [], [], {}
        for p, g in zip(model.params, model.grads, strict=True):  # each array once
            if id(p) in place:
                grads[place[id(p)]] += g
            else:
                place[id(p)] = len(params)
                params.append(p)
                grads.append(g.copy())
        if "max_grad" in clip:
            clip_grads(grads, clip["max_grad"])
        else:
            clip_grads_value(grads, clip["clip_value"])
        optimizer.update(params, grads)
    for p, q in zip(fitted.params, model.params, strict=True):
        np.testing.assert_array_equal(p, q)


def test_merge_tied_grads_sums_in_place_into_the_first_place_and_takes_a_tuple():
    from common.util import merge_tied_grads

    W, b = np.ones((2, 3)), np.ones(3)
    grads = (np.full((2, 3), 1.0), np.full(3, 5.0), np.full((2, 3), 2.0))
    merge_tied_grads([W, b, W], grads)
    np.testing.assert_array_equal(grads[0], 3.0)
    np.testing.assert_array_equal(grads[1], 5.0)  # untied: as it was
    np.testing.assert_array_equal(grads[2], 0.0)


@pytest.mark.parametrize("optimizer", [SGD(1.0), Adam(1.0)])
def test_one_gradient_array_listed_twice_counts_once_everywhere(optimizer):
    # A layer listed twice lists its W and its dW twice: one array, one gradient.
    # merge_tied_grads left it (untested), clip_grads counted it once, and the
    # optimizers stepped by 2 dW.
    from common.util import merge_tied_grads

    W, b = np.ones((2, 3)), np.ones(3)
    dW, db = np.full((2, 3), 2.0), np.full(3, 5.0)
    merge_tied_grads([W, b, W], [dW, db, dW])
    np.testing.assert_array_equal(dW, 2.0)
    np.testing.assert_array_equal(db, 5.0)
    once, W_once = type(optimizer)(lr=1.0), np.ones((2, 3))
    optimizer.update([W, b, W], [dW, db, dW])
    once.update([W_once], [dW])
    np.testing.assert_array_equal(W, W_once)


def test_fit_rejects_a_corpus_smaller_than_one_batch():
    model = SimpleRnnlm(10, 4, 4, seed=0)
    with pytest.raises(ValueError, match="fewer than one batch"):
        RnnlmTrainer(model, SGD(0.1)).fit(np.arange(9), np.arange(1, 10), batch_size=2,
                                          time_size=5, verbose=False)


def test_same_seed_same_run_bit_for_bit():
    corpus = synthetic.load_data("train", n_tokens=2000)[0]

    def run():
        model = SimpleRnnlm(400, 8, 8, seed=5)
        RnnlmTrainer(model, SGD(0.5)).fit(corpus[:-1], corpus[1:], max_epoch=2, batch_size=5,
                                          time_size=7, verbose=False)
        return model.params

    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_plot_returns_the_figure_and_writes_the_format_of_the_suffix(tmp_path):
    from matplotlib.figure import Figure

    corpus = synthetic.load_data("train", n_tokens=2000)[0]
    trainer = RnnlmTrainer(SimpleRnnlm(400, 8, 8, seed=0), SGD(0.5))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=5, time_size=5,
                eval_interval=10, verbose=False)
    fig = trainer.plot(path=tmp_path / "ppl.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "ppl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trainer.plot(path=tmp_path / "ppl.pdf")
    assert (tmp_path / "ppl.pdf").read_bytes()[:5] == b"%PDF-"
    trainer.plot(path=tmp_path / "ppl.svg")
    assert b"<svg" in (tmp_path / "ppl.svg").read_bytes()[:2000]
    with pytest.raises(ValueError, match="cannot tell the plot format from .*ppl.txt"):
        trainer.plot(path=tmp_path / "ppl.txt")


def test_plot_in_a_notebook_returns_the_figure_and_writes_nothing(tmp_path, monkeypatch):
    import matplotlib

    corpus = synthetic.load_data("train", n_tokens=2000)[0]
    trainer = RnnlmTrainer(SimpleRnnlm(400, 8, 8, seed=0), SGD(0.5))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=5, time_size=5,
                verbose=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(matplotlib, "get_backend",
                        lambda: "module://matplotlib_inline.backend_inline")
    fig = trainer.plot()
    assert fig.axes and os.listdir(tmp_path) == []  # Jupyter shows the returned Figure


def test_plot_with_the_books_ylim_from_zero_keeps_the_log_axis(tmp_path):
    import warnings

    corpus = synthetic.load_data("train", n_tokens=2000)[0]
    trainer = RnnlmTrainer(SimpleRnnlm(400, 8, 8, seed=0), SGD(0.5))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=5, time_size=5,
                eval_interval=10, verbose=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (ax,) = trainer.plot(ylim=(0, 500), path=tmp_path / "p.png").axes
    assert ax.get_yscale() == "log" and ax.get_ylim()[1] == 500 and ax.get_ylim()[0] > 0
    # rnnlab's own warning that the 0 is ignored (as the README says), not matplotlib's.
    assert [str(w.message) for w in caught] == [
        "ylim: the lower limit 0 cannot be shown on a log axis and is ignored; pass "
        "logy=False for the book's linear axis"]
    (ax,) = trainer.plot(ylim=(0, 500), path=tmp_path / "p.png", logy=False).axes
    assert ax.get_ylim() == (0, 500)
    (ax,) = trainer.plot(ylim=300, path=tmp_path / "p.png", logy=False).axes  # a top alone
    assert ax.get_ylim()[1] == 300
    # A file name where the book's ylim goes is a mistake that says what to write.
    with pytest.raises(TypeError, match=r"pass it as path: trainer.plot\(path='ppl.png'\)"):
        trainer.plot("ppl.png")
    with pytest.raises(TypeError, match="a pair"):
        trainer.plot(ylim=(0, 100, 200), path=tmp_path / "p.png")


def test_plot_before_fit_says_there_is_nothing_to_plot(tmp_path):
    trainer = RnnlmTrainer(SimpleRnnlm(10, 4, 4, seed=0), SGD(0.1))
    with pytest.raises(ValueError, match=r"nothing to plot yet: call fit\(\) first"):
        trainer.plot(path=tmp_path / "ppl.png")
    assert not (tmp_path / "ppl.png").exists()


def test_a_run_shorter_than_eval_interval_plots_a_note_instead_of_empty_axes(tmp_path):
    corpus = synthetic.load_data("train")[0][:200]
    trainer = RnnlmTrainer(SimpleRnnlm(int(corpus.max()) + 1, 4, 4, seed=0), SGD(0.1))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=4, time_size=5,
                eval_interval=20, max_iters=5, verbose=False)  # stopped in epoch 1
    assert trainer.ppl_list == [] and trainer.iteration == 5 and trainer.epoch == 0
    fig = trainer.plot(path=tmp_path / "ppl.png")
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert notes == ["no training perplexity recorded yet:\nfit() records it every "
                     "eval_interval = 20 iterations"]
    assert (tmp_path / "ppl.png").stat().st_size > 0


def test_eval_interval_none_records_nothing_as_in_the_book(tmp_path):
    # (The book's trainers take None; it was refused: "must be an integer >= 1".)
    corpus = synthetic.load_data("train")[0][:400]
    trainer = RnnlmTrainer(SimpleRnnlm(int(corpus.max()) + 1, 4, 4, seed=0), SGD(0.1))
    trainer.fit(corpus[:-1], corpus[1:], 2, 4, 5, None, eval_interval=None, verbose=False,
                checkpoint=tmp_path / "ck.npz")
    assert trainer.ppl_list == [] and trainer.eval_interval is None
    assert trainer.current_epoch == trainer.epoch == 2  # (the book's name too)
    assert len(trainer.history["train_ppl"]) == 2  # each epoch's figure, as always
    resumed = RnnlmTrainer(SimpleRnnlm(int(corpus.max()) + 1, 4, 4, seed=1), SGD(0.1))
    resumed.resume(tmp_path / "ck.npz")
    assert resumed.eval_interval is None and resumed.epoch == 2
    fig = trainer.plot(path=tmp_path / "ppl.png")  # each epoch's figure, none between
    assert "train (epoch means)" in [line.get_label() for line in fig.axes[0].get_lines()]
    trainer.ppl_list[:], trainer.history["train_ppl"][:] = [], []  # as if stopped in epoch 1
    fig = trainer.plot(path=tmp_path / "ppl.png")
    assert [t.get_text() for t in fig.axes[0].texts] == [
        "no training perplexity recorded yet:\nfit() records it only with an eval_interval "
        "(None: never)"]


def test_a_checkpoint_from_before_best_epoch_was_kept_takes_it_from_the_history():
    # (The fallback for older checkpoints was untested: an off-by-one survived.)
    import copy

    corpus = synthetic.load_data("train")[0][:400]
    V = int(corpus.max()) + 1
    trainer = RnnlmTrainer(SimpleRnnlm(V, 4, 4, seed=0), SGD(0.1))
    trainer.fit(corpus[:-1], corpus[1:], 3, 4, 5, val_corpus=corpus[:100], verbose=False)
    state = copy.deepcopy(trainer.state_dict())
    del state["best_epoch"]  # as an older rnnlab wrote it
    state["history"]["val_ppl"] = [30.0, 20.0, 25.0]
    older = RnnlmTrainer(SimpleRnnlm(V, 4, 4, seed=0), SGD(0.1))
    older.load_state_dict(state)
    assert older.best_epoch == 2 and older.history["val_ppl"] == [30.0, 20.0, 25.0]


def test_fit_checks_val_corpus_before_the_first_epoch():
    corpus = np.arange(200) % 10
    trainer = RnnlmTrainer(SimpleRnnlm(10, 4, 4, seed=0), SGD(0.1))
    with pytest.raises(ValueError, match=r"val_corpus holds the id 49, outside the "
                                         r"vocabulary range \[0, 10\) of the model"):
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=2, time_size=5,
                    val_corpus=np.arange(50), verbose=False)
    with pytest.raises(ValueError, match="val_corpus must be a 1-D array of at least 2 integer"):
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=2, time_size=5,
                    val_corpus=np.zeros(20), verbose=False)
    assert trainer.iteration == 0 and trainer.epoch == 0  # nothing was trained


def test_rnnlm_trainer_refuses_a_sequence_to_sequence_model():
    from models import Seq2seq

    corpus = np.arange(200) % 10
    trainer = RnnlmTrainer(Seq2seq(10, 4, 4), SGD(0.1))
    with pytest.raises(TypeError, match=r"train it with Trainer\(model, optimizer\)"):
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=2, time_size=5,
                    verbose=False)
