"""The Python API misused as a reader porting the textbook's scripts might:
one clear error that says how to fix it (before any training), or the
right behaviour."""

import numpy as np
import pytest

from common.optimizer import SGD, AdaGrad, Adam, Momentum, RMSprop
from common.trainer import RnnlmTrainer, Trainer
from common.util import eval_perplexity
from models import BetterRnnlm, BetterRnnlmGen, Rnnlm, RnnlmGen, Seq2seq, SimpleRnnlm, load_model

V = 20
CORPUS = np.random.default_rng(0).integers(0, V, size=300)


def small_model(cls=SimpleRnnlm, **kwargs):
    return cls(V, 8, 8, **{"seed": 0, **kwargs})


# -- optimizers -----------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", [SGD, Momentum, AdaGrad, RMSprop, Adam])
@pytest.mark.parametrize("lr", [float("nan"), float("inf"), True, -0.1])
def test_an_optimizer_refuses_a_learning_rate_that_is_not_a_finite_number(optimizer, lr):
    # A NaN lr used to be accepted and turned every parameter into NaN at the first step.
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, e\.g\. "):
        optimizer(lr=lr)


@pytest.mark.parametrize("make", [lambda: AdaGrad(eps=-1), lambda: RMSprop(eps=float("nan")),
                                  lambda: Adam(eps=-1e-8), lambda: AdaGrad(eps=0),
                                  lambda: RMSprop(eps=0.0), lambda: Adam(eps=0)])
def test_an_optimizer_refuses_a_zero_negative_or_nan_eps(make):
    # eps=0 made every weight whose gradient had been 0 so far (an unseen word's
    # embedding row) 0/0 = NaN at the first update.
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        make()


def test_one_adam_for_two_models_is_refused_rather_than_sharing_its_state():
    first, second = small_model(), small_model()
    xs = np.zeros((2, 3), dtype=int)
    optimizer = Adam()
    for model in (first, second):
        model.forward(xs, xs)
        model.backward()
    optimizer.update(first.params, first.grads)
    before = [p.copy() for p in second.params]
    with pytest.raises(ValueError, match="make one optimizer per model"):
        optimizer.update(second.params, second.grads)  # same shapes: was silently stepped
    assert all((p == b).all() for p, b in zip(second.params, before, strict=True))
    optimizer.update(first.params, first.grads)  # its own model still trains


def test_a_stateless_sgd_may_still_serve_two_models():
    first, second = small_model(), small_model()
    xs = np.zeros((2, 3), dtype=int)
    optimizer = SGD(0.1)
    for model in (first, second):
        before = [p.copy() for p in model.params]
        model.forward(xs, xs)
        model.backward()
        optimizer.update(model.params, model.grads)
        assert any((p != b).any() for p, b in zip(model.params, before, strict=True))


