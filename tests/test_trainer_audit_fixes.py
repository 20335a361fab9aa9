"""What fit promises at its edges: it never replaces another run's file, a
stop asked for at the very end is honoured, a resumed or repeated fit goes
on exactly, and what would fail only after training started is refused
before it. Each test is an example of the API."""

import math
import os
import signal

import numpy as np
import pytest

from common.checkpoint import read_checkpoint
from common.optimizer import SGD, Adam
from common.trainer import RnnlmTrainer, Trainer, TrainingDiverged, TrainingInterrupted
from layers import TimeAffine, TimeEmbedding, TimeSoftmaxWithLoss
from models import LanguageModel, SimpleRnnlm

V = 30
FIT = dict(batch_size=4, time_size=5, verbose=False)  # 600 ids: 29 iterations an epoch


def ids(n, seed=0, high=V):
    return np.random.default_rng(seed).integers(0, high, size=n)


def same_params(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.params, b.params, strict=True))


# -- 1. a checkpoint of another run is never replaced ----------------------------------------


def test_fit_refuses_to_replace_a_file_it_did_not_write(tmp_path):
    c = ids(600)
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes\n")
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.1))
    with pytest.raises(FileExistsError, match=r"checkpoint .*notes.npz exists already \(an "
                                              r"earlier run\?\): continue it with "
                                              r"trainer.resume\('.*notes.npz'\), give another "
                                              r"path, or delete the file"):
        trainer.fit(c[:-1], c[1:], max_epoch=1, checkpoint=notes, **FIT)
    assert notes.read_text() == "my notes\n" and trainer.optimizer.t == 0


def test_a_trainer_rewrites_the_checkpoint_it_wrote_or_resumed_from(tmp_path):
    c = ids(600)
    path = tmp_path / "ck.npz"
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.1))
    for _ in range(2):  # the book's loop of one-epoch calls
        trainer.fit(c[:-1], c[1:], max_epoch=1, checkpoint=path, **FIT)
    resumed = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=1), SGD(0.1)).resume(path)
    resumed.fit(c[:-1], c[1:], max_epoch=1, checkpoint=path, **FIT)
    assert read_checkpoint(path)[1]["trainer"]["epoch"] == 3


# -- 2. Ctrl-C or SIGTERM at the very end of a call --------------------------------------------


class SignalAt(SimpleRnnlm):
    """Sends this process ``sig`` in its forward call number ``at``."""

    at, sig = None, signal.SIGINT

    def forward(self, xs, ts):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.sig)
        return super().forward(xs, ts)


