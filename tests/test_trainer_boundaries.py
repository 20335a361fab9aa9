"""The edges of fit that a mutation audit of the training machinery found
unpinned: skips that are not in a row, a checkpoint written after an
epoch's last iteration, early stopping across a resume, a stopped call
continued with other settings or with nothing left to train, a parameter
changed between calls, a model that cannot restore the best parameters,
-inf weights, the vocabulary the loss bound is of and a loss at the bound,
every epoch-end part asked when the run stops, the order of the batches of
pairs, ``max_iters=0``, the progress lines, and where a run that cannot
write its first checkpoint says it stopped. Each test is an example of the
API.
"""

import errno
import math

import numpy as np
import pytest

from common import training_guards
from common.checkpoint import read_checkpoint
from common.feeders import Lanes, ShuffledRows
from common.optimizer import SGD, Adam
from common.trainer import (
    CheckpointWriteError,
    RnnlmTrainer,
    Trainer,
    TrainingDiverged,
    divergence_bound,
)
from models import SimpleRnnlm

V = 30
FIT = dict(batch_size=4, time_size=5, verbose=False)  # 600 ids: 29 iterations an epoch


def ids(n, seed=0, high=V, low=0):
    return np.random.default_rng(seed).integers(low, high, size=n)


def lm(seed=0):
    return SimpleRnnlm(V, 8, 8, seed=seed)


def assert_same_run(a, b):
    """Parameters bit for bit, the histories and the position in the run."""
    for p, q in zip(a.model.params, b.model.params, strict=True):
        assert np.array_equal(p, q)
    assert a.ppl_list == b.ppl_list and a.history == b.history
    assert (a.epoch, a.iteration, a.time_idx) == (b.epoch, b.iteration, b.time_idx)
    assert a.optimizer.t == b.optimizer.t


class ConstantLoss:
    """A model of one's own with no vocabulary (no ``vocab_size``) and no
    parameters: every batch's loss is ``loss``; it keeps the rows of ``x``
    it was given."""

    params, grads = [], []

    def __init__(self, loss=0.0):
        self.loss, self.seen = loss, []

    def forward(self, x, t):
        self.seen.append(np.asarray(x)[:, 0].tolist())
        return self.loss

    def backward(self, dout=1):
        pass


class LearnsNothing:
    """An optimizer of one's own that has an ``lr`` but changes nothing: the
    validation figure never improves after the first epoch."""

    def __init__(self, lr):
        self.lr = lr

    def update(self, params, grads):
        pass


# -- on_nan='skip' --------------------------------------------------------------------------


class NanEveryOtherBatch(SimpleRnnlm):
    """A NaN loss for the 1st, 3rd, 5th ... batch: never two in a row."""

    def forward(self, xs, ts):
        self.calls = getattr(self, "calls", 0) + 1
        loss = super().forward(xs, ts)
        return math.nan if self.calls % 2 else loss


def test_skips_that_are_not_in_a_row_do_not_stop_the_run():
    """on_nan='skip' gives up after MAX_SKIPS_IN_A_ROW bad batches in a row; a
    good batch starts the count again, so 15 bad batches spread over an
    epoch (more than 10 in all) are all skipped and the epoch ends."""
    c = ids(600)
    trainer = RnnlmTrainer(NanEveryOtherBatch(V, 8, 8, seed=0), SGD(0.1))
    trainer.fit(c[:-1], c[1:], max_epoch=1, on_nan="skip", **FIT)
    assert training_guards.MAX_SKIPS_IN_A_ROW < 15
    assert (trainer.epoch, trainer.skipped_batches) == (1, 15)
    assert trainer.optimizer.t == 29 - 15
    assert math.isfinite(trainer.history["train_ppl"][0])


# -- checkpoints and resume -----------------------------------------------------------------


class Crash(Exception):
    """What a machine going down would do to the process."""


class DiesValidating(SimpleRnnlm):
    """Raises :class:`Crash` in the validation after an epoch when ``dies``."""

    dies = False

    def evaluating(self, restore_state=True):
        if self.dies:
            raise Crash("the machine went down while validating")
        return super().evaluating(restore_state)


