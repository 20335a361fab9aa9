"""Validation in RnnlmTrainer.fit: per-epoch history, no effect on training,
learning-rate decay, early stopping, restoring the best epoch, the plot."""

import numpy as np
import pytest

import common.trainer as trainer_module
from common.optimizer import SGD, Adam
from common.trainer import RnnlmTrainer
from common.util import eval_perplexity
from models import BetterRnnlm, SimpleRnnlm

V = 12


def noisy_cycle(n, seed):
    """0, 1, ..., 9, 0, 1, ... with 10% of the tokens replaced at random."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n) % 10
    noise = rng.random(n) < 0.1
    ids[noise] = rng.integers(0, V, size=noise.sum())
    return ids.astype(np.int32)


TRAIN = noisy_cycle(800, 0)
VAL = noisy_cycle(200, 1)


def make(kind="simple", seed=0):
    if kind == "better":
        return BetterRnnlm(V, 8, 8, num_layers=2, dropout_ratio=0.5, seed=seed)
    return SimpleRnnlm(V, 8, 8, seed=seed)


def fit(model, optimizer=None, **kwargs):
    trainer = RnnlmTrainer(model, optimizer or SGD(lr=0.5))
    kwargs.setdefault("max_epoch", 2)
    trainer.fit(TRAIN[:-1], TRAIN[1:], batch_size=4, time_size=5, eval_interval=10,
                verbose=False, **kwargs)
    return trainer


def scripted(monkeypatch, values):
    """Replace the trainer's eval_perplexity by a list of values; record the
    parameters it was called with."""
    values = iter(values)
    seen = []

    def fake_eval(model, corpus, batch_size=10, time_size=35):
        seen.append({k: p.copy() for k, p in model.named_params().items()})
        return next(values)

    monkeypatch.setattr(trainer_module, "eval_perplexity", fake_eval)
    return seen


def test_history_has_train_and_val_per_epoch():
    trainer = fit(make(), max_epoch=3, val_corpus=VAL)
    h = trainer.history
    assert h["epoch"] == [1, 2, 3]
    assert len(h["train_ppl"]) == len(h["val_ppl"]) == len(h["lr"]) == 3
    assert all(np.isfinite(h["train_ppl"])) and all(np.isfinite(h["val_ppl"]))
    assert h["val_ppl"][-1] < h["val_ppl"][0] < V  # it learns the cycle
    assert h["lr"] == [0.5, 0.5, 0.5]
    assert trainer.best_val_ppl == min(h["val_ppl"])


def test_without_validation_there_is_no_val_history():
    trainer = fit(make(), max_epoch=2)
    assert trainer.history["val_ppl"] == [] and len(trainer.history["train_ppl"]) == 2
    assert trainer.best_params is None


def test_val_ppl_is_the_models_perplexity_at_that_epoch():
    model = make()
    trainer = fit(model, max_epoch=2, val_corpus=VAL, val_batch_size=3, restore_best=False)
    assert trainer.history["val_ppl"][-1] == eval_perplexity(model, VAL, batch_size=3)


@pytest.mark.parametrize("kind", ["simple", "better"])
def test_validation_does_not_disturb_training(kind):
    """Same seed, same data: with and without validation (no decay, no
    restore) the parameters, losses and carried state agree bit for bit."""
    runs = []
    for val in (None, VAL):
        model = make(kind, seed=3)
        # val_batch_size = batch_size: a state left by validation would not even
        # raise a shape error, only change the numbers
        trainer = fit(model, Adam(lr=0.01), max_epoch=2, val_corpus=val, val_batch_size=4,
                      restore_best=False)
        runs.append((model, trainer))
    (a, ta), (b, tb) = runs
    for (name, p), q in zip(a.named_params().items(), b.named_params().values(), strict=True):
        assert np.array_equal(p, q), name
    assert ta.ppl_list == tb.ppl_list and ta.history["train_ppl"] == tb.history["train_ppl"]
    assert ta.time_idx == tb.time_idx
    for s, t in zip(a.get_state(), b.get_state(), strict=True):
        assert np.array_equal(s, t)
    # validation left the model in training mode (dropout on)
    modes = [layer.train_flg for layer in b.layers if hasattr(layer, "train_flg")]
    assert all(modes) and (kind == "simple" or modes)


def test_lr_decay_when_val_does_not_improve(monkeypatch):
    scripted(monkeypatch, [10.0, 12.0, 9.0, 11.0])
    optimizer = SGD(lr=1.0)
    trainer = fit(make(), optimizer, max_epoch=4, val_corpus=VAL, lr_decay=2.0)
    # history['lr'] is the rate used during each epoch; it is divided after
    # epochs 2 and 4, whose validation perplexity did not beat the best.
    assert trainer.history["lr"] == [1.0, 1.0, 0.5, 0.5]
    assert optimizer.lr == 0.25
    assert trainer.history["val_ppl"] == [10.0, 12.0, 9.0, 11.0]
    assert trainer.best_val_ppl == 9.0


def test_lr_decay_with_real_validation_and_a_huge_learning_rate():
    """A learning rate far too large makes validation worse: the rate is cut."""
    optimizer = SGD(lr=5.0)
    trainer = fit(make(), optimizer, max_epoch=3, val_corpus=VAL, lr_decay=4.0)
    val = trainer.history["val_ppl"]
    worse = [later >= min(val[:i + 1]) for i, later in enumerate(val[1:])]
    assert any(worse)
    assert optimizer.lr == 5.0 / 4.0 ** sum(worse)
    # the rate used in epoch 3 is cut only if epoch 2 was worse
    assert trainer.history["lr"] == [5.0, 5.0, 5.0 / 4.0 ** worse[0]]


def test_no_decay_without_lr_decay(monkeypatch):
    scripted(monkeypatch, [10.0, 12.0, 13.0])
    optimizer = SGD(lr=1.0)
    fit(make(), optimizer, max_epoch=3, val_corpus=VAL)
    assert optimizer.lr == 1.0


def test_early_stopping_with_patience(monkeypatch):
    scripted(monkeypatch, [10.0, 11.0, 12.0] + [1.0] * 10)
    trainer = fit(make(), max_epoch=10, val_corpus=VAL, patience=2)
    assert trainer.history["epoch"] == [1, 2, 3]
    assert trainer.epoch == 3 and trainer.bad_epochs == 2


def test_patience_counts_epochs_since_the_last_improvement(monkeypatch):
    scripted(monkeypatch, [10.0, 11.0, 9.0, 9.5, 8.0, 8.5, 8.2, 1.0, 1.0])
    trainer = fit(make(), max_epoch=9, val_corpus=VAL, patience=2)
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5, 6, 7]


def test_restore_best_puts_back_the_best_epoch(monkeypatch):
    seen = scripted(monkeypatch, [10.0, 5.0, 8.0, 9.0])
    model = make()
    fit(model, max_epoch=4, val_corpus=VAL, restore_best=True)
    assert len(seen) == 4
    assert not np.array_equal(seen[1]["rnn.Wh"], seen[3]["rnn.Wh"])
    for name, p in model.named_params().items():
        assert np.array_equal(p, seen[1][name]), name


def test_restore_best_off_keeps_the_last_epoch(monkeypatch):
    seen = scripted(monkeypatch, [10.0, 5.0, 8.0, 9.0])
    model = make()
    fit(model, max_epoch=4, val_corpus=VAL, restore_best=False)
    for name, p in model.named_params().items():
        assert np.array_equal(p, seen[3][name]), name


def test_best_params_are_copies(monkeypatch):
    scripted(monkeypatch, [5.0, 8.0])
    model = make()
    trainer = fit(model, max_epoch=2, val_corpus=VAL, restore_best=False)
    best = trainer.best_params
    assert all(b is not p for b, p in zip(best.values(), model.named_params().values(),
                                          strict=True))
    assert not np.array_equal(best["rnn.Wh"], model.named_params()["rnn.Wh"])


def test_plot_with_validation_writes_a_png(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    figures = []
    savefig = Figure.savefig

    def spy(self, *args, **kwargs):
        figures.append(self)
        return savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    optimizer = SGD(lr=0.5)
    trainer = fit(make(), optimizer, max_epoch=3, val_corpus=VAL, lr_halve_from=3)
    path = tmp_path / "out" / "ppl.png"
    assert trainer.plot(path=str(path)) is figures[-1]
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    (ax,) = figures[-1].axes
    labels = [line.get_label() for line in ax.get_lines()]
    best = trainer.best_epoch
    assert labels[:3] == ["train", "validation",
                          f"best validation: epoch {best} ({trainer.best_val_ppl:.2f})"]
    val_line = ax.get_lines()[1]
    assert list(val_line.get_ydata()) == trainer.history["val_ppl"]
    assert list(val_line.get_xdata()) == [e * trainer.iters_per_epoch for e in (1, 2, 3)]
    assert ax.get_yscale() == "log"  # the gap between curves stays visible
    assert ax.get_title() == "SimpleRnnlm (vocab_size=12, wordvec_size=8, hidden_size=8)"
    # the learning rate halved before epoch 3: a marked line there
    assert [text.get_text() for text in ax.texts] == ["lr 0.25"]
    # epoch boundaries
    xs = {line.get_xdata()[0] for line in ax.get_lines()[3:]}
    assert {trainer.iters_per_epoch, 2 * trainer.iters_per_epoch} <= xs
