"""What an audit of the Python API found, each pinned by a test.

A validation perplexity taken between ``forward`` and ``backward`` made the
backward run on the last validation batch; a loss whose ``ignore_label`` is
a padding id got a perplexity other than its training loss's, and one that
scores every target (``ignore_label=None``) crashed at the end of the first
epoch; ``eps=0`` filled unseen words' embedding rows with NaN (see
tests/test_api_misuse.py); and a few mistakes gave NumPy's words or a
misleading message instead of one that says how to fix them.
"""

import warnings

import numpy as np
import pytest

from common.optimizer import SGD
from common.trainer import RnnlmTrainer, Trainer
from common.util import clip_grads, clip_grads_value, eval_perplexity
from layers import (
    Bidirectional,
    SoftmaxWithLoss,
    TimeAffine,
    TimeAttention,
    TimeDropout,
    TimeEmbedding,
    TimeLSTM,
    TimeRNN,
    TimeSoftmaxWithLoss,
)
from models import Rnnlm, RnnlmGen, Seq2seq, SimpleRnnlm, load_model
from models.base import Model

V = 20


def corpus(n=101, seed=0):
    return np.random.default_rng(seed).integers(0, V, n)


def batch(seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (4, 6)), rng.integers(0, V, (4, 6))


@pytest.mark.parametrize("between", [
    lambda model: eval_perplexity(model, corpus()),
    lambda model: model.predict(batch(seed=2)[0]),
])
def test_backward_after_evaluating_or_predicting_is_refused(between):
    # It would have filled grads from the batch just evaluated, not the training batch.
    model = Rnnlm(V, 8, 8, seed=0)
    model.forward(*batch())
    between(model)
    with pytest.raises(RuntimeError, match="predicting or evaluating in between"):
        model.backward()
    model.reset_state()  # forward again (from where the reference starts): its backward
    model.forward(*batch())
    model.backward()
    reference = Rnnlm(V, 8, 8, seed=0)
    reference.forward(*batch())
    reference.backward()
    for g, expected in zip(model.grads, reference.grads, strict=True):
        np.testing.assert_array_equal(g, expected)


def test_perplexity_with_a_padding_id_as_ignore_label_is_the_training_losss():
    # The mean is over the targets the loss scores, as in training.
    model = Rnnlm(V, 8, 8, seed=0)
    model.loss_layer = TimeSoftmaxWithLoss(ignore_label=0)
    ids = corpus()
    assert (ids[1:] == 0).any()
    model.reset_state()
    loss = model.forward(ids[None, :-1], ids[None, 1:])
    for time_size in (100, 9):  # one lane: the state goes on from piece to piece
        assert eval_perplexity(model, ids, batch_size=1, time_size=time_size) == pytest.approx(
            np.exp(loss), rel=1e-5)
    assert model.loss_layer.ignore_label == 0


def test_perplexity_of_a_loss_that_scores_every_target():
    # The same as with the default ignore_label -1, which no id of a corpus is;
    # 7 lanes of 15 for 100 targets: padded.
    model = Rnnlm(V, 8, 8, seed=0)
    expected = eval_perplexity(model, corpus(), batch_size=7, time_size=9)
    model.loss_layer = TimeSoftmaxWithLoss(ignore_label=None)
    assert eval_perplexity(model, corpus(), batch_size=7, time_size=9) == expected
    assert model.loss_layer.ignore_label is None  # given back after evaluating


def test_validation_with_a_loss_that_scores_every_target_gets_through_an_epoch():
    model = SimpleRnnlm(V, 8, 8, seed=0)
    model.loss_layer = TimeSoftmaxWithLoss(ignore_label=None)
    ids = corpus(201)
    trainer = RnnlmTrainer(model, SGD(0.1))
    trainer.fit(ids[:-1], ids[1:], max_epoch=1, batch_size=4, time_size=5,
                val_corpus=corpus(seed=3), verbose=False)
    assert len(trainer.history["val_ppl"]) == 1 and np.isfinite(trainer.history["val_ppl"][0])