@pytest.mark.parametrize("sig, validating", [(signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["ctrl-c-in-the-last-iteration", "sigterm-in-the-last-validation"])
def test_a_signal_at_the_end_of_a_call_stops_after_it(sig, validating, tmp_path):
    c, path = ids(600), tmp_path / "ck.npz"
    fit = dict(FIT, max_epoch=2, val_corpus=ids(200, seed=1) if validating else None)
    last = RnnlmTrainer(SignalAt(V, 8, 8, seed=0), SGD(0.1)).fit(c[:-1], c[1:], **fit).model.calls
    model = SignalAt(V, 8, 8, seed=0)
    model.at, model.sig = last, sig  # the last forward of the call
    handler = signal.getsignal(sig)
    with pytest.raises(TrainingInterrupted) as info:
        RnnlmTrainer(model, SGD(0.1)).fit(c[:-1], c[1:], checkpoint=path, **fit)
    what = "interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"
    assert str(info.value) == (f"{what} after epoch 2, the end of this fit call; resume with "
                               f"trainer.resume({str(path)!r})")
    assert read_checkpoint(path)[1]["trainer"]["epoch"] == 2
    assert signal.getsignal(sig) is handler


# -- 3. on_nan='skip' resumes exactly ---------------------------------------------------------


class NanOn29(SimpleRnnlm):
    """A NaN loss for every batch that reads id 29."""

    def forward(self, xs, ts):
        loss = super().forward(xs, ts)
        return math.nan if (np.asarray(xs) == 29).any() else loss


def test_a_resumed_run_counts_the_batches_skipped_in_a_row_before_the_stop(tmp_path):
    c = ids(601, high=29)
    c[10:70] = 29  # lane 0 reads these in iterations 3 to 14: 12 bad batches in a row
    fit = dict(FIT, max_epoch=1, on_nan="skip")
    path = tmp_path / "ck.npz"
    with pytest.raises(TrainingDiverged, match="iteration 12 .10 batches in a row"):
        RnnlmTrainer(NanOn29(V, 8, 8, seed=0), SGD(0.1)).fit(c[:-1], c[1:], **fit)
    RnnlmTrainer(NanOn29(V, 8, 8, seed=0), SGD(0.1)).fit(c[:-1], c[1:], max_iters=8,
                                                          checkpoint=path, **fit)
    resumed = RnnlmTrainer(NanOn29(V, 8, 8, seed=0), SGD(0.1)).resume(path)
    with pytest.raises(TrainingDiverged, match="iteration 12 .10 batches in a row"):
        resumed.fit(c[:-1], c[1:], **fit)


def test_a_trainer_state_from_before_the_skips_in_a_row_were_kept_loads_with_none_skipped():
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.1))
    state = trainer.state_dict()
    del state["skipped_in_a_row"]  # as written by an older rnnlab
    trainer.load_state_dict(state)
    assert trainer._skipped_in_a_row == 0


# -- 4. restore_best and loops of one-epoch calls ---------------------------------------------


def adam_run():
    return RnnlmTrainer(SimpleRnnlm(V, 16, 16, seed=0), Adam(0.05))


BEST_FIRST = dict(batch_size=4, time_size=5, verbose=False, val_corpus=ids(300, seed=1))


def test_one_epoch_calls_train_as_one_call_though_each_restores_the_best(tmp_path):
    c, path = ids(1200), tmp_path / "ck.npz"
    straight = adam_run().fit(c[:-1], c[1:], max_epoch=4, **BEST_FIRST)
    assert straight.best_epoch == 1  # so every later call ends by going back to epoch 1
    looped = adam_run()
    for _ in range(2):
        looped.fit(c[:-1], c[1:], max_epoch=1, checkpoint=path, **BEST_FIRST)
    resumed = adam_run().resume(path)  # ... and across a checkpoint
    for _ in range(2):
        resumed.fit(c[:-1], c[1:], max_epoch=1, checkpoint=path, **BEST_FIRST)
    assert resumed.history == straight.history
    assert same_params(resumed.model, straight.model)  # the best epoch's, both
    for name, p in straight.last_params.items():
        assert np.array_equal(p, resumed.last_params[name]), name


def test_parameters_set_between_calls_are_trained_on_not_the_last_ones():
    c = ids(1200)
    trainer = adam_run().fit(c[:-1], c[1:], max_epoch=2, **BEST_FIRST)  # best: epoch 1
    chosen = {k: p + 0.5 for k, p in trainer.model.named_params().items()}
    trainer.model.set_named_params(chosen)
    trainer.optimizer.lr = 0.0  # an epoch that changes nothing: it shows where it began
    trainer.fit(c[:-1], c[1:], max_epoch=1, restore_best=False, **BEST_FIRST)
    for name, p in trainer.model.named_params().items():
        assert np.array_equal(p, chosen[name]), name


# -- 5. what fit needs of the model and the optimizer, checked first --------------------------


class NoNames(SimpleRnnlm):
    named_params = None  # as the book's hand-written models


