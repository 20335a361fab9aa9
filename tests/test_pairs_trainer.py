"""Trainer: the textbook's trainer of (input, target) pairs, on the same loop
as RnnlmTrainer: seeded shuffled mini-batches of rows, loss_list, plot,
exact resume, divergence and Ctrl-C handled the same way."""

import os
import signal

import numpy as np
import pytest

from common.feeders import ShuffledRows
from common.optimizer import SGD, Adam
from common.trainer import Trainer, TrainingDiverged, TrainingInterrupted
from layers import TimeAffine, TimeEmbedding, TimeSoftmaxWithLoss
from models import LanguageModel

V, D, N, T = 12, 8, 96, 4


class Tagger(LanguageModel):
    """Predicts a target id for every input id (no recurrence): the smallest
    model with forward(x, t) -> loss, backward(), params and grads."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.config = {"V": V, "D": D}
        self.layers = [
            TimeEmbedding((rng.standard_normal((V, D)) * 0.1).astype(np.float32)),
            TimeAffine((rng.standard_normal((D, V)) * 0.1).astype(np.float32),
                       np.zeros(V, np.float32)),
        ]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "affine.W", "affine.b"])


def pairs(n=N, seed=0):
    """Inputs (n, T) and their targets (x + 1) mod V."""
    x = np.random.default_rng(seed).integers(0, V, size=(n, T)).astype(np.int32)
    return x, (x + 1) % V


FIT = dict(max_epoch=3, batch_size=16, eval_interval=4, verbose=False)


def test_the_textbook_call_trains_and_records_the_loss():
    x, t = pairs()
    trainer = Trainer(Tagger(), Adam(0.05))
    trainer.fit(x, t, max_epoch=5, batch_size=16, max_grad=5.0, eval_interval=3, verbose=False)
    # 96 // 16 = 6 iterations an epoch, 30 in all: a mean loss every 3.
    assert len(trainer.loss_list) == 10
    assert trainer.loss_list[-1] < trainer.loss_list[0] / 4
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5] and len(trainer.history["train_loss"]) == 5


def test_the_validation_loss_is_the_mean_over_its_rows_whatever_the_batches():
    # 7 rows in batches of 3, 3 and 1: each batch's mean counts by its rows.
    x, t = pairs()
    x_val, t_val = pairs(7, seed=1)
    trainer = Trainer(Tagger(), Adam(0.05))
    trainer.fit(x, t, val_data=(x_val, t_val), val_batch_size=3, restore_best=False, **FIT)
    whole = float(trainer.model.forward(x_val, t_val))  # all 7 rows at once
    assert trainer.history["val_loss"][-1] == pytest.approx(whole, rel=1e-6)


def test_batches_are_rows_in_a_new_seeded_order_every_epoch():
    x, t = pairs()
    feeder = ShuffledRows(x, t, batch_size=16, seed=3)

    class At:
        epoch, iteration = 0, 0

    at = At()
    seen = []
    for at.iteration in range(6):
        bx, bt = feeder.next_batch(at)
        np.testing.assert_array_equal(bt, (bx + 1) % V)  # rows stay paired
        seen.append(bx)
    order = np.random.default_rng([3, 0]).permutation(N)
    np.testing.assert_array_equal(np.concatenate(seen), x[order])  # every row once
    at.epoch, at.iteration = 1, 0
    assert not np.array_equal(feeder.next_batch(at)[0], seen[0])  # another order


def test_same_seed_same_run_other_seed_other_run():
    x, t = pairs()

    def run(seed):
        trainer = Trainer(Tagger(), SGD(0.5)).fit(x, t, seed=seed, **FIT)
        return trainer.model.params, trainer.loss_list

    (a, la), (b, lb), (_, lc) = run(1), run(1), run(2)
    assert la == lb and all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert la != lc


@pytest.mark.parametrize("k", [5, 6, 13], ids=["mid-epoch", "epoch-end", "third-epoch"])
def test_stop_and_resume_is_bit_identical(k, tmp_path):
    x, t = pairs()
    val = pairs(32, seed=1)
    path = tmp_path / "ck.npz"
    fit = dict(FIT, val_data=val, seed=4)
    straight = Trainer(Tagger(), Adam(0.02)).fit(x, t, **fit)
    Trainer(Tagger(), Adam(0.02)).fit(x, t, max_iters=k, checkpoint=path, **fit)
    resumed = Trainer(Tagger(seed=9), Adam(0.02)).resume(path).fit(x, t, checkpoint=path, **fit)
    for p, q in zip(straight.model.params, resumed.model.params, strict=True):
        assert np.array_equal(p, q)
    assert straight.loss_list == resumed.loss_list
    assert straight.history == resumed.history and len(straight.history["val_loss"]) == 3
    with pytest.raises(ValueError, match="started with seed=4"):
        Trainer(Tagger(), Adam(0.02)).resume(path).fit(x, t, **dict(fit, max_epoch=4, seed=5))


def test_a_checkpoint_of_the_other_trainer_is_refused(tmp_path):
    from common.trainer import RnnlmTrainer

    x, t = pairs()
    path = tmp_path / "ck.npz"
    Trainer(Tagger(), SGD(0.5)).fit(x, t, max_iters=2, checkpoint=path, **FIT)
    with pytest.raises(ValueError, match="was written by Trainer, not RnnlmTrainer"):
        RnnlmTrainer(Tagger(), SGD(0.5)).resume(path)


def test_a_diverging_run_raises_training_diverged():
    x, t = pairs()
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="epoch 1, iteration"):
        Trainer(Tagger(), SGD(1e30)).fit(x, t, **FIT)


def test_ctrl_c_stops_at_an_iteration_boundary_with_a_checkpoint(tmp_path):
    class CtrlC(Tagger):
        def forward(self, xs, ts):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 8:
                os.kill(os.getpid(), signal.SIGINT)
            return super().forward(xs, ts)

    x, t = pairs()
    path = tmp_path / "ck.npz"
    with pytest.raises(TrainingInterrupted, match=r"interrupted at epoch 2, iteration 2; "
                                                  r"resume with trainer\.resume\("):
        Trainer(CtrlC(), SGD(0.5)).fit(x, t, checkpoint=path, **FIT)
    assert Trainer(CtrlC(), SGD(0.5)).resume(path).iteration == 2


def test_plot_returns_the_figure_of_the_loss(tmp_path):
    from matplotlib.figure import Figure

    x, t = pairs()
    trainer = Trainer(Tagger(), SGD(0.5)).fit(x, t, val_data=pairs(32, 1), **FIT)
    fig = trainer.plot(path=tmp_path / "loss.svg")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "loss" and ax.get_yscale() == "log"
    assert (tmp_path / "loss.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(batch_size=200), "fewer than one batch of batch_size = 200"),
    (dict(val_corpus=np.arange(5)), "Trainer validates on val_data"),
])
def test_fit_checks_its_arguments(kwargs, message):
    x, t = pairs()
    with pytest.raises(ValueError, match=message):
        Trainer(Tagger(), SGD(0.5)).fit(x, t, **{**FIT, **kwargs})


@pytest.mark.parametrize("where, message", [
    ("x", r"^x holds the id 13, outside the vocabulary range \[0, 13\)"),
    ("t", r"^t holds the id -2, outside the vocabulary range \[0, 13\)"),
    ("val_x", r"^val_data's x holds the id 13"),
])
def test_an_id_outside_the_vocabulary_is_refused_before_the_first_batch(where, message):
    """The bad id sits in the last row, which no early batch would reach."""
    from models import Seq2seq

    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 13, (64, 5)), rng.integers(0, 13, (64, 3))
    t[:5, -1] = -1  # the loss's ignore label is allowed in the targets
    x_val, t_val = x[:8].copy(), t[:8].copy()
    {"x": x, "t": t, "val_x": x_val}[where][-1, -1] = -2 if where == "t" else 13
    trainer = Trainer(Seq2seq(13, 4, 5, seed=0), SGD(0.1))
    with pytest.raises(ValueError, match=message):
        trainer.fit(x, t, max_epoch=1, batch_size=16, verbose=False, val_data=(x_val, t_val))
    assert trainer.iteration == 0 and trainer.loss_list == []
    x[-1, -1] = t[-1, -1] = x_val[-1, -1] = 0
    trainer.fit(x, t, max_epoch=1, batch_size=16, verbose=False, val_data=(x_val, t_val))
    assert trainer.epoch == 1


@pytest.mark.parametrize("where, error, message", [
    ("t", ValueError, r"^x and t do not fit Seq2seq.forward\(xs, ts\): ts\[:, :-1\] \(the "
                      r"decoder's input\) holds the id -1"),
    ("val_x float", TypeError, r"^val_data \(x_val, t_val\) do not fit Seq2seq.forward\(xs, "
                               r"ts\): xs must hold integer word ids, got dtype float64"),
    ("val_t one column", ValueError, r"^val_data \(x_val, t_val\) do not fit .*: ts needs at "
                                     r"least 2 columns"),
    ("val_x 1-D", ValueError, r"^val_data .*: xs must have shape \(N, T_enc\)"),
])
def test_pairs_a_sequence_to_sequence_model_cannot_take_are_refused_at_the_call(
        where, error, message):
    """The model's own check (``check_pairs``) on the whole data sets: the
    decoder's input may not hold the loss's ignore label, and validation
    pairs must be what forward takes, before any weight changes."""
    from models import Seq2seq

    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 13, (64, 5)), rng.integers(0, 13, (64, 3))
    x_val, t_val = x[:8].copy(), t[:8].copy()
    if where == "t":
        t[-1, 1] = -1  # the last row's decoder input: no early batch would reach it
    elif where == "val_x float":
        x_val = x_val.astype(float)
    elif where == "val_t one column":
        t_val = t_val[:, :1]
    else:
        x_val = x_val[:, 0]
    model = Seq2seq(13, 4, 5, seed=0)
    before = [p.copy() for p in model.params]
    trainer = Trainer(model, SGD(0.1))
    with pytest.raises(error, match=message):
        trainer.fit(x, t, max_epoch=1, batch_size=16, verbose=False, val_data=(x_val, t_val))
    assert trainer.iteration == 0 and trainer.epoch == 0
    assert all(np.array_equal(p, q) for p, q in zip(model.params, before, strict=True))
