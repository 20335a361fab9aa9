"""Checkpoints: a run stopped and resumed in a fresh process is bit-identical
to a run that never stopped; checkpoints are atomic; a diverging run keeps
its last good checkpoint."""

import glob
import json
import math
import os
import zipfile

import numpy as np
import pytest

from common import training_guards
from common.checkpoint import read_checkpoint, save_checkpoint
from common.optimizer import SGD, Adam, Momentum
from common.serialization import atomic_write, load_npz, save_npz
from common.trainer import RnnlmTrainer, TrainingDiverged, divergence_bound
from models import BetterRnnlm, Rnnlm, SimpleRnnlm

V, D, H = 60, 16, 16
BATCH, TIME = 4, 5


@pytest.fixture(scope="module")
def corpus():
    """1,001 ids: 1,000 positions, so an epoch is 1000 // (4 * 5) = 50 iterations."""
    ids = np.random.default_rng(7).integers(0, V, size=1001).astype(np.int32)
    return ids[:-1], ids[1:]


@pytest.fixture(scope="module")
def val_corpus():
    return np.random.default_rng(8).integers(0, V, size=300).astype(np.int32)


MAKERS = {
    "simple-sgd": lambda seed: RnnlmTrainer(SimpleRnnlm(V, D, H, seed=seed), SGD(lr=0.5)),
    "simple-adam": lambda seed: RnnlmTrainer(SimpleRnnlm(V, D, H, seed=seed), Adam(lr=0.01)),
    "lstm-momentum": lambda seed: RnnlmTrainer(Rnnlm(V, D, H, seed=seed), Momentum(lr=0.5)),
    "better-dropout-adam": lambda seed: RnnlmTrainer(
        BetterRnnlm(V, D, H, num_layers=2, dropout_ratio=0.3, seed=seed), Adam(lr=0.01)
    ),
}

FIT = dict(batch_size=BATCH, time_size=TIME, eval_interval=7, verbose=False)


def assert_same_run(a, b):
    """Parameters bit for bit, and every history."""
    assert a.model.param_names == b.model.param_names
    for name, p, q in zip(a.model.param_names, a.model.params, b.model.params, strict=True):
        assert np.array_equal(p, q), name
    assert a.ppl_list == b.ppl_list
    assert a.history == b.history
    assert (a.epoch, a.iteration, a.time_idx) == (b.epoch, b.iteration, b.time_idx)
    assert a.optimizer.state_dict().keys() == b.optimizer.state_dict().keys()
    for key, value in a.optimizer.state_dict().items():
        assert np.array_equal(value, b.optimizer.state_dict()[key]), key
    for h, g in zip(a.model.get_state(), b.model.get_state(), strict=True):
        assert np.array_equal(h, g)