@pytest.mark.parametrize("option", [dict(val_corpus=ids(100)), dict(checkpoint="ck.npz")])
def test_a_model_without_named_params_is_refused_before_training(option, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = ids(600)
    trainer = RnnlmTrainer(NoNames(V, 8, 8, seed=0), SGD(0.1))
    with pytest.raises(TypeError, match=r"NoNames has no named_params\(\): .* Build the model "
                                        r"on models.base.Model"):
        trainer.fit(c[:-1], c[1:], max_epoch=1, **option, **FIT)
    assert trainer.optimizer.t == 0 and not os.path.exists("ck.npz")


class UpdateOnly:
    """An optimizer of one's own, as the book's interface has it: no ``lr``."""

    def update(self, params, grads):
        for p, g in zip(params, grads, strict=True):
            p -= 0.1 * g


def test_an_optimizer_without_lr_trains_but_not_with_an_lr_schedule():
    c = ids(600)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), UpdateOnly())
    trainer.fit(c[:-1], c[1:], max_epoch=2, **FIT)
    assert trainer.epoch == 2 and trainer.history["lr"] == []
    with pytest.raises(TypeError, match="UpdateOnly has no lr: lr_halve_from changes the "
                                        "learning rate"):
        trainer.fit(c[:-1], c[1:], max_epoch=1, lr_halve_from=2, **FIT)
    assert trainer.epoch == 2