# -- model constructors ----------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(init_scale=0), "init_scale must be a finite number > 0"),
    (dict(init_scale=-0.1), "init_scale must be a finite number > 0"),
    (dict(init_scale=float("nan")), "init_scale must be a finite number > 0"),
    (dict(init_scale=1e308), r"init_scale must be at most 3.4e\+38: weights beyond it are not "
                             r"float32 numbers"),
    (dict(seed=-1), "seed must be an integer >= 0 or None, got -1"),
    (dict(seed=1.5), "seed must be an integer >= 0 or None, got 1.5"),
    (dict(rng=5), "rng must be a numpy.random.Generator .*pass seed="),
])
def test_a_model_refuses_a_bad_seed_rng_or_init_scale(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_model(**kwargs)


@pytest.mark.parametrize("dropout", ["0.5", None])
def test_better_rnnlm_refuses_a_dropout_that_is_not_a_number(dropout):
    with pytest.raises(ValueError, match=r"dropout_ratio must be in \[0, 1\)"):
        BetterRnnlm(V, 8, 8, dropout)


def test_better_rnnlm_refuses_a_tie_weights_that_is_not_a_bool():
    with pytest.raises(ValueError, match="tie_weights must be True or False, got 'no'"):
        BetterRnnlm(V, 8, 8, 0.5, tie_weights="no")  # a non-empty string was truthy: tied


def test_numpy_scalars_in_better_rnnlm_arguments_still_save_and_load(tmp_path):
    # np.float32 / np.bool_ used to reach the JSON config: save_params failed after training.
    model = BetterRnnlm(np.int64(V), 8, 8, np.float32(0.25), tie_weights=np.True_, seed=0)
    path = model.save_params(tmp_path / "better.npz")
    rebuilt, _ = load_model(path)
    assert rebuilt.config == {"vocab_size": V, "wordvec_size": 8, "hidden_size": 8,
                              "num_layers": 2, "dropout_ratio": 0.25, "tie_weights": True}


def test_save_params_to_a_folder_says_to_name_a_file(tmp_path):
    with pytest.raises(ValueError, match=r"is a folder; give a file name in it, e\.g\. .*"
                                         r"SimpleRnnlm\.npz"):
        small_model().save_params(tmp_path)


# -- RnnlmTrainer and Trainer -----------------------------------------------------------------


@pytest.mark.parametrize("trainer", [RnnlmTrainer, Trainer])
@pytest.mark.parametrize("args, message", [
    (lambda: (small_model(), SGD), "optimizer must be an object, not the class SGD: build one"),
    (lambda: (SimpleRnnlm, SGD()), "model must be an object, not the class SimpleRnnlm"),
    (lambda: (small_model(), 0.1), r"optimizer must have update\(params, grads\)"),
])
def test_a_trainer_of_a_class_or_a_number_says_what_it_takes(trainer, args, message):
    # These used to fail at the first step, with "update() missing 1 required argument".
    with pytest.raises(TypeError, match=message):
        trainer(*args())


def test_fit_refuses_an_id_outside_the_vocabulary_before_training():
    corpus = np.random.default_rng(0).integers(0, V, size=3000)
    corpus[-10] = 99  # read by the last batches of the epoch only
    trainer = RnnlmTrainer(small_model(), SGD(0.1))
    with pytest.raises(ValueError, match=r"xs holds the id 99, outside the vocabulary range "
                                         r"\[0, 20\) of the model: was it encoded with"):
        trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=5, time_size=5,
                    verbose=False)
    assert trainer.iteration == 0  # it used to fail at iteration 118


def test_fit_takes_the_ignore_label_among_the_targets():
    ts = CORPUS[1:].copy()
    ts[::7] = -1
    trainer = RnnlmTrainer(small_model(), SGD(0.1))
    trainer.fit(CORPUS[:-1], ts, max_epoch=1, batch_size=5, time_size=5, verbose=False)
    assert trainer.epoch == 1


def test_plot_after_a_fit_shorter_than_eval_interval_draws_the_empty_axes(tmp_path):
    # matplotlib used to fail on the empty lines of the log axis.
    trainer = RnnlmTrainer(small_model(), SGD(0.1))
    trainer.fit(CORPUS[:-1], CORPUS[1:], max_epoch=2, batch_size=5, time_size=5,
                eval_interval=1000, max_iters=3, verbose=False)  # stopped in epoch 1
    assert trainer.ppl_list == [] and trainer.history["train_ppl"] == []
    fig = trainer.plot(path=tmp_path / "ppl.svg")
    assert "no training perplexity recorded yet" in fig.axes[0].texts[0].get_text()


def test_numpy_numbers_as_fit_arguments_train_and_checkpoint(tmp_path):
    # np.float32 lr_decay and np.int64 patience used to be refused by the schedules, and
    # an np.int64 eval_interval or seed failed the checkpoint's JSON at its first write.
    i = np.int64
    trainer = RnnlmTrainer(small_model(), SGD(np.float32(0.1)))
    trainer.fit(CORPUS[:-1], CORPUS[1:], max_epoch=i(2), batch_size=i(5), time_size=i(5),
                eval_interval=i(3), max_grad=np.float32(1.0), val_corpus=CORPUS,
                lr_decay=np.float32(2.0), patience=i(2), lr_halve_from=i(2),
                checkpoint=tmp_path / "lm.npz", verbose=False)
    assert RnnlmTrainer(small_model(), SGD(0.1)).resume(tmp_path / "lm.npz").epoch == 2
    x = np.random.default_rng(0).integers(0, V, size=(30, 4))
    Trainer(small_model(), SGD(0.1)).fit(x, x, max_epoch=i(1), batch_size=i(5), seed=i(3),
                                         checkpoint=tmp_path / "pairs.npz", verbose=False)
    assert Trainer(small_model(), SGD(0.1)).resume(tmp_path / "pairs.npz").seed == 3