def test_perplexity_of_a_corpus_whose_every_target_is_ignored_is_refused():
    model = Rnnlm(V, 8, 8, seed=0)
    model.loss_layer = TimeSoftmaxWithLoss(ignore_label=0)
    with pytest.raises(ValueError, match="nothing to score"):
        eval_perplexity(model, np.zeros(10, dtype=np.int64))


def test_perplexity_of_a_sequence_to_sequence_model_is_refused():
    with pytest.raises(TypeError, match="seq2seq_accuracy"):
        eval_perplexity(Seq2seq(V, 4, 4, seed=0), corpus())


def test_set_state_refuses_entries_of_different_batches():
    model = Rnnlm(V, 8, 8, seed=0)
    with pytest.raises(ValueError, match=r"\[2, 3\] rows"):
        model.set_state([np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32)])


def _forwarded(layer, *inputs):
    out = layer.forward(*inputs)
    return layer, out


@pytest.mark.parametrize("make", [
    lambda: _forwarded(TimeRNN(*_rnn_weights(1)), _xs()),
    lambda: _forwarded(TimeLSTM(*_rnn_weights(4)), _xs()),
    lambda: _forwarded(TimeAffine(np.ones((3, 2), np.float32), np.zeros(2, np.float32)), _xs()),
    lambda: _forwarded(TimeEmbedding(np.ones((5, 3), np.float32)), np.array([[1, 2]])),
    lambda: _forwarded(TimeAttention(), _xs(), _xs()),
    lambda: _forwarded(Bidirectional(TimeLSTM(*_rnn_weights(4)), TimeLSTM(*_rnn_weights(4))),
                       _xs()),
], ids=["TimeRNN", "TimeLSTM", "TimeAffine", "TimeEmbedding", "TimeAttention",
        "Bidirectional"])
def test_a_time_layers_backward_refuses_a_list(make):
    layer, out = make()
    with pytest.raises(TypeError, match="must be an array of shape"):
        layer.backward(out.tolist())


def _rnn_weights(gates, D=3, H=3):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((D, gates * H)).astype(np.float32),
            rng.standard_normal((H, gates * H)).astype(np.float32),
            np.zeros(gates * H, np.float32))


def _xs():
    return np.random.default_rng(1).standard_normal((2, 2, 3)).astype(np.float32)


@pytest.mark.parametrize("dout, error, match", [
    (np.ones(3), TypeError, "one real number"),
    ("2", TypeError, "one real number"),
    (float("nan"), ValueError, "finite"),
])
def test_the_losss_backward_takes_one_finite_number(dout, error, match):
    loss = TimeSoftmaxWithLoss()
    loss.forward(np.zeros((1, 2, 3), np.float32), np.array([[0, 1]]))
    with pytest.raises(error, match=match):
        loss.backward(dout)
    # A scale given as a NumPy number or 0-d array is one number too.
    np.testing.assert_allclose(loss.backward(np.array(2.0)).sum(), 0.0, atol=1e-6)


def test_the_books_generate_takes_a_0d_start_id_and_refuses_a_bool_skip_ids():
    model = RnnlmGen(V, 8, 8, seed=0)
    assert model.generate(np.array(2), sample_size=5, rng=0) == model.generate(
        2, sample_size=5, rng=0)
    with pytest.raises(ValueError, match="skip_ids must be an id or a list of ids"):
        model.generate(2, skip_ids=True)


@pytest.mark.parametrize("ratio, rng, match", [
    ("0.5", None, "dropout_ratio must be a number in"),
    (float("nan"), None, "dropout_ratio must be a number in"),
    (0.5, -1, "rng must be a numpy.random.Generator"),
    (0.5, "seed", "rng must be a numpy.random.Generator"),
])
def test_dropout_refuses_a_bad_ratio_or_rng(ratio, rng, match):
    with pytest.raises(ValueError, match=match):
        TimeDropout(ratio, rng=rng)


class Unregistered(Rnnlm):
    """A model class of one's own, not in models.MODEL_CLASSES."""