class Tagger(LanguageModel):
    """A target id for every input id; it checks no pairs of its own."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.config = {"V": 12, "D": 8}
        self.layers = [TimeEmbedding((rng.standard_normal((12, 8)) * 0.1).astype(np.float32)),
                       TimeAffine((rng.standard_normal((8, 12)) * 0.1).astype(np.float32),
                                  np.zeros(12, np.float32))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "affine.W", "affine.b"])


def test_val_data_shaped_unlike_the_training_rows_is_refused_before_training():
    x = ids((96, 4), high=12)
    t = (x + 1) % 12
    trainer = Trainer(Tagger(), Adam(0.05))
    with pytest.raises(ValueError, match=r"val_data's rows must be shaped as the training "
                                         r"rows: x's are \(4,\) and t's \(4,\), but x_val's "
                                         r"are \(4,\) and t_val's \(2,\)"):
        trainer.fit(x, t, max_epoch=1, batch_size=16, verbose=False,
                    val_data=(x[:10], t[:10, :2]))
    assert trainer.optimizer.t == 0


# -- 6. models without a vocabulary ---------------------------------------------------------


class LinearRegression:
    """``x @ W + b`` against float targets, mean squared error: no vocabulary."""

    def __init__(self):
        self.params = [np.zeros((2, 1), np.float32), np.zeros(1, np.float32)]
        self.grads = [np.zeros_like(p) for p in self.params]

    def forward(self, x, t):
        W, b = self.params
        self.x, self.d = x, x @ W + b - t
        return float((self.d ** 2).mean())

    def backward(self, dout=1):
        self.grads[0][...] = 2 * self.x.T @ self.d / len(self.x)
        self.grads[1][...] = 2 * self.d.mean(axis=0)


def regression_data():
    x = np.random.default_rng(0).standard_normal((300, 2)).astype(np.float32)
    return x, x @ np.array([[3.0], [4.0]], np.float32) + 100  # a first loss of about 1e4


def test_a_regression_model_is_held_to_no_vocabulary_loss_bound():
    x, t = regression_data()
    trainer = Trainer(LinearRegression(), SGD(0.01))
    trainer.fit(x, t, max_epoch=2, batch_size=30, eval_interval=5, verbose=False)
    assert trainer.epoch == 2 and trainer.loss_list[-1] < trainer.loss_list[0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_float_inputs_is_refused_before_training(bad):
    x, t = regression_data()
    x[5, 0] = bad
    with pytest.raises(ValueError, match=r"x holds NaN or infinite values \(the first at "
                                         r"index \(5, 0\)"):
        Trainer(LinearRegression(), SGD(0.01)).fit(x, t, max_epoch=1, batch_size=30,
                                                   verbose=False)


# -- 7. targets the loss ignores ----------------------------------------------------------------


def test_batches_with_no_scored_target_are_left_out_of_the_mean():
    c = ids(401)
    ts = c[1:].copy()
    ts[200:] = -1  # the second half is padding: 40 of the 80 batches score nothing
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.0))  # lr 0: the model is fixed
    trainer.fit(c[:-1], ts, max_epoch=1, batch_size=1, time_size=5, verbose=False)
    model = SimpleRnnlm(V, 8, 8, seed=0)
    losses = [model.forward(c[None, i:i + 5], ts[None, i:i + 5]) for i in range(0, 200, 5)]
    assert trainer.history["train_ppl"] == [pytest.approx(math.exp(np.mean(losses)))]


def test_targets_that_are_all_ignored_are_refused():
    c = ids(401)
    with pytest.raises(ValueError, match="every target in ts is the loss's ignore_label -1: "
                                         "there is nothing to learn from"):
        RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.1)).fit(
            c[:-1], np.full(400, -1), max_epoch=1, **FIT)


# -- 12. output paths -----------------------------------------------------------------------


@pytest.mark.parametrize("paths, message", [
    (dict(checkpoint="run.png", plot_path="run.png"), "checkpoint and plot_path are one file"),
    (dict(checkpoint="run.pkl"), "run.pkl: rnnlab never writes .or reads. pickles"),
])
def test_a_checkpoint_over_the_plot_or_of_a_pickles_name_is_refused(paths, message, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = ids(600)
    with pytest.raises(ValueError, match=message):
        RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.1)).fit(c[:-1], c[1:], max_epoch=1,
                                                                 **paths, **FIT)
    assert os.listdir(tmp_path) == []


# -- the plot draws each figure where it was recorded ----------------------------------------


def test_the_plot_puts_figures_and_epochs_where_they_were_whatever_each_fit_used(tmp_path):
    c = ids(600)
    xs, ts = c[:-1], c[1:]
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.1))
    trainer.fit(xs, ts, 1, 4, 5, eval_interval=10, verbose=False)  # 29 iterations
    trainer.model.reset_state()  # (another batch size: another carried state)
    trainer.fit(xs, ts, 1, 2, 5, eval_interval=20, verbose=False)  # 59 more (599 // 10)
    # Each figure where it was recorded: at 10 and 20 in the first call, then at
    # every 20th iteration of the whole run, the 40th, 60th and 80th. (The plot
    # drew them at 20, 40, ..., 100: every eval_interval of the last call; and
    # the points were once counted by the last call's epoch length, 59.)
    assert trainer.figure_iterations == [10, 20, 40, 60, 80]
    assert trainer.epoch_iterations == [29, 88]
    ax = trainer.plot(path=tmp_path / "p.png").axes[0]
    train_line = next(line for line in ax.get_lines() if line.get_label() == "train")
    np.testing.assert_array_equal(train_line.get_xdata(), [10, 20, 40, 60, 80])
    epoch_lines = [line.get_xdata()[0] for line in ax.get_lines() if line.get_label()[0] == "_"]
    assert 29 in epoch_lines  # the first epoch's end, not 59 (the second call's epoch)

    # A resumed trainer draws the same.
    path = tmp_path / "ck.npz"
    trainer.fit(xs, ts, 1, 2, 5, eval_interval=20, verbose=False, checkpoint=path)
    resumed = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=1), SGD(0.1)).resume(path)
    assert resumed.figure_iterations == trainer.figure_iterations
    assert resumed.epoch_iterations == trainer.epoch_iterations == [29, 88, 147]
    assert resumed.iterations_run == 147


# -- calls that validate and calls that do not (a probe of fit's options) --------------------


def test_a_call_that_validates_nothing_keeps_what_it_trained():
    """The best parameters are those of the best validated epoch; a call
    without val_corpus scored none of its epochs, so it keeps them (it put
    back an earlier call's best, throwing its own training away)."""
    c, val = ids(601), ids(200, seed=1)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0))
    trainer.fit(c[:-1], c[1:], max_epoch=1, val_corpus=val, **FIT)
    after_one = [p.copy() for p in trainer.model.params]
    trainer.fit(c[:-1], c[1:], max_epoch=2, **FIT)
    assert not any(np.array_equal(p, q) for p, q in zip(trainer.model.params, after_one,
                                                        strict=True))