@pytest.mark.parametrize("kind", sorted(MAKERS))
@pytest.mark.parametrize("k", [20, 35], ids=["mid-epoch", "across-epoch-boundary"])
def test_stop_and_resume_is_bit_identical(kind, k, corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"

    straight = MAKERS[kind](seed=1).fit(xs, ts, max_epoch=5, max_iters=2 * k, **FIT)

    first = MAKERS[kind](seed=1).fit(xs, ts, max_epoch=5, max_iters=k, checkpoint=path, **FIT)
    assert first.epoch * 50 + first.iteration == k
    # A fresh model (another seed, so other weights and dropout generators),
    # a fresh optimizer and a fresh trainer: everything comes from the file.
    resumed = MAKERS[kind](seed=2).resume(path)
    assert resumed.model.get_state()[0] is not None  # the hidden state came back too
    resumed.fit(xs, ts, max_epoch=5, max_iters=2 * k, checkpoint=path, **FIT)

    assert straight.epoch * 50 + straight.iteration == 2 * k
    assert_same_run(straight, resumed)


def test_the_training_time_goes_on_from_a_checkpoint_written_mid_epoch(corpus, tmp_path):
    """``train_seconds`` and ``train_cpu_seconds`` count the whole run: the
    checkpoint holds the time up to the iteration it was written at, and a
    resumed run adds its own."""
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    first = MAKERS["simple-adam"](seed=1)
    assert (first.train_seconds, first.train_cpu_seconds) == (0.0, 0.0)
    first.fit(xs, ts, max_epoch=2, max_iters=20, checkpoint=path, **FIT)  # 20 of 50
    kept = read_checkpoint(path)[1]["trainer"]
    assert 0 < kept["train_seconds"] <= first.train_seconds
    assert 0 < kept["train_cpu_seconds"] <= first.train_cpu_seconds
    resumed = MAKERS["simple-adam"](seed=2).resume(path)
    assert (resumed.train_seconds, resumed.train_cpu_seconds) == (
        kept["train_seconds"], kept["train_cpu_seconds"])
    resumed.fit(xs, ts, max_epoch=2, **FIT)
    assert resumed.epoch == 2 and resumed.train_seconds > kept["train_seconds"]
    assert resumed.train_cpu_seconds > kept["train_cpu_seconds"]


@pytest.mark.parametrize("k", [30, 50, 77], ids=["mid-epoch", "at-epoch-end", "second-epoch"])
def test_resume_with_dropout_validation_best_params_and_lr_decay(k, corpus, val_corpus, tmp_path):
    """Every epoch ends with a validation; restore_best puts back the best
    epoch's weights at the end. Dropout masks come from generators whose
    state the checkpoint carries."""
    xs, ts = corpus
    make = MAKERS["better-dropout-adam"]
    path = tmp_path / "ck.npz"
    fit = dict(FIT, max_epoch=3, val_corpus=val_corpus, lr_decay=2.0, restore_best=True)

    straight = make(seed=1).fit(xs, ts, **fit)

    make(seed=1).fit(xs, ts, max_iters=k, checkpoint=path, **fit)
    resumed = make(seed=3).resume(path)
    resumed.fit(xs, ts, checkpoint=path, **fit)

    assert len(straight.history["val_ppl"]) == 3
    assert_same_run(straight, resumed)
    assert straight.best_val_ppl == resumed.best_val_ppl
    assert straight.best_params.keys() == resumed.best_params.keys()
    for name, p in straight.best_params.items():
        assert np.array_equal(p, resumed.best_params[name]), name


def test_dropout_generators_are_restored(corpus, tmp_path):
    """Without its generators' state the resumed run would draw other masks."""
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = MAKERS["better-dropout-adam"](seed=1)
    trainer.fit(xs, ts, max_epoch=1, max_iters=10, checkpoint=path, **FIT)
    fresh = MAKERS["better-dropout-adam"](seed=5)
    rngs = [layer.rng for layer in trainer.model.layers if hasattr(layer, "rng")]
    fresh_rngs = [layer.rng for layer in fresh.model.layers if hasattr(layer, "rng")]
    assert rngs and [g.random() for g in _copies(rngs)] != [g.random() for g in
                                                            _copies(fresh_rngs)]
    fresh.resume(path)
    assert [g.random() for g in _copies(rngs)] == [g.random() for g in _copies(fresh_rngs)]


def _copies(rngs):
    out = []
    for g in rngs:
        c = np.random.Generator(type(g.bit_generator)())
        c.bit_generator.state = g.bit_generator.state
        out.append(c)
    return out


def test_checkpoint_file_layout(corpus, tmp_path):
    """One .npz, no pickles: arrays by name, JSON metadata with the trainer state."""
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = MAKERS["simple-adam"](seed=1)
    trainer.fit(xs, ts, max_epoch=2, max_iters=12, checkpoint=path, **FIT)

    with np.load(path, allow_pickle=False) as data:
        names = set(data.files)
        meta = json.loads(str(data["__meta__"]))
    assert {f"model/{n}" for n in trainer.model.param_names} <= names
    assert {"optim/m.0", "optim/v.0", "state/0"} <= names
    assert meta["format"] == "rnnlab-checkpoint"
    assert meta["model"] == "SimpleRnnlm" and meta["config"] == trainer.model.config
    assert meta["optimizer"] == "Adam"
    assert meta["optimizer_scalars"]["lr"] == 0.01 and meta["optimizer_scalars"]["t"] == 12
    state = meta["trainer"]
    assert (state["epoch"], state["iteration"], state["time_idx"]) == (0, 12, 12 * TIME)
    assert state["ppl_list"] == trainer.ppl_list
    arrays, meta2 = read_checkpoint(path)
    assert meta2 == meta
    assert arrays["state/0"].shape == (BATCH, H)


def test_checkpoint_every_n_iterations_and_no_temp_files(corpus, tmp_path, monkeypatch):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    seen = []

    def spy(p, trainer):
        save_checkpoint(p, trainer)
        seen.append(read_checkpoint(p)[1]["trainer"]["iteration"])

    monkeypatch.setattr(training_guards, "save_checkpoint", spy)
    RnnlmTrainer(SimpleRnnlm(V, D, H, seed=1), SGD(0.1)).fit(
        xs, ts, max_epoch=1, checkpoint=path, checkpoint_every=15, **FIT)
    # Every 15 iterations, then the end of the epoch (50 iterations) and of fit.
    assert seen == [15, 30, 45, 0]
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_default_checkpoint_is_written_every_epoch(corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = MAKERS["simple-sgd"](seed=1)
    trainer.fit(xs, ts, max_epoch=1, checkpoint=path, **FIT)
    assert read_checkpoint(path)[1]["trainer"]["epoch"] == 1


def test_a_finished_run_resumed_trains_max_epoch_more_epochs_as_in_the_book(corpus, tmp_path):
    """A checkpoint written at the end of a finished fit call holds no unfinished
    call: fit(max_epoch=2) after resume() trains two more epochs, exactly as the
    same trainer's second call would; max_epoch=0 (or epochs_to_reach(2), the
    total the run already has) trains nothing."""
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    straight = MAKERS["simple-sgd"](seed=1).fit(xs, ts, max_epoch=4, **FIT)
    done = MAKERS["simple-sgd"](seed=1).fit(xs, ts, max_epoch=2, checkpoint=path, **FIT)
    assert read_checkpoint(path)[1]["trainer"]["fit_start_epoch"] is None

    again = MAKERS["simple-sgd"](seed=4).resume(path)
    assert again.epochs_to_reach(2) == 0 and again.epochs_to_reach(3) == 1
    again.fit(xs, ts, max_epoch=again.epochs_to_reach(2), **FIT)
    again.fit(xs, ts, max_epoch=0, **FIT)
    assert_same_run(done, again)

    again.fit(xs, ts, max_epoch=2, **FIT)
    assert again.epoch == 4 and again.history["epoch"] == [1, 2, 3, 4]
    assert_same_run(straight, again)


@pytest.mark.parametrize("name", ["Seq2seq", "PeekySeq2seq", "AttentionSeq2seq"])
def test_sequence_to_sequence_models_stop_and_resume_bit_for_bit(name, tmp_path):
    """Trainer with models that are not language models: parameters checked by
    the model's own check_params, best parameters kept across the stop."""
    from common.trainer import Trainer
    from models import MODEL_CLASSES

    rng = np.random.default_rng(5)
    x, t = rng.integers(0, 12, size=(96, 6)), rng.integers(0, 12, size=(96, 4))
    val = (x[:20], t[:20])

    def make(seed):
        return Trainer(MODEL_CLASSES[name](12, 6, 8, seed=seed), Adam(0.01))

    path = tmp_path / "ck.npz"
    fit = dict(max_epoch=3, batch_size=16, eval_interval=4, verbose=False, val_data=val)
    straight = make(seed=1).fit(x, t, **fit)
    make(seed=1).fit(x, t, max_iters=8, checkpoint=path, **fit)  # 6 an epoch: in epoch 2
    assert read_checkpoint(path)[0].keys() >= {f"best/{k}" for k in
                                               straight.model.named_params()}
    resumed = make(seed=2).resume(path).fit(x, t, **fit)
    assert resumed.history == straight.history and resumed.loss_list == straight.loss_list
    for p, q in zip(straight.model.params, resumed.model.params, strict=True):
        assert np.array_equal(p, q)
    assert resumed.best_epoch == straight.best_epoch


def test_a_model_without_check_params_is_refused_with_a_message(corpus, tmp_path):
    class Bare(SimpleRnnlm):
        check_params = None  # a hand-made model that is not a models.base.Model

    xs, ts = corpus
    path = tmp_path / "ck.npz"
    RnnlmTrainer(Bare(V, D, H, seed=1), SGD(0.5)).fit(xs, ts, max_epoch=1, max_iters=2,
                                                      checkpoint=path, **FIT)
    with pytest.raises(ValueError, match="checkpoints need a models.base.Model"):
        RnnlmTrainer(Bare(V, D, H, seed=1), SGD(0.5)).resume(path)


# -- atomic writes -------------------------------------------------------------------


def test_atomic_write_failure_keeps_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def broken(f):
        f.write(b"half of the new cont")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_atomic_write_gives_ordinary_permissions(tmp_path):
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"x"))
    (tmp_path / "b.bin").write_bytes(b"x")
    assert (tmp_path / "a.bin").stat().st_mode == (tmp_path / "b.bin").stat().st_mode