def test_a_checkpoint_written_after_an_epochs_last_iteration_resumes_bit_for_bit(tmp_path):
    """With checkpoint_every, the file is written after the epoch's last
    iteration and before the epoch is closed (validation, schedules): a run
    that dies in that validation leaves a checkpoint whose iteration is
    iters_per_epoch. It is valid: resumed, the run closes the epoch and
    goes on as one that never stopped."""
    c, val = ids(600), ids(200, seed=1)
    fit = dict(FIT, max_epoch=2, val_corpus=val, checkpoint_every=29)
    straight = RnnlmTrainer(DiesValidating(V, 8, 8, seed=0), SGD(0.5))
    straight.fit(c[:-1], c[1:], checkpoint=tmp_path / "straight.npz", **fit)

    path = tmp_path / "ck.npz"
    model = DiesValidating(V, 8, 8, seed=0)
    model.dies = True
    with pytest.raises(Crash):
        RnnlmTrainer(model, SGD(0.5)).fit(c[:-1], c[1:], checkpoint=path, **fit)
    kept = read_checkpoint(path)[1]["trainer"]
    assert (kept["epoch"], kept["iteration"], kept["iters_per_epoch"]) == (0, 29, 29)

    resumed = RnnlmTrainer(DiesValidating(V, 8, 8, seed=1), SGD(0.5)).resume(path)
    assert (resumed.epoch, resumed.iteration) == (0, 29)
    resumed.fit(c[:-1], c[1:], checkpoint=path, **fit)
    assert_same_run(resumed, straight)
    assert resumed.best_epoch == straight.best_epoch


def test_early_stopping_counts_the_bad_epochs_before_a_resume(tmp_path):
    """The epochs without improvement since the best are in the checkpoint:
    a run stopped and resumed stops early after the same epoch as one that
    never stopped (lr 0: every epoch after the first is a bad one, so
    patience=2 stops after epoch 3)."""
    c, path = ids(600), tmp_path / "ck.npz"
    fit = dict(FIT, max_epoch=6, val_corpus=ids(200, seed=1), patience=2)
    straight = RnnlmTrainer(lm(), SGD(0.0)).fit(c[:-1], c[1:], **fit)
    assert straight.history["epoch"] == [1, 2, 3] and straight.bad_epochs == 2

    RnnlmTrainer(lm(), SGD(0.0)).fit(c[:-1], c[1:], max_iters=2 * 29, checkpoint=path, **fit)
    resumed = RnnlmTrainer(lm(seed=1), SGD(0.0)).resume(path)
    assert (resumed.epoch, resumed.bad_epochs) == (2, 1)
    resumed.fit(c[:-1], c[1:], checkpoint=path, **fit)
    assert_same_run(resumed, straight)
    assert resumed.bad_epochs == 2


def test_max_iters_0_trains_nothing_and_writes_the_checkpoint(tmp_path):
    """``max_iters`` counts from the start of the run, and 0 is a valid
    count: the call trains nothing and writes the checkpoint as it stands,
    from which the run can start."""
    c, path = ids(600), tmp_path / "ck.npz"
    trainer = RnnlmTrainer(lm(), SGD(0.1))
    trainer.fit(c[:-1], c[1:], max_epoch=1, max_iters=0, checkpoint=path, **FIT)
    assert (trainer.iterations_run, trainer.optimizer.t) == (0, 0)
    kept = read_checkpoint(path)[1]["trainer"]
    assert (kept["epoch"], kept["iteration"]) == (0, 0)
    resumed = RnnlmTrainer(lm(seed=1), SGD(0.1)).resume(path)
    resumed.fit(c[:-1], c[1:], max_epoch=1, checkpoint=path, **FIT)
    straight = RnnlmTrainer(lm(), SGD(0.1)).fit(c[:-1], c[1:], max_epoch=1, **FIT)
    assert_same_run(resumed, straight)


