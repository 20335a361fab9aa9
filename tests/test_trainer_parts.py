"""The trainer made of parts: RnnlmTrainer gives, bit for bit, what the old
single-function fit gave (written out below as a plain loop); the old call
forms keep working; the parts are small; fit checks its arguments."""

import ast
import inspect
import math
from pathlib import Path

import numpy as np
import pytest

from common import trainer as trainer_module
from common.optimizer import SGD, Adam
from common.parallel import managed
from common.trainer import FitOptions, RnnlmTrainer
from common.util import clip_grads, clip_grads_value, eval_perplexity
from models import BetterRnnlm, SimpleRnnlm

ROOT = Path(__file__).resolve().parents[1]
V = 40


def reference_fit(model, optimizer, xs, ts, max_epoch, batch_size, time_size, max_grad=None,
                  eval_interval=20, val_corpus=None, lr_decay=None, lr_halve_from=None,
                  restore_best=True):
    """The old RnnlmTrainer.fit, written out as one plain loop (no
    checkpoints, signals, NaN policy or progress output)."""
    size = len(xs)
    offsets = np.arange(batch_size) * (size // batch_size)
    iters = size // (batch_size * time_size)
    time_idx, ppl_list = 0, []
    history = {"epoch": [], "train_ppl": [], "val_ppl": [], "lr": []}
    interval_loss, interval_count = 0.0, 0
    best, best_params = math.inf, None
    model.train()
    with managed():
        for epoch in range(max_epoch):
            epoch_loss, epoch_count = 0.0, 0
            for it in range(iters):
                positions = (offsets[:, None] + time_idx + np.arange(time_size)) % size
                time_idx = (time_idx + time_size) % size
                loss = model.forward(xs[positions], ts[positions])
                model.backward()
                if max_grad is not None:
                    clip_grads(model.grads, max_grad)
                optimizer.update(model.params, model.grads)
                interval_loss += loss
                interval_count += 1
                epoch_loss += loss
                epoch_count += 1
                if (epoch * iters + it + 1) % eval_interval == 0:
                    ppl_list.append(math.exp(interval_loss / interval_count))
                    interval_loss, interval_count = 0.0, 0
            history["epoch"].append(epoch + 1)
            history["train_ppl"].append(math.exp(epoch_loss / epoch_count))
            history["lr"].append(float(optimizer.lr))
            if val_corpus is not None:
                state = model.get_state()
                val = eval_perplexity(model, val_corpus, batch_size=10)
                model.set_state(state)
                history["val_ppl"].append(val)
                if val < best:
                    best = val
                    best_params = {k: p.copy() for k, p in model.named_params().items()}
                elif lr_decay:
                    optimizer.lr /= lr_decay
            if lr_halve_from is not None and epoch + 2 >= lr_halve_from:
                optimizer.lr /= 2
    if restore_best and best_params is not None:
        model.set_named_params(best_params)
    return ppl_list, history, time_idx


def corpus(n, seed):
    return np.random.default_rng(seed).integers(0, V, size=n).astype(np.int32)


CASES = {
    "simple-sgd-clipped": (lambda: SimpleRnnlm(V, 12, 12, seed=1), lambda: SGD(lr=1.0),
                           dict(max_grad=0.5)),
    "better-dropout-adam-val-decay": (
        lambda: BetterRnnlm(V, 12, 12, num_layers=2, dropout_ratio=0.3, seed=2),
        lambda: Adam(lr=0.01), dict(val_corpus=corpus(200, 9), lr_decay=2.0)),
    "simple-halving-val": (lambda: SimpleRnnlm(V, 12, 12, seed=3), lambda: SGD(lr=2.0),
                           dict(val_corpus=corpus(200, 9), lr_halve_from=2, max_grad=0.25)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rnnlm_trainer_gives_the_old_loop_bit_for_bit(case):
    make_model, make_optimizer, options = CASES[case]
    train = corpus(1201, 5)
    xs, ts = train[:-1], train[1:]
    fit = dict(max_epoch=3, batch_size=4, time_size=6, eval_interval=7)

    old_model, old_optimizer = make_model(), make_optimizer()
    ppl_list, history, time_idx = reference_fit(old_model, old_optimizer, xs, ts, **fit,
                                                **options)
    trainer = RnnlmTrainer(make_model(), make_optimizer())
    trainer.fit(xs, ts, verbose=False, **fit, **options)

    for (name, p), q in zip(old_model.named_params().items(),
                            trainer.model.named_params().values(), strict=True):
        assert np.array_equal(p, q), name
    assert trainer.ppl_list == ppl_list
    assert trainer.history == history
    assert trainer.time_idx == time_idx
    assert trainer.optimizer.lr == old_optimizer.lr


def test_old_keyword_arguments_and_an_options_object_work():
    train = corpus(601, 1)
    xs, ts = train[:-1], train[1:]
    old_style = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.5)).fit(
        xs, ts, max_epoch=2, batch_size=4, time_size=5, max_grad=1.0, eval_interval=5,
        val_corpus=corpus(100, 2), val_batch_size=3, lr_decay=2.0, patience=5,
        lr_halve_from=3, restore_best=False, max_iters=None, checkpoint=None,
        checkpoint_every=None, on_nan="raise", verbose=False, plot_path=None)
    options = FitOptions(val_corpus=corpus(100, 2), val_batch_size=3, lr_decay=2.0,
                         patience=5, lr_halve_from=3, restore_best=False, verbose=False)
    new_style = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.5)).fit(
        xs, ts, 2, 4, 5, 1.0, 5, options=options)
    assert old_style.history == new_style.history and old_style.ppl_list == new_style.ppl_list