def test_atomic_write_interrupted_by_ctrl_c_leaves_nothing(tmp_path):
    path = tmp_path / "new.bin"

    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert os.listdir(tmp_path) == []


def test_saving_over_a_checkpoint_replaces_it_whole(corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = MAKERS["simple-sgd"](seed=1)
    trainer.fit(xs, ts, max_epoch=1, max_iters=3, checkpoint=path, **FIT)
    trainer.fit(xs, ts, max_epoch=1, max_iters=6, checkpoint=path, **FIT)
    assert read_checkpoint(path)[1]["trainer"]["iteration"] == 6
    assert zipfile.ZipFile(path).testzip() is None
    assert glob.glob(str(tmp_path / ".*.tmp")) == []


# -- refusing checkpoints that do not fit ------------------------------------------------


def test_resume_refuses_another_model_or_optimizer_and_changes_nothing(corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    MAKERS["simple-adam"](seed=1).fit(xs, ts, max_epoch=1, max_iters=5, checkpoint=path, **FIT)

    bigger = RnnlmTrainer(SimpleRnnlm(V, D, 2 * H, seed=1), Adam(0.01))
    with pytest.raises(ValueError, match=r"holds the model SimpleRnnlm .* but the model to resume"):
        bigger.resume(path)
    with pytest.raises(ValueError, match="holds the model SimpleRnnlm"):
        RnnlmTrainer(Rnnlm(V, D, H, seed=1), Adam(0.01)).resume(path)

    other_optimizer = RnnlmTrainer(SimpleRnnlm(V, D, H, seed=9), SGD(0.1))
    before = [p.copy() for p in other_optimizer.model.params]
    with pytest.raises(ValueError, match="trained with Adam, not SGD"):
        other_optimizer.resume(path)
    assert all(np.array_equal(p, q) for p, q in zip(before, other_optimizer.model.params,
                                                     strict=True))
    assert other_optimizer.epoch == other_optimizer.iteration == 0


# -- NaN and infinite losses ---------------------------------------------------------------


class PoisonedWeights(SimpleRnnlm):
    """Sets an output bias to NaN at the ``poison_at``-th forward: the loss
    is NaN from then on."""

    poison_at = None

    def forward(self, xs, ts):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.poison_at:
            self.affine.params[1][0] = np.nan
        return super().forward(xs, ts)


class PoisonedState(SimpleRnnlm):
    """Makes the carried hidden state NaN before the listed forwards: those
    batches have a NaN loss, and (after a reset of the state) the next do not."""

    poison = (4, 9)

    def forward(self, xs, ts):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls in self.poison and self.rnn.h is not None:
            self.rnn.h[...] = np.nan
        return super().forward(xs, ts)


def test_nan_loss_stops_with_the_epoch_and_iteration_and_keeps_the_checkpoint(corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = RnnlmTrainer(PoisonedWeights(V, D, H, seed=1), SGD(0.5))
    trainer.fit(xs, ts, max_epoch=1, **FIT)  # one clean epoch: 50 forwards
    trainer.model.poison_at = 50 + 5  # the 5th iteration of epoch 2
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, iteration 5; "
                                               r"the last good checkpoint .*ck\.npz is kept"):
        trainer.fit(xs, ts, max_epoch=3, checkpoint=path, checkpoint_every=2, **FIT)
    assert isinstance(TrainingDiverged("x"), FloatingPointError)

    # The checkpoint of iteration 4 (epoch 2) is intact, finite and resumable.
    clean = RnnlmTrainer(SimpleRnnlm(V, D, H, seed=1), SGD(0.5))
    clean.fit(xs, ts, max_epoch=3, max_iters=54, **FIT)
    resumed = RnnlmTrainer(PoisonedWeights(V, D, H, seed=2), SGD(0.5)).resume(path)
    assert (resumed.epoch, resumed.iteration) == (1, 4)
    for p, q in zip(clean.model.params, resumed.model.params, strict=True):
        assert np.all(np.isfinite(q)) and np.array_equal(p, q)
    assert glob.glob(str(tmp_path / ".*.tmp")) == []


def test_weights_that_become_nan_never_overwrite_the_last_good_checkpoint(corpus, tmp_path):
    """The loss of a step can be finite while its update makes the weights
    NaN; the checkpoint written after that step must not take them."""

    class PoisoningSGD(SGD):
        def update(self, params, grads):
            super().update(params, grads)
            if self.t == 3:
                params[0][0, 0] = np.inf

    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = RnnlmTrainer(SimpleRnnlm(V, D, H, seed=1), PoisoningSGD(0.5))
    with pytest.raises(TrainingDiverged, match=r"parameters became NaN or infinite at epoch 1, "
                                               r"iteration 3; the last good checkpoint"):
        trainer.fit(xs, ts, max_epoch=1, checkpoint=path, checkpoint_every=1, **FIT)
    arrays, meta = read_checkpoint(path)
    assert meta["trainer"]["iteration"] == 2
    assert all(np.all(np.isfinite(a)) for a in arrays.values())


def test_parameters_that_become_nan_stop_the_run_at_the_end_of_the_epoch(tmp_path):
    """Without a checkpoint, non-finite weights that leave the loss finite
    (an embedding row of an id the corpus never uses) are still caught."""

    class PoisoningSGD(SGD):
        def update(self, params, grads):
            super().update(params, grads)
            if self.t == 3:
                params[0][0, 0] = np.nan  # embed.W row of id 0

    ids = np.random.default_rng(7).integers(1, V, size=1001).astype(np.int32)  # no id 0
    trainer = RnnlmTrainer(SimpleRnnlm(V, D, H, seed=1), PoisoningSGD(0.5))
    with pytest.raises(TrainingDiverged, match=r"parameters became NaN or infinite at epoch 1, "
                                               r"iteration 50\."):
        trainer.fit(ids[:-1], ids[1:], max_epoch=2, **FIT)
    assert trainer.epoch == 1  # the loss stayed finite the whole epoch


def test_a_learning_rate_that_diverges_raises_training_diverged(corpus, tmp_path):
    """Real divergence: huge losses (no OverflowError from exp) and then NaN."""
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = RnnlmTrainer(SimpleRnnlm(V, D, H, seed=1), SGD(lr=1e30))
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"epoch 1, iteration"):
        trainer.fit(xs, ts, max_epoch=5, checkpoint=path, checkpoint_every=1, **FIT)
    if path.exists():
        arrays, _ = read_checkpoint(path)
        assert all(np.all(np.isfinite(a)) for a in arrays.values())


def test_a_huge_finite_loss_is_divergence_on_every_cpu(corpus):
    """A loss no model of this vocabulary reaches by chance (above 5 log V)
    stops the run even though it is finite: whether a diverging run's loss
    overflows to inf or stays finite depends on the CPU."""

    class HugeLoss(SimpleRnnlm):
        loss = 1e4

        def forward(self, xs, ts):
            super().forward(xs, ts)
            return self.loss

    xs, ts = corpus
    bound = divergence_bound(V)
    assert bound == pytest.approx(5 * math.log(V))
    with pytest.raises(TrainingDiverged, match=r"loss became 1e\+04, above 20\.5 .* at epoch 1, "
                                               r"iteration 1"):
        RnnlmTrainer(HugeLoss(V, D, H, seed=1), SGD(0.0)).fit(xs, ts, max_epoch=1, **FIT)
    just_below = HugeLoss(V, D, H, seed=1)
    just_below.loss = bound * 0.999  # bad but possible: training goes on
    trainer = RnnlmTrainer(just_below, SGD(0.0)).fit(xs, ts, max_epoch=1, **FIT)
    assert trainer.history["train_ppl"] == [pytest.approx(math.exp(bound * 0.999))]
    assert divergence_bound(2) == 10.0  # the floor for tiny vocabularies


def test_on_nan_skip_drops_the_batch_resets_the_state_and_counts(corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    trainer = RnnlmTrainer(PoisonedState(V, D, H, seed=1), SGD(0.5))
    trainer.fit(xs, ts, max_epoch=1, on_nan="skip", checkpoint=path, **FIT)
    assert trainer.skipped_batches == 2
    assert trainer.optimizer.t == 50 - 2  # no update for a skipped batch
    assert all(np.all(np.isfinite(p)) for p in trainer.model.params)
    assert math.isfinite(trainer.history["train_ppl"][0])
    _, meta = read_checkpoint(path)
    assert meta["trainer"]["skipped_batches"] == 2
    resumed = RnnlmTrainer(PoisonedState(V, D, H, seed=2), SGD(0.5)).resume(path)
    assert resumed.skipped_batches == 2


def test_on_nan_must_be_raise_or_skip(corpus):
    xs, ts = corpus
    with pytest.raises(ValueError, match="on_nan must be 'raise' or 'skip'"):
        MAKERS["simple-sgd"](seed=1).fit(xs, ts, on_nan="ignore", **FIT)


def test_load_npz_is_what_checkpoints_are_read_with(corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    MAKERS["simple-sgd"](seed=1).fit(xs, ts, max_epoch=1, max_iters=2, checkpoint=path, **FIT)
    arrays, meta = load_npz(path)
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    assert meta["version"] == 1


def test_a_float64_run_is_not_resumed_into_a_float32_model(corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    RnnlmTrainer(Rnnlm(V, D, H, seed=0, dtype=np.float64), Adam()).fit(
        xs, ts, max_epoch=1, batch_size=BATCH, time_size=TIME, verbose=False,
        checkpoint=path, max_iters=3)
    trainer = RnnlmTrainer(Rnnlm(V, D, H, seed=0), Adam())
    with pytest.raises(ValueError, match="is float64, the model's float32: build the model "
                                         "with dtype=np.float64"):
        trainer.resume(path)


def test_a_dropout_generator_a_checkpoint_cannot_hold_is_refused_before_training(corpus,
                                                                                 tmp_path):
    """MT19937 keeps its state in an array, which the checkpoint's JSON cannot
    hold: refused at once, not when the first epoch's checkpoint is written."""
    xs, ts = corpus
    model = BetterRnnlm(V, D, H, 0.3, num_layers=1, seed=0)
    model.layers[1].rng = np.random.Generator(np.random.MT19937(0))
    trainer = RnnlmTrainer(model, Adam())
    with pytest.raises(TypeError, match=r"the random generator of layer 1 \(MT19937\) cannot "
                                        r"be written to a checkpoint"):
        trainer.fit(xs, ts, max_epoch=1, batch_size=BATCH, time_size=TIME, verbose=False,
                    checkpoint=tmp_path / "ck.npz")
    assert trainer.iterations_run == 0 and not (tmp_path / "ck.npz").exists()


def test_a_checkpoint_whose_optimizer_state_does_not_fit_changes_nothing(corpus, tmp_path):
    """The optimizer has updated other arrays (another model's): refused,
    naming the file, before the model's parameters are touched."""
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    RnnlmTrainer(Rnnlm(V, D, H, seed=0), Adam()).fit(
        xs, ts, max_epoch=1, batch_size=BATCH, time_size=TIME, verbose=False,
        checkpoint=path, max_iters=3)
    adam = Adam()
    bigger = Rnnlm(V, D, 2 * H, seed=1)
    adam.update(bigger.params, [np.zeros_like(p) for p in bigger.params])
    model = Rnnlm(V, D, H, seed=2)
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match="ck.npz: the optimizer state does not fit Adam"):
        RnnlmTrainer(model, adam).resume(path)
    assert all(np.array_equal(p, q) for p, q in zip(model.params, before, strict=True))


@pytest.mark.parametrize("key", ["optim/m.\u00b2", "optim/m.\u0663", "state/\u00b2"])
def test_an_index_a_checkpoint_never_writes_is_refused_naming_the_file(key, corpus, tmp_path):
    xs, ts = corpus
    path = tmp_path / "ck.npz"
    RnnlmTrainer(Rnnlm(V, D, H, seed=0), Adam()).fit(
        xs, ts, max_epoch=1, batch_size=BATCH, time_size=TIME, verbose=False,
        checkpoint=path, max_iters=3)
    arrays, meta = load_npz(path)
    prefix = key[:key.index("/") + 1]
    renamed = next(k for k in arrays if k.startswith(prefix) and (prefix == "state/"
                                                                  or k.startswith("optim/m.")))
    arrays[key] = arrays.pop(renamed)
    damaged = tmp_path / "damaged.npz"
    save_npz(damaged, arrays, meta)
    with pytest.raises(ValueError, match="damaged.npz: .*(does not fit|unexpected)"):
        RnnlmTrainer(Rnnlm(V, D, H, seed=0), Adam()).resume(damaged)