class NoConfig(Model):
    def __init__(self):
        self.layers = [TimeEmbedding(np.ones((5, 3), np.float32))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed_W"])


def test_loading_a_class_of_ones_own_says_how_to_register_it(tmp_path):
    path = Unregistered(V, 4, 4, seed=0).save_params(tmp_path / "mine.npz")
    with pytest.raises(ValueError, match=r"models\.MODEL_CLASSES\['Unregistered'\] = "
                                         r"Unregistered"):
        load_model(path)


def test_saving_a_model_without_config_says_what_to_set(tmp_path):
    with pytest.raises(TypeError, match=r"self\.config = dict\("):
        NoConfig().save_params(tmp_path / "x.npz")


def test_trainer_points_a_language_model_on_one_corpus_to_rnnlm_trainer():
    ids = corpus()
    with pytest.raises(TypeError, match=r"RnnlmTrainer\(SimpleRnnlm, optimizer\)\.fit"):
        Trainer(SimpleRnnlm(V, 8, 8, seed=0), SGD(0.1)).fit(ids[:-1], ids[1:], max_epoch=1,
                                                           batch_size=8)


def test_a_numpy_float64_scale_works_in_the_gradients_dtype():
    # From a float32 audit: the one-step loss's scale ran in float64 for a
    # np.float64 dout (slower, and the bits depended on the scalar's type).
    # (clip_grads_value's float64 clip gave the same bits, only slower: no test.)
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 5)).astype(np.float32), rng.integers(0, 5, 6)
    loss = SoftmaxWithLoss()
    loss.forward(x, t)
    plain = loss.backward(0.3)
    loss.forward(x, t)
    np.testing.assert_array_equal(loss.backward(np.float64(0.3)), plain)


# -- an audit of numerical edge cases ------------------------------------------------------


def test_book_generate_samples_among_allowed_ids_when_a_skipped_one_towers_above_them():
    """A skipped id 1000 nats above the rest underflowed every allowed
    probability to 0: 'non-finite scores' for a model whose scores are all finite."""
    model = RnnlmGen(vocab_size=5, wordvec_size=4, hidden_size=4, seed=0)
    dict(model.named_params())["affine.b"][0] = 1000.0
    ids = model.generate(1, skip_ids=[0], sample_size=30, rng=0)
    assert len(ids) == 30 and 0 not in ids[1:]
    model.reset_state()  # a 0-d array is one id, as for start_id
    assert 3 not in model.generate(1, skip_ids=np.array(3), sample_size=20, rng=0)


def test_a_read_only_parameter_is_refused_before_any_parameter_changes():
    """np.load(mmap_mode='r') weights: the update failed inside NumPy after
    stepping the parameters before it (a retry stepped them twice)."""
    from common.optimizer import Adam

    first, frozen = np.ones(3, np.float32), np.ones(3, np.float32)
    frozen.flags.writeable = False
    adam = Adam(lr=0.1)
    with pytest.raises(ValueError, match=r"params\[1\] is read-only.*writable copy"):
        adam.update([first, frozen], [np.ones(3, np.float32)] * 2)
    assert (first == 1).all() and adam.t == 0 and not adam.state


@pytest.mark.parametrize("name", ["Adam", "AdaGrad", "RMSprop"])
def test_an_eps_that_rounds_to_zero_in_the_parameters_dtype_is_refused(name):
    """eps=1e-50 is 0 in float32: a weight whose gradient is 0 became 0/0 = NaN."""
    import common.optimizer

    p = np.ones(3, np.float32)
    optimizer = getattr(common.optimizer, name)(lr=0.1, eps=1e-50)
    with pytest.raises(ValueError, match=r"eps=1e-50 rounds to 0 .*float32"):
        optimizer.update([p], [np.zeros(3, np.float32)])
    assert (p == 1).all()
    p64 = np.ones(3)  # (float64 holds it)
    optimizer.update([p64], [np.zeros(3)])
    assert (p64 == 1).all()


def test_models_are_float32_or_float64():
    """float16 was accepted, and Adam's default eps rounds to 0 in it."""
    with pytest.raises(ValueError, match="dtype must be"):
        Rnnlm(vocab_size=5, wordvec_size=4, hidden_size=4, dtype=np.float16)
    assert Rnnlm(vocab_size=5, wordvec_size=4, hidden_size=4, dtype=np.float64).params[0].dtype \
        == np.float64