def full_disk(path, trainer):
    """A checkpoint write that fails as on a full disk (as test_script_failures
    makes them fail)."""
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_first_checkpoint_that_cannot_be_written_says_the_run_stopped_at_its_start(
        tmp_path, monkeypatch):
    """Before any iteration the run stands at epoch 1, iteration 0; there is
    no "epoch 0" to have stopped after."""
    monkeypatch.setattr(training_guards, "save_checkpoint", full_disk)
    c, path = ids(600), tmp_path / "ck.npz"
    with pytest.raises(CheckpointWriteError, match=r"cannot write the checkpoint .*ck\.npz \(No "
                                                   r"space left on device\): training stopped "
                                                   r"at epoch 1, iteration 0; no checkpoint was "
                                                   r"written$"):
        RnnlmTrainer(lm(), SGD(0.1)).fit(c[:-1], c[1:], max_epoch=1, max_iters=0,
                                         checkpoint=path, **FIT)


# -- calls after a stopped one --------------------------------------------------------------


def test_a_call_stopped_mid_epoch_refuses_to_go_on_with_other_batch_settings():
    """A stopped epoch can only be finished with the batches it began with;
    a call whose data or batch settings cut the epoch otherwise is refused
    before it changes anything."""
    c = ids(600)
    trainer = RnnlmTrainer(lm(), SGD(0.1))
    trainer.fit(c[:-1], c[1:], max_epoch=2, max_iters=7, **FIT)
    with pytest.raises(ValueError, match=r"^this trainer stopped in the middle of an epoch of 29 "
                                         r"iterations, but these data and batch settings give "
                                         r"14: resume with the settings the run was started "
                                         r"with$"):
        trainer.fit(c[:-1], c[1:], max_epoch=2, **dict(FIT, time_size=10))
    assert (trainer.epoch, trainer.iteration, trainer.iters_per_epoch) == (0, 7, 29)
    assert (trainer.optimizer.t, trainer.time_idx) == (7, 7 * 5)
    trainer.fit(c[:-1], c[1:], max_epoch=2, **FIT)  # the settings it began with: it goes on
    straight = RnnlmTrainer(lm(), SGD(0.1)).fit(c[:-1], c[1:], max_epoch=2, **FIT)
    assert_same_run(trainer, straight)


def test_a_call_with_nothing_left_to_train_ends_the_stopped_call_and_the_next_trains():
    """A call stopped by max_iters is continued by the next (max_epoch counted
    from where it began). One whose max_epoch is reached already trains
    nothing, but ends that call: the one after it counts max_epoch from the
    current epoch and trains."""
    c = ids(600)
    trainer = RnnlmTrainer(lm(), SGD(0.1))
    trainer.fit(c[:-1], c[1:], max_epoch=3, max_iters=29 + 10, **FIT)  # in epoch 2
    assert (trainer.epoch, trainer.iteration, trainer.fit_start_epoch) == (1, 10, 0)
    trainer.fit(c[:-1], c[1:], max_epoch=1, **FIT)  # epoch 0 + 1: reached already
    assert (trainer.epoch, trainer.iteration, trainer.optimizer.t) == (1, 10, 39)
    assert trainer.fit_start_epoch is None
    trainer.fit(c[:-1], c[1:], max_epoch=1, **FIT)  # epoch 1 + 1: the rest of epoch 2
    assert (trainer.epoch, trainer.iteration, trainer.optimizer.t) == (2, 0, 58)


# -- the best parameters --------------------------------------------------------------------


def test_one_parameter_changed_between_calls_is_kept_and_so_are_the_others():
    """After a call that restored the best epoch's parameters, the next call
    trains on from the last trained ones, unless the model's parameters were
    changed in between: changing even one of them means the user's choice of
    every parameter is what the next call starts from."""
    c = ids(600)
    trainer = RnnlmTrainer(lm(), Adam(0.05))
    trainer.fit(c[:-1], c[1:], max_epoch=2, val_corpus=ids(200, seed=1), **FIT)
    chosen = {k: p.copy() for k, p in trainer.model.named_params().items()}
    chosen["affine.b"][...] = 0
    trainer.model.set_named_params(chosen)
    trainer.fit(c[:-1], c[1:], max_epoch=0, restore_best=False, **FIT)
    for name, p in trainer.model.named_params().items():
        assert np.array_equal(p, chosen[name]), name