@pytest.mark.parametrize("options, message", [
    (dict(seed=-1), "seed must be an integer >= 0, got -1"),
    (dict(seed=None), "seed must be an integer >= 0, got None"),
    (dict(verbose="no"), "verbose must be True or False, got 'no'"),
    (dict(restore_best=None), "restore_best must be True or False, got None"),
    (dict(val_data=np.zeros((3, 4), dtype=int)), r"val_data must be a pair \(x_val, t_val\)"),
    (dict(val_data=(np.zeros((3, 4), dtype=int), np.zeros((4, 4), dtype=int))),
     r"must have the same number of rows, at least one, got shapes \(3, 4\) and \(4, 4\)"),
    (dict(val_data=(np.zeros((0, 4), dtype=int), np.zeros((0, 4), dtype=int))),
     "at least one"),
])
def test_trainer_fit_refuses_bad_options_before_training(options, message):
    x = np.random.default_rng(0).integers(0, V, size=(30, 4))
    trainer = Trainer(small_model(), SGD(0.1))
    with pytest.raises(ValueError, match=message):
        trainer.fit(x, x, max_epoch=1, batch_size=5, **{"verbose": False, **options})
    assert trainer.epoch == trainer.iteration == 0


@pytest.mark.parametrize("val", [False, True])
def test_trainer_asks_for_a_single_question_answer_pair_as_rows(val):
    # One pair given as two 1-D sequences: the training pair used to be taken for a
    # language model's corpus (and sent to RnnlmTrainer, which refuses Seq2seq), and the
    # validation pair was told its rows did not match (3 against 4 ids).
    q, a = np.array([1, 2, 3]), np.array([0, 1, 2, 3])
    x, t, names = (q[None], a[None], r"val_data's x_val and t_val") if val else (q, a, "x and t")
    options = {"val_data": (q, a)} if val else {}
    trainer = Trainer(Seq2seq(5, 3, 4, seed=0), Adam())
    with pytest.raises(ValueError, match=rf"^{names} must be 2-D, \(N, T_enc\) and \(N, "
                                         rf"T_dec \+ 1\), .* got shapes \(3,\) and \(4,\); "
                                         rf"for a single pair give .*\[None\]"):
        trainer.fit(x, t, max_epoch=1, batch_size=1, verbose=False, **options)
    assert trainer.iteration == 0


def test_trainer_validates_a_stateful_model_in_batches_of_another_size():
    # The carried training state (5 rows) used to meet a validation batch of 3.
    x = np.random.default_rng(0).integers(0, V, size=(30, 4))
    trainer = Trainer(small_model(), SGD(0.1))
    trainer.fit(x, x, max_epoch=1, batch_size=5, val_data=(x[:3], x[:3]), verbose=False)
    assert len(trainer.history["val_loss"]) == 1


@pytest.mark.parametrize("last, message", [
    (V, r"corpus holds the id 20, outside the vocabulary range \[0, 20\)"),
    # -1, the loss layer's ignore_label, used to be left out of the loss yet counted in
    # the mean: a perplexity of the wrong number of tokens.
    (-1, r"corpus holds the id -1, outside the vocabulary range \[0, 20\)"),
])
def test_eval_perplexity_refuses_ids_outside_the_vocabulary(last, message):
    corpus = CORPUS.copy()
    corpus[-1] = last
    with pytest.raises(ValueError, match=message):
        eval_perplexity(small_model(), corpus)


def test_eval_perplexity_names_the_corpus_when_it_is_not_integer():
    with pytest.raises(TypeError, match="eval_perplexity: corpus must hold integer word ids"):
        eval_perplexity(small_model(), CORPUS.astype(float))


# -- the book's generate --------------------------------------------------------------------


def test_book_generate_takes_a_single_skip_id():
    model = small_model(RnnlmGen)
    ids = model.generate(1, skip_ids=3, sample_size=30, rng=0)
    assert len(ids) == 30 and 3 not in ids


def test_book_generate_refuses_a_negative_seed():
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator \(or a "
                                         r"BitGenerator or SeedSequence\), an integer seed >= 0 "
                                         r"or None"):
        small_model(RnnlmGen).generate(1, None, 5, rng=-1)


@pytest.mark.parametrize("trained, generating", [(Rnnlm, RnnlmGen), (BetterRnnlm, BetterRnnlmGen)])
def test_a_generating_model_loads_the_file_its_trained_model_saved(trained, generating, tmp_path,
                                                                    monkeypatch):
    # The book's flow; the docstring said so, but it looked for RnnlmGen.npz.
    monkeypatch.chdir(tmp_path)
    model = small_model(trained)
    model.save_params()
    reader = small_model(generating, seed=1)
    reader.load_params()
    assert all((a == b).all() for a, b in zip(reader.params, model.params, strict=True))


# -- found by a user's-eye audit -----------------------------------------------------------