def test_an_unknown_option_is_a_type_error_listing_the_known_ones():
    train = corpus(601, 1)
    trainer = RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.5))
    with pytest.raises(TypeError, match=r"fit\(\) got unexpected keyword argument\(s\) "
                                        r"\['val_corpsu'\]; its options are \[.*'val_corpus'"):
        trainer.fit(train[:-1], train[1:], val_corpsu=train)


def test_an_output_it_could_not_write_is_refused_before_training(tmp_path):
    """A checkpoint or plot path it could not write: not found out at the end
    of the first epoch, or of the run, with the work lost."""
    (tmp_path / "a_file").write_text("")
    train = corpus(601, 1)
    model = SimpleRnnlm(V, 8, 8, seed=0)
    before = [p.copy() for p in model.params]
    for option in ("checkpoint", "plot_path"):
        for path, message in ((tmp_path / "a_file" / "out", "is a file, not a folder"),
                              (tmp_path, "is a folder")):
            with pytest.raises(ValueError, match=f"{option} .*{message}"):
                RnnlmTrainer(model, SGD(0.5)).fit(train[:-1], train[1:], batch_size=4,
                                                  time_size=5, verbose=False, **{option: path})
    with pytest.raises(ValueError, match="cannot tell the plot format"):
        RnnlmTrainer(model, SGD(0.5)).fit(train[:-1], train[1:], batch_size=4, time_size=5,
                                          verbose=False, plot_path=tmp_path / "curve.txt")
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params, strict=True))


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=-1), "batch_size must be a positive integer, got -1"),
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5"),
    (dict(time_size=0), "time_size must be a positive integer, got 0"),
    (dict(max_epoch=-1), "max_epoch must be an integer >= 0, got -1"),
    (dict(max_grad=-1.0), r"max_grad must be a number > 0 \(or None: no clipping\), got -1.0"),
    (dict(max_grad=0), "max_grad must be a number > 0"),
    (dict(max_grad=float("nan")), "max_grad must be a number > 0"),
    (dict(eval_interval=0), "eval_interval must be an integer >= 1, got 0"),
    (dict(eval_interval=-1), "eval_interval must be an integer >= 1, got -1"),
    (dict(val_batch_size=0), "val_batch_size must be an integer >= 1"),
    (dict(lr_decay=0, val_corpus=np.arange(20)), "lr_decay must be a number > 1"),
    (dict(lr_decay=0.5, val_corpus=np.arange(20)), "lr_decay must be a number > 1"),
    (dict(patience=0, val_corpus=np.arange(20)), "patience must be an integer >= 1, got 0"),
    (dict(patience=-1, val_corpus=np.arange(20)), "patience must be an integer >= 1"),
    (dict(lr_halve_from=0), "lr_halve_from must be an integer >= 2, got 0"),
    (dict(lr_halve_from=1), "lr_halve_from must be an integer >= 2, got 1"),
    (dict(checkpoint_every=-3), "checkpoint_every must be an integer >= 1, got -3"),
    (dict(clip_value=0.0), "clip_value must be a number > 0"),
    (dict(patience=2), "lr_decay and patience act on the validation figure"),
])
def test_fit_checks_its_arguments_before_training(kwargs, message):
    train = corpus(601, 1)
    model = SimpleRnnlm(V, 8, 8, seed=0)
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=message):
        RnnlmTrainer(model, SGD(0.5)).fit(train[:-1], train[1:], verbose=False, **kwargs)
    assert all(np.array_equal(p, q) for p, q in zip(before, model.params, strict=True))


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(batch_size=-1),
                                    dict(time_size=0), dict(batch_size=1.5)])
def test_eval_perplexity_checks_its_arguments(kwargs):
    model = SimpleRnnlm(V, 8, 8, seed=0)
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"eval_perplexity: {name} must be a positive integer"):
        eval_perplexity(model, corpus(100, 1), **kwargs)


def test_clip_grads_value_clips_every_element_and_keeps_the_dtype():
    grads = [np.array([-7.0, -1.0, 0.5, 9.0], np.float32), np.full((2, 2), 3.0, np.float32)]
    clip_grads_value(grads, 2.0)
    np.testing.assert_array_equal(grads[0], [-2.0, -1.0, 0.5, 2.0])
    np.testing.assert_array_equal(grads[1], 2.0)
    assert grads[0].dtype == np.float32
    with pytest.raises(ValueError, match="max_value must be a number > 0"):
        clip_grads_value(grads, -1.0)