def test_validation_figures_stay_aligned_with_the_epochs_they_score(tmp_path):
    """Once an epoch is validated, every epoch has an entry, NaN for those
    not validated: history['val_ppl'][e - 1] is epoch e's, and the plot puts
    it there."""
    c, val = ids(601), ids(200, seed=1)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0))
    trainer.fit(c[:-1], c[1:], max_epoch=2, **FIT)
    assert trainer.history["val_ppl"] == []
    trainer.fit(c[:-1], c[1:], max_epoch=1, val_corpus=val, **FIT)
    trainer.fit(c[:-1], c[1:], max_epoch=1, **FIT)
    val_ppl = trainer.history["val_ppl"]
    assert trainer.history["epoch"] == [1, 2, 3, 4] and len(val_ppl) == 4
    assert math.isnan(val_ppl[0]) and math.isnan(val_ppl[1]) and math.isnan(val_ppl[3])
    assert val_ppl[2] == trainer.best_val_ppl and trainer.best_epoch == 3
    figure = trainer.plot(path=tmp_path / "p.png")
    line = next(line for line in figure.axes[0].lines if line.get_label() == "validation")
    assert list(line.get_xdata()) == trainer.epoch_iterations


def test_an_epoch_whose_every_batch_was_skipped_has_no_training_figure():
    class NanRnnlm(SimpleRnnlm):
        def forward(self, xs, ts):
            super().forward(xs, ts)
            return float("nan")

    c = ids(101)
    trainer = RnnlmTrainer(NanRnnlm(V, 8, 8, seed=0), SGD(1.0))
    trainer.fit(c[:-1], c[1:], max_epoch=1, on_nan="skip", **FIT)
    assert trainer.skipped_batches == 5
    assert math.isnan(trainer.history["train_ppl"][0])  # (it said 1.00, a perfect model)


def test_trainers_validation_loss_is_the_mean_over_scored_targets_whatever_its_chunks():
    from models import Rnnlm

    rng = np.random.default_rng(3)
    x, t = rng.integers(0, V, (64, 7)), rng.integers(0, V, (64, 7))
    x_val, t_val = rng.integers(0, V, (20, 7)), rng.integers(0, V, (20, 7))
    for i in range(20):
        t_val[i, 1 + i % 6:] = -1  # rows of different lengths
    losses = []
    for val_batch_size in (1, 3, 20):
        trainer = Trainer(Rnnlm(V, 8, 8, seed=0), SGD(1.0))
        trainer.fit(x, t, max_epoch=1, batch_size=8, verbose=False, val_data=(x_val, t_val),
                    val_batch_size=val_batch_size)
        losses.append(trainer.history["val_loss"][0])
    assert losses[0] == pytest.approx(losses[2], rel=1e-6)
    assert losses[1] == pytest.approx(losses[2], rel=1e-6)


def test_a_stop_before_the_first_iteration_with_a_plot_path_is_an_interruption(tmp_path):
    from common.training_guards import DeferredTerminate

    c = ids(601)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0))
    with DeferredTerminate(), pytest.raises(TrainingInterrupted):
        os.kill(os.getpid(), signal.SIGTERM)
        trainer.fit(c[:-1], c[1:], max_epoch=1, checkpoint=tmp_path / "ck.npz",
                    plot_path=tmp_path / "p.png", **FIT)
    assert (tmp_path / "ck.npz").is_file()