class NoSetter(SimpleRnnlm):
    set_named_params = None  # it cannot put the best parameters back


def test_a_model_without_set_named_params_is_refused_before_training_to_restore_the_best():
    """restore_best (the default with validation) needs set_named_params:
    refused before the first batch, not after the whole run; without
    restore_best the model trains."""
    c = ids(600)
    trainer = RnnlmTrainer(NoSetter(V, 8, 8, seed=0), SGD(0.1))
    with pytest.raises(TypeError, match=r"^NoSetter has no set_named_params\(\): restore_best "
                                        r"puts the best epoch's parameters back with it\. .* or "
                                        r"pass restore_best=False$"):
        trainer.fit(c[:-1], c[1:], max_epoch=2, val_corpus=ids(200, seed=1), **FIT)
    assert (trainer.epoch, trainer.optimizer.t) == (0, 0)
    trainer.fit(c[:-1], c[1:], max_epoch=2, val_corpus=ids(200, seed=1), restore_best=False,
                **FIT)
    assert trainer.epoch == 2


def test_every_epoch_end_part_is_asked_in_the_epoch_the_run_stops_early():
    """Early stopping does not cut the other schedules short: in the epoch
    it stops the run, lr_halve_from still halves the learning rate, which
    the next call (or a checkpoint) starts from."""
    c, optimizer = ids(600), LearnsNothing(lr=1.0)
    trainer = RnnlmTrainer(lm(), optimizer)
    trainer.fit(c[:-1], c[1:], max_epoch=6, val_corpus=ids(200, seed=1), patience=2,
                lr_halve_from=2, **FIT)
    assert trainer.history["epoch"] == [1, 2, 3]
    assert trainer.history["lr"] == [1.0, 0.5, 0.25]
    assert optimizer.lr == 0.125


# -- divergence -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.inf, -np.inf], ids=["plus-inf", "minus-inf"])
def test_infinite_parameters_of_either_sign_stop_the_run_and_are_never_written(bad, tmp_path):
    """Weights that become infinite while the loss stays finite (an embedding
    row of an id the corpus never uses) stop the run at the end of the
    epoch, whether +inf or -inf, and never reach a checkpoint."""

    class PoisoningSGD(SGD):
        def update(self, params, grads):
            super().update(params, grads)
            if self.t == 3:
                params[0][0, 0] = bad  # embed.W row of id 0

    c, path = ids(600, low=1), tmp_path / "ck.npz"  # no id 0
    trainer = RnnlmTrainer(lm(), PoisoningSGD(0.5))
    with pytest.raises(TrainingDiverged, match=r"^the parameters became NaN or infinite at "
                                               r"epoch 1, iteration 29\. "):
        trainer.fit(c[:-1], c[1:], max_epoch=2, checkpoint=path, **FIT)
    assert trainer.epoch == 1 and not path.exists()


def test_the_largest_id_is_that_of_inputs_and_targets_together():
    """A feeder's max_id is the largest id in its inputs and its targets (one
    vocabulary: a sequence-to-sequence model reads and writes it), and a
    model without vocab_size is held to the loss bound of that vocabulary:
    here 1,000 ids, though the targets use only two."""
    x, t = np.array([[999, 5], [3, 4]] * 8), np.array([1, 0] * 8)
    assert ShuffledRows(x, t, batch_size=4).max_id() == 999
    c = np.concatenate([[29], ids(600, high=10)])  # 29 only as the first input
    assert Lanes(c[:-1], c[1:], batch_size=4, time_size=5).max_id() == 29

    loss = 20.0  # above the bound of two ids (the floor, 10), below that of 1,000 (34.5)
    assert divergence_bound(2) < loss < divergence_bound(1000)
    trainer = Trainer(ConstantLoss(loss), SGD(0.1)).fit(x, t, max_epoch=1, batch_size=4,
                                                       verbose=False)
    assert trainer.epoch == 1