def test_unsigned_ids_are_scored_as_signed_ones():
    """A uint8 corpus (a natural store for characters) cannot hold the padding's
    ignore label -1: the padding is built signed."""
    model = small_model(Rnnlm)
    expected = eval_perplexity(model, CORPUS)
    for dtype in (np.uint8, np.uint16, np.uint64):
        assert eval_perplexity(model, CORPUS.astype(dtype)) == expected
    trainer = RnnlmTrainer(small_model(Rnnlm), SGD(0.1))
    trainer.fit(CORPUS[:-1], CORPUS[1:], max_epoch=1, batch_size=4, time_size=5, verbose=False,
                val_corpus=CORPUS.astype(np.uint8))
    assert len(trainer.history["val_ppl"]) == 1


def test_a_fit_refused_at_the_call_leaves_the_trainer_as_it_was():
    """Float ids, or a batch size other than the carried state's, are refused
    before the lanes move on: the next good call runs as on a fresh trainer."""
    model, fresh = small_model(Rnnlm), small_model(Rnnlm)
    trainer = RnnlmTrainer(model, SGD(1.0))
    fit = dict(max_epoch=1, time_size=5, verbose=False)
    with pytest.raises(TypeError, match="xs must hold integer word ids, got dtype float32"):
        trainer.fit(CORPUS[:-1].astype(np.float32), CORPUS[1:], batch_size=4, **fit)
    assert trainer.time_idx == 0 and trainer.fit_start_epoch is None
    trainer.fit(CORPUS[:-1], CORPUS[1:], batch_size=4, **fit)
    RnnlmTrainer(fresh, SGD(1.0)).fit(CORPUS[:-1], CORPUS[1:], batch_size=4, **fit)
    assert all(np.array_equal(p, q) for p, q in zip(model.params, fresh.params, strict=True))
    time_idx = trainer.time_idx
    with pytest.raises(ValueError, match=r"the model carries a state of 4 rows from its last "
                                         r"batch, but batch_size is 3: give batch_size=4 to "
                                         r"go on with the run as it was \(a resumed one as its "
                                         r"checkpoint was trained\), or call "
                                         r"model.reset_state\(\) to go on with batches of 3"):
        trainer.fit(CORPUS[:-1], CORPUS[1:], batch_size=3, **fit)
    assert (trainer.time_idx, trainer.fit_start_epoch) == (time_idx, None)
    model.reset_state()
    trainer.fit(CORPUS[:-1], CORPUS[1:], batch_size=3, **fit)


def test_clip_grads_takes_a_generator_as_a_list():
    from common.util import clip_grads

    grads = [np.full(4, 3.0), np.full(2, 4.0)]
    norm = clip_grads((g for g in grads), 1.0)
    assert norm == pytest.approx(np.sqrt(4 * 9 + 2 * 16))
    assert np.sqrt(sum(float((g ** 2).sum()) for g in grads)) == pytest.approx(1.0, rel=1e-5)


def test_checkpoint_every_needs_a_checkpoint():
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint=PATH"):
        RnnlmTrainer(small_model(), SGD(0.1)).fit(CORPUS[:-1], CORPUS[1:], max_epoch=1,
                                                  batch_size=4, time_size=5, verbose=False,
                                                  checkpoint_every=3)


def test_an_update_refused_for_one_grad_changes_no_parameter():
    params = [np.ones(3, np.float32), np.ones(2, np.float32)]
    optimizer = Adam(0.1)
    for bad, error, message in ((np.ones(2, np.float64), TypeError,
                                 r"grads\[1\] has dtype float64, but params\[1\] has dtype "
                                 r"float32; convert it with .astype\(float32\)"),
                                ([1.0, 1.0], TypeError, r"grads\[1\] must be an array like "
                                                        r"params\[1\], got list")):
        with pytest.raises(error, match=message):
            optimizer.update(params, [np.ones(3, np.float32), bad])
        assert optimizer.t == 0 and not optimizer.state
        assert all((p == 1).all() for p in params)
    optimizer.lr = float("nan")  # set after construction, as a schedule might
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got nan"):
        optimizer.update(params, [np.ones(3, np.float32), np.ones(2, np.float32)])
    for make, message in ((lambda: Momentum(momentum=None), "momentum must be a number"),
                          (lambda: Adam(beta1="a"), "beta1 must be a number"),
                          (lambda: RMSprop(alpha=float("nan")), "alpha must be a number")):
        with pytest.raises(ValueError, match=message):
            make()