def test_a_confident_rows_loss_is_not_negative():
    """log(s * exp(-x_t)) rounded to -1.2e-07 for logits [17, 0]; a one-word
    vocabulary got a perplexity below 1."""
    margins = np.linspace(10, 40, 301, dtype=np.float32)
    x = np.stack([margins, np.zeros_like(margins)], axis=1)[None]  # (1, 301, 2)
    loss_layer = TimeSoftmaxWithLoss()
    for t in range(301):
        assert loss_layer.forward(x[:, t:t + 1], np.array([[0]])) >= 0
    # (Not below 1; exactly 1 only where exp and log round so: a CPU's SIMD loops.)
    assert 1.0 <= eval_perplexity(SimpleRnnlm(1, 4, 4, seed=0), np.zeros(50, int)) < 1 + 1e-6


# -- float16 and the edges of the clips (a probe of common.functions and common.util) -------


def test_float16_softmax_and_losses_hold_past_65504_classes_or_rows():
    # (The sums passed float16's largest number: softmax all 0, log_softmax
    # -inf, the loss layer's gradient all 0, and log(0) unguarded.)
    from common.functions import cross_entropy_error, log_softmax, softmax
    from layers import TimeSoftmaxWithLoss

    x = np.zeros((1, 70000), np.float16)
    assert softmax(x).dtype == np.float16 and softmax(x)[0, 0] == np.float16(1 / 70000)
    assert log_softmax(x)[0, 0] == np.float16(-np.log(70000))
    assert cross_entropy_error(np.array([[1.0, 0.0]], np.float16), np.array([1])) == \
        pytest.approx(-np.log(1e-12))
    rng = np.random.default_rng(0)
    xs, ts = rng.standard_normal((700, 100, 4)).astype(np.float16), rng.integers(0, 4, (700, 100))
    half, single = TimeSoftmaxWithLoss(), TimeSoftmaxWithLoss()
    half.forward(xs, ts)
    single.forward(xs.astype(np.float32), ts)
    np.testing.assert_allclose(half.backward().astype(np.float32), single.backward(),
                               atol=1e-7)


def test_clip_grads_scales_an_array_listed_twice_once_and_float16_whole():
    # (Listed twice, an array was scaled twice; float16 squares overflowed the
    # norm, and a float16 rate of 1e-8 rounded to 0.)
    g = np.array([3.0, 4.0])
    assert clip_grads([g, g], 1.0) == 5.0
    np.testing.assert_allclose(np.linalg.norm(g), 1.0, rtol=1e-6)
    h = np.full(10**6, 60000, np.float16)
    assert clip_grads([h], 1.0) == pytest.approx(6e7, rel=1e-3)
    assert np.linalg.norm(h.astype(np.float64)) == pytest.approx(1.0, rel=1e-3)


def test_softmax_of_integer_scores_is_still_a_distribution():
    # (The float16 fix summed in the input's own dtype: int64 rows were cut to
    # integers, and log_softmax gave integers.)
    from common.functions import log_softmax, softmax

    np.testing.assert_allclose(softmax(np.array([1, 2, 3])), [0.09003057, 0.24472847,
                                                              0.66524096], rtol=1e-7)
    np.testing.assert_allclose(log_softmax(np.array([1, 2, 3])),
                               np.log([0.09003057, 0.24472847, 0.66524096]), rtol=1e-6)


def test_clip_grads_value_refuses_a_bound_that_would_zero_every_gradient():
    g, first = np.ones(3, np.float16), np.full(3, 5.0)
    with pytest.raises(ValueError, match="rounds to 0 in float16"):
        clip_grads_value([first, g], 1e-9)
    np.testing.assert_array_equal(first, 5.0)  # (refused before any array is clipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a bound past float16's range: no overflow warning)
        clip_grads_value([g], 1e6)
    np.testing.assert_array_equal(g, 1)
    clip_grads_value([g], 4e-8)  # (float16's smallest number, 6e-8, is the bound)
    np.testing.assert_array_equal(g, np.float16(4e-8))


def test_a_float32_dout_for_float64_logits_gives_no_overflow_warning():
    from models import Rnnlm

    model = Rnnlm(5, 3, 4, seed=0, dtype=np.float64)
    xs = np.zeros((2, 3), int)
    model.forward(xs, xs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.backward(np.float32(0.5))