def test_integer_targets_without_a_vocab_size_are_held_to_the_bound_of_max_id_plus_one():
    """Ids 0 to 99 are 100 classes: a loss of 23.0 is within their bound
    (5 log 100 = 23.03, though above 5 log 99 = 22.98), and 23.1 is not."""
    t = np.arange(100)
    x = t[:, None].repeat(2, axis=1)
    assert divergence_bound(99) < 23.0 < divergence_bound(100) < 23.1
    trainer = Trainer(ConstantLoss(23.0), SGD(0.1)).fit(x, t, max_epoch=1, batch_size=4,
                                                       verbose=False)
    assert trainer.epoch == 1
    with pytest.raises(TrainingDiverged, match=r"the loss became 23\.1, above 23\.0 "):
        Trainer(ConstantLoss(23.1), SGD(0.1)).fit(x, t, max_epoch=1, batch_size=4,
                                                  verbose=False)


def test_a_loss_equal_to_the_bound_is_learned_from():
    """The bound is the largest loss allowed: a loss equal to it trains (4
    classes: the floor, exactly 10.0)."""
    x, t = np.zeros((8, 2), dtype=np.int64), np.array([0, 1, 2, 3] * 2)
    assert divergence_bound(4) == 10.0
    trainer = Trainer(ConstantLoss(10.0), SGD(0.1)).fit(x, t, max_epoch=1, batch_size=4,
                                                       verbose=False)
    assert (trainer.epoch, trainer.skipped_batches) == (1, 0)
    assert trainer.history["train_loss"] == [10.0]


# -- the batches of pairs -------------------------------------------------------------------


def test_each_epochs_batches_follow_default_rng_of_the_seed_and_the_epoch():
    """Trainer's order of epoch e is default_rng([seed, e]).permutation(N), as
    documented: epoch 1 as well as epoch 0 (where [seed, 0] draws what seed
    alone would)."""
    x, t = np.arange(10)[:, None], np.zeros(10, dtype=np.int64)
    model = ConstantLoss()
    Trainer(model, SGD(0.1)).fit(x, t, max_epoch=2, batch_size=5, seed=3, verbose=False)
    orders = [np.random.default_rng([3, e]).permutation(10).tolist() for e in (0, 1)]
    assert model.seen == [orders[0][:5], orders[0][5:], orders[1][:5], orders[1][5:]]


# -- progress lines -------------------------------------------------------------------------


def progress_lines(out):
    """``(epoch, iteration)`` of each progress line (not the epoch lines)."""
    lines = [line.split(" | ") for line in out.splitlines() if " | iteration " in line]
    return [(int(e.split()[-1]), int(i.split()[1].split("/")[0])) for e, i, *_ in lines]


def test_log_every_0_prints_the_epoch_lines_only(capsys):
    """log_every=0 means no progress lines, even for an epoch long enough to
    get them by default (100 iterations)."""
    c = ids(2001)
    RnnlmTrainer(lm(), SGD(0.1)).fit(c[:-1], c[1:], max_epoch=1, batch_size=4, time_size=5,
                                     log_every=0)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("| epoch 1 | time ")


@pytest.mark.parametrize("n_ids, expected", [
    (2001, [(1, i) for i in range(10, 101, 10)]),
    (1981, []),
], ids=["100-iterations", "99-iterations"])
def test_by_default_epochs_of_100_iterations_or_more_get_ten_progress_lines(n_ids, expected,
                                                                           capsys):
    """Away from a terminal (here pytest's capture) an epoch of at least 100
    iterations gets a line every tenth of it; a shorter one only its epoch
    line."""
    c = ids(n_ids)
    RnnlmTrainer(lm(), SGD(0.1)).fit(c[:-1], c[1:], max_epoch=1, batch_size=4, time_size=5)
    out = capsys.readouterr().out
    assert progress_lines(out) == expected
    assert out.splitlines()[-1].startswith("| epoch 1 | time ")


def test_progress_lines_fall_at_the_same_iterations_of_every_epoch(capsys):
    """log_every counts the iterations of the epoch the line names: with 100
    iterations an epoch and log_every=30, every epoch has lines at 30, 60
    and 90 (not where the run's count falls in the second)."""
    c = ids(2001)
    RnnlmTrainer(lm(), SGD(0.1)).fit(c[:-1], c[1:], max_epoch=2, batch_size=4, time_size=5,
                                     log_every=30)
    assert progress_lines(capsys.readouterr().out) == [(e, i) for e in (1, 2)
                                                       for i in (30, 60, 90)]