@pytest.mark.parametrize("clip", [clip_grads, clip_grads_value])
@pytest.mark.parametrize("limit", [0, -1.0, float("nan"), float("inf"), True, "5"])
def test_a_clipping_limit_must_be_a_finite_number_above_zero(clip, limit):
    grads = [np.full(3, 4.0, np.float32)]
    with pytest.raises(ValueError, match="must be a number > 0"):
        clip(grads, limit)
    np.testing.assert_array_equal(grads[0], 4.0)


@pytest.mark.parametrize("clip", [clip_grads, clip_grads_value])
def test_clipping_refuses_integer_gradients_it_would_truncate(clip):
    with pytest.raises(TypeError, match="must be float arrays, got dtype int64"):
        clip([np.full(3, 4, np.int64)], 1.0)


@pytest.mark.parametrize("clip", [clip_grads, clip_grads_value])
def test_clipping_refuses_what_it_cannot_change_before_changing_any(clip):
    # A list used to fail on a missing .dtype; a read-only gradient after the ones
    # before it had been clipped (clip_grads scaled the first, then stopped).
    with pytest.raises(TypeError, match=r"must be arrays, got list at position 0"):
        clip([[3.0, 4.0]], 1.0)
    first, second = np.full(4, 5.0, np.float32), np.full(4, 5.0, np.float32)
    second.flags.writeable = False
    with pytest.raises(ValueError, match=r"the one at position 2 is read-only"):
        clip([first, first, second], 1.0)  # (the caller's position, a tied array twice)
    np.testing.assert_array_equal(first, 5.0)


def test_fit_with_clip_value_clips_before_the_update(monkeypatch):
    seen = []

    class Spy(SGD):
        def update(self, params, grads):
            seen.append(max(float(np.abs(g).max()) for g in grads))
            super().update(params, grads)

    train = corpus(601, 1)
    RnnlmTrainer(SimpleRnnlm(V, 8, 8, seed=0), Spy(5.0)).fit(
        train[:-1], train[1:], max_epoch=1, batch_size=4, time_size=5, clip_value=0.5,
        verbose=False)
    assert seen and max(seen) == 0.5  # exactly representable in float32


# -- the shape of the code ---------------------------------------------------------------

PART_FILES = ["common/trainer.py", "common/feeders.py", "common/schedules.py",
              "common/training_guards.py", "common/progress.py", "common/plot.py",
              "common/fit_options.py", "common/memory.py", "common/checkpoint.py",
              "common/util.py"]


def test_fit_has_at_most_eight_parameters_of_its_own():
    for cls in (trainer_module.RnnlmTrainer, trainer_module.Trainer):
        params = list(inspect.signature(cls.fit).parameters)
        assert params[0] == "self" and len(params) - 1 <= 8, (cls.__name__, params)


def test_no_function_of_the_trainer_is_longer_than_60_lines():
    for name in PART_FILES:
        tree = ast.parse((ROOT / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                # The docstring does not count: only the code.
                if (body and isinstance(body[0], ast.Expr)
                        and isinstance(body[0].value, ast.Constant)):
                    body = body[1:] or body
                length = node.end_lineno - body[0].lineno + 1
                assert length <= 60, f"{name}: {node.name} has {length} lines"


class WarmRestarts:
    """A schedule of one's own: the learning rate halved after every epoch
    but every third, when it goes back to the run's first rate. No state of
    its own: all it needs is in the trainer (``epoch``, ``optimizer.lr``)."""

    def __init__(self, lr):
        self.lr = lr

    def end_epoch(self, trainer) -> bool:
        trainer.optimizer.lr = self.lr if trainer.epoch % 3 == 0 else trainer.optimizer.lr / 2
        return False


class RestartingTrainer(RnnlmTrainer):
    def epoch_parts(self, opts):
        return [*super().epoch_parts(opts), WarmRestarts(0.5)]


def test_a_schedule_of_ones_own_is_added_by_a_subclass_and_resumes_exactly(tmp_path):
    corpus = np.random.default_rng(0).integers(0, V, 400)
    fit = dict(batch_size=4, time_size=5, verbose=False)

    whole = RestartingTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.5))
    whole.fit(corpus[:-1], corpus[1:], max_epoch=4, **fit)
    assert whole.history["lr"] == [0.5, 0.25, 0.125, 0.5]  # the rate each epoch trained at

    path = tmp_path / "ck.npz"
    first = RestartingTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.5))
    first.fit(corpus[:-1], corpus[1:], max_epoch=2, checkpoint=path, **fit)
    resumed = RestartingTrainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.5)).resume(path)
    resumed.fit(corpus[:-1], corpus[1:], max_epoch=2, **fit)
    assert resumed.history["lr"] == whole.history["lr"]
    for p, q in zip(resumed.model.params, whole.model.params, strict=True):
        np.testing.assert_array_equal(p, q)