@pytest.mark.parametrize("paths, error, message", [
    (dict(checkpoint=""), ValueError, "checkpoint is empty"),
    (dict(plot_path=""), ValueError, "plot_path is empty"),
    (dict(checkpoint=123), TypeError, "checkpoint must be a path"),
])
def test_an_empty_or_non_path_output_is_refused_in_words(paths, error, message):
    c = ids(601)
    with pytest.raises(error, match=message):
        RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0)).fit(c[:-1], c[1:], max_epoch=1,
                                                                 **paths, **FIT)


def test_rnnlm_trainer_refuses_a_seed_it_would_not_use():
    c = ids(601)
    with pytest.raises(ValueError, match="RnnlmTrainer draws nothing"):
        RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0)).fit(c[:-1], c[1:], max_epoch=1,
                                                                 seed=123, **FIT)


def test_a_run_stopped_early_trains_no_more_in_a_loop_of_calls():
    """One fit(max_epoch=8, patience=1) and eight fit(max_epoch=1, patience=1)
    train the same epochs: once stopped, a call with that patience trains nothing."""
    c, val = ids(601), ids(200, seed=1)
    options = dict(val_corpus=val, patience=1, lr_decay=2.0, **FIT)
    once = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(5.0))
    once.fit(c[:-1], c[1:], max_epoch=8, **options)
    assert once.epoch < 8  # it stopped early
    looped = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(5.0))
    for _ in range(8):
        looped.fit(c[:-1], c[1:], max_epoch=1, **options)
    assert looped.history == once.history and same_params(looped.model, once.model)


def test_max_iters_counts_the_iterations_run_whatever_the_batch_sizes():
    """A call with another batch_size (which fit allows) counted the epochs
    done at its own size: 20 iterations of 4 lanes became 40 of 2."""
    c = ids(401)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0))
    trainer.fit(c[:-1], c[1:], max_epoch=1, batch_size=4, time_size=5, verbose=False)
    assert trainer.iterations_run == 20
    trainer.model.reset_state()
    trainer.fit(c[:-1], c[1:], max_epoch=1, batch_size=2, time_size=5, verbose=False,
                max_iters=30)
    assert trainer.iterations_run == 30


def mixed_validation_run(**extra):
    """Two epochs without validation, then three with it."""
    c, val = ids(601), ids(200, seed=1)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0))
    trainer.fit(c[:-1], c[1:], max_epoch=2, **FIT, **extra)
    trainer.fit(c[:-1], c[1:], max_epoch=3, val_corpus=val, **FIT, **extra)
    return trainer


def test_epochs_without_validation_are_null_in_a_checkpoint_and_nan_again_after(tmp_path):
    trainer = mixed_validation_run(checkpoint=tmp_path / "ck.npz")
    saved = read_checkpoint(tmp_path / "ck.npz")[1]["trainer"]["history"]["val_ppl"]
    assert saved[:2] == [None, None] and None not in saved[2:]  # (strict JSON: no NaN)
    resumed = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0)).resume(tmp_path / "ck.npz")
    assert resumed.history == trainer.history  # (NaN and all)


def test_an_older_checkpoints_validation_history_is_placed_at_its_epochs():
    """Before, only the validated epochs were listed: they are placed by the
    best epoch, whose figure the list holds."""
    trainer = mixed_validation_run()
    state = trainer.state_dict()
    state["history"]["val_ppl"] = [v for v in state["history"]["val_ppl"] if v is not None]
    older = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(1.0))
    older.load_state_dict(state)
    assert older.history == trainer.history