def test_the_skipped_batches_notice_agrees_in_number():
    from types import SimpleNamespace

    from common.cli import skipped_batches_notice

    assert skipped_batches_notice(SimpleNamespace(skipped_batches=0)) is None
    assert skipped_batches_notice(SimpleNamespace(skipped_batches=1)).startswith(
        "notice: 1 batch with a NaN, infinite or runaway loss was skipped (--on-nan skip)")
    assert skipped_batches_notice(SimpleNamespace(skipped_batches=2)).startswith(
        "notice: 2 batches with a NaN, infinite or runaway loss were skipped")


def test_eval_interval_and_checkpoint_every_count_the_whole_run_across_sizes(tmp_path,
                                                                            monkeypatch):
    """A point of ppl_list and a checkpoint every N iterations of the whole
    run, also when a later call has other sizes (and so another epoch length)."""
    written = []
    save = training_guards.save_checkpoint
    monkeypatch.setattr(training_guards, "save_checkpoint",
                        lambda path, trainer: (written.append(trainer.iterations_run),
                                               save(path, trainer)))
    corpus = np.random.default_rng(0).integers(0, 30, 1001)
    xs, ts = corpus[:-1], corpus[1:]
    trainer = RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=0), SGD(0.1))
    path = tmp_path / "ck.npz"
    trainer.fit(xs, ts, max_epoch=1, batch_size=10, time_size=5, eval_interval=20,
                checkpoint=path, checkpoint_every=20, verbose=False)  # 20 iterations
    trainer.fit(xs, ts, max_epoch=2, batch_size=10, time_size=9, eval_interval=20,
                checkpoint=path, checkpoint_every=20, verbose=False)  # then 2 x 11
    assert trainer.iterations_run == 42
    assert trainer.figure_iterations == [20, 40]
    assert written == [20, 20, 40, 42]  # every 20 iterations, and at each call's end


def test_a_trainer_refuses_another_model_set_after_its_run_began():
    # It would give the new model the old run's epochs and, at its best epoch's
    # restore, the old model's weights.
    corpus = np.random.default_rng(0).integers(0, 30, 401)
    xs, ts = corpus[:-1], corpus[1:]
    fit = dict(max_epoch=1, batch_size=4, time_size=5, val_corpus=corpus[:101], verbose=False)
    trainer = RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=0), SGD(0.1))
    trainer.fit(xs, ts, **fit)
    other = SimpleRnnlm(30, 8, 8, seed=1)
    before = [p.copy() for p in other.params]
    trainer.model = other
    with pytest.raises(ValueError, match="trainer.model is another model than the one this "
                                         "trainer's run trained .*a trainer of its own"):
        trainer.fit(xs, ts, **fit)
    for p, b in zip(other.params, before, strict=True):
        np.testing.assert_array_equal(p, b)
    fresh = RnnlmTrainer(SimpleRnnlm(30, 8, 8, seed=0), SGD(0.1))
    fresh.model = other  # before any training: simply taken
    fresh.fit(xs, ts, **fit)
    assert not np.array_equal(other.params[0], before[0])


def test_progress_lines_show_the_epochs_figure_so_far(capsys):
    # (Printed more often than eval_interval, a line repeated the last
    # recorded point: "ppl 381.81" three times in a row.)
    c = ids(2001)
    trainer = RnnlmTrainer(lm(), SGD(0.1))
    trainer.fit(c[:-1], c[1:], max_epoch=1, batch_size=4, time_size=5, log_every=5,
                eval_interval=50)
    figures = [line.split(" | ")[-1] for line in capsys.readouterr().out.splitlines()
               if " | iteration " in line]
    assert len(figures) == 20 and all(f.endswith("(epoch so far)") for f in figures)
    assert figures[-1] == f"ppl {trainer.history['train_ppl'][-1]:.2f} (epoch so far)"
    assert len(set(figures[:10])) > 1  # (lines 1-9 came before the first point, at 50)