def test_a_stopped_run_still_writes_the_checkpoint_a_call_asks_for(tmp_path):
    c, val = ids(601), ids(200, seed=1)
    options = dict(val_corpus=val, patience=1, **FIT)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(5.0))
    trainer.fit(c[:-1], c[1:], max_epoch=8, **options)
    epoch = trainer.epoch
    trainer.fit(c[:-1], c[1:], max_epoch=1, checkpoint=tmp_path / "later.npz", **options)
    assert trainer.epoch == epoch
    assert read_checkpoint(tmp_path / "later.npz")[1]["trainer"]["epoch"] == epoch


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_trainer_trains_on_as_the_original(how):
    """A copy separates the output layer's W and b from the joint block its
    forward read (copied views are arrays of their own): it then read the
    frozen block while the optimizer stepped W, silently. Now the copy
    computes x @ W + b with them: the same within round-off."""
    import copy
    import pickle

    from models import Seq2seq

    rng = np.random.default_rng(4)
    x, t = rng.integers(0, 13, (64, 5)), rng.integers(0, 13, (64, 4))
    original = Trainer(Seq2seq(13, 4, 8, seed=0), Adam(0.05))
    original.fit(x, t, max_epoch=1, batch_size=16, verbose=False)
    copied = copy.deepcopy(original) if how == "deepcopy" else pickle.loads(
        pickle.dumps(original))
    for trainer in (original, copied):
        trainer.fit(x, t, max_epoch=2, batch_size=16, verbose=False)
    assert copied.history["train_loss"] == pytest.approx(original.history["train_loss"],
                                                         rel=1e-5)
    for p, q in zip(copied.model.params, original.model.params, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6)


def test_validation_data_with_nothing_to_score_is_refused_before_training():
    from models import Seq2seq

    rng = np.random.default_rng(5)
    x, t = rng.integers(0, 5, (32, 3)), rng.integers(0, 5, (32, 2))
    t_val = np.full((8, 2), -1)
    t_val[:, 0] = 1  # the decoder's start: every scored target ignored
    trainer = Trainer(Seq2seq(5, 4, 8, seed=0), Adam(0.05))
    with pytest.raises(ValueError, match="every target of val_data is the loss's "
                                         "ignore_label -1: there is nothing to score"):
        trainer.fit(x, t, max_epoch=1, batch_size=8, verbose=False,
                    val_data=(x[:8], t_val))
    assert trainer.iterations_run == 0


# -- an infinite loss, rows that are separate examples, a learning rate gone bad -------------


def test_an_infinite_loss_is_divergence_for_a_model_of_no_vocabulary():
    # (inf <= an infinite bound: the batch was trained on, and the running
    # sums, inf, made every later checkpoint one that resume refuses.)
    x, t = regression_data()
    t[5, 0] = 3e19  # a far outlier: in float32 the loss of the batch that holds it is inf
    trainer = Trainer(LinearRegression(), SGD(0.01))
    with np.errstate(over="ignore"):
        trainer.fit(x, t, max_epoch=1, batch_size=30, on_nan="skip", verbose=False)
        assert trainer.skipped_batches == 1 and all(map(math.isfinite, trainer.loss_list))
        with pytest.raises(TrainingDiverged, match="the loss became inf"):
            Trainer(LinearRegression(), SGD(0.01)).fit(x, t, max_epoch=1, batch_size=30,
                                                       verbose=False)


def test_trainer_starts_every_batch_of_a_stateful_model_from_zeros():
    """Rows are separate examples, shuffled: a stateful language model given
    rows carried one batch's state into the next (validation did not)."""
    from models import Rnnlm

    rng = np.random.default_rng(0)
    x, t = rng.integers(0, V, (64, 8)), rng.integers(0, V, (64, 8))
    trainer = Trainer(Rnnlm(V, 8, 8, seed=0), SGD(0.0))  # lr 0: the same weights throughout
    trainer.fit(x, t, max_epoch=1, batch_size=16, eval_interval=1, verbose=False)
    fresh = Rnnlm(V, 8, 8, seed=0)
    order = np.random.default_rng(0).permutation(64)  # the rows as fit(seed=0) shuffles them
    expected = []
    for b in range(4):
        fresh.reset_state()
        rows = order[16 * b: 16 * (b + 1)]
        expected.append(fresh.forward(x[rows], t[rows]))
    np.testing.assert_allclose(trainer.loss_list, expected, rtol=1e-6)


def test_a_learning_rate_gone_bad_writes_no_checkpoint(tmp_path):
    class DriftingSGD(SGD):
        """An optimizer whose own rule makes lr NaN after its 58th step."""

        def update(self, params, grads):
            super().update(params, grads)
            if self.t == 58:  # the last step of the second epoch
                self.lr = float("nan")

    c, path = ids(600), tmp_path / "ck.npz"
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), DriftingSGD(0.1))
    with pytest.raises(ValueError, match=r"the optimizer's lr became nan after epoch 2.*"
                                         r"checkpoint was not written; the last good"):
        trainer.fit(c[:-1], c[1:], max_epoch=3, checkpoint=path, **FIT)
    resumed = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), DriftingSGD(0.1)).resume(path)
    assert resumed.epoch == 1 and resumed.optimizer.lr == 0.1


def test_a_trainer_without_an_optimizer_or_a_model_says_so_before_training():
    # (The book's RnnlmTrainer(None, None) reads batches with get_batch; fit
    # with it failed at the first update, with an AttributeError on None.)
    from models import Seq2seq

    x, t = np.zeros((8, 4), int), np.zeros((8, 3), int)
    with pytest.raises(TypeError, match=r"no optimizer to train with \(optimizer is None\)"):
        Trainer(Seq2seq(5, 3, 4), None).fit(x, t, max_epoch=1, batch_size=4, verbose=False)
    with pytest.raises(TypeError, match=r"no model to train \(model is None\).*"
                                        r"Trainer\(Seq2seq\(vocab_size"):
        Trainer(None, SGD(0.1)).fit(x, t, max_epoch=1, batch_size=4, verbose=False)

    class MyTrainer(Trainer.__mro__[1]):  # a trainer of one's own on BaseTrainer
        figure = "loss"

    with pytest.raises(TypeError, match=r"no model to train.*MyTrainer\(your_model"):
        MyTrainer(None, SGD(0.1))._check_before_training(None)


def test_rows_of_several_lengths_are_refused_in_rnnlabs_words():
    from models import Seq2seq

    with pytest.raises(ValueError, match="x must be an array, one row per example, every row "
                                         "of one length"):
        Trainer(Seq2seq(5, 3, 4), SGD(0.1)).fit([[1, 2], [1]], [[1, 2], [1, 2]], batch_size=1,
                                                verbose=False)


def test_a_pairs_run_stopped_mid_epoch_goes_on_only_with_its_batch_size(tmp_path):
    # (40 and 39 rows a batch both give 300 rows 7 iterations: the rest of the
    # epoch read overlapping batches, or skipped rows, without a word.)
    from models import Seq2seq

    x, t = regression_data()
    trainer = Trainer(LinearRegression(), SGD(0.01))
    trainer.fit(x, t, max_epoch=1, batch_size=40, max_iters=3, verbose=False)
    with pytest.raises(ValueError, match=r"middle of an epoch of batches of 40 rows: resume "
                                         r"it with batch_size=40"):
        trainer.fit(x, t, max_epoch=1, batch_size=39, verbose=False)
    trainer.fit(x, t, max_epoch=1, batch_size=40, verbose=False)
    assert trainer.epoch == 1

    rng, path = np.random.default_rng(0), tmp_path / "ck.npz"  # the same through a checkpoint
    q, a = rng.integers(0, 9, (300, 4)), rng.integers(0, 9, (300, 3))
    Trainer(Seq2seq(9, 4, 4, seed=0), SGD(0.1)).fit(q, a, max_epoch=1, batch_size=40,
                                                   max_iters=3, checkpoint=path, verbose=False)
    resumed = Trainer(Seq2seq(9, 4, 4, seed=0), SGD(0.1)).resume(path)
    with pytest.raises(ValueError, match=r"resume it with batch_size=40"):
        resumed.fit(q, a, max_epoch=1, batch_size=39, verbose=False)
