"""Models composed in unusual ways: what a probe that built new model
families from the documented pieces found, each fixed.

- One layer object listed at two places of a model was taken: its second
  forward overwrote the inputs its first backward needed, and its grads
  held one use's gradient, so training went on with wrong gradients.
  Refused when the model is built; two layers over the same arrays (a tie)
  are the way to share weights.
- The book's tie, ``TimeAffine(W.T, b)``, was clipped as two arrays by
  ``fit``: ``merge_tied_grads`` merged only an array listed twice, where
  the book's ``remove_duplicate`` also merges a transposed one.
- The gradient through time of a model whose ``predict`` is not the chain
  of its layers (a residual connection) was computed up that chain anyway,
  silently wrong.
- A replicable class whose constructor takes no ``dtype`` was refused by
  the helper with advice about importing the class.
- Arrays added after the model was built: the message now says to list
  them again with ``_collect_params``.
"""

import numpy as np
import pytest
from test_models import check_model

from common.batch_worker import BatchWorker, ReplicaRefused
from common.inspection import gradient_through_time
from common.optimizer import SGD
from common.trainer import RnnlmTrainer
from common.util import merge_tied_grads
from layers import TimeAffine, TimeEmbedding, TimeLSTM, TimeRNN, TimeSoftmaxWithLoss
from models import LanguageModel

V, H = 20, 6


def _weights(seed, dtype):
    rng = np.random.default_rng(seed)

    def randn(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(dtype)

    return randn, lambda n: np.zeros(n, dtype)


class SharedRnnLm(LanguageModel):
    """Two recurrent layers with one set of weights: two layer objects over
    the same arrays (``same_object=True``: one object at both places)."""

    def __init__(self, V, H, same_object=False, seed=0, dtype=np.float32):
        randn, zeros = _weights(seed, dtype)
        self.config = {"V": V, "H": H, "same_object": same_object}
        rnn = TimeRNN(randn(H, H), randn(H, H), zeros(H), stateful=True)
        second = rnn if same_object else TimeRNN(*rnn.params, stateful=True)
        self.layers = [TimeEmbedding(randn(V, H)), rnn, second, TimeAffine(randn(H, V), zeros(V))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b",
                              "rnn.Wx", "rnn.Wh", "rnn.b", "affine.W", "affine.b"])


def test_one_layer_object_at_two_places_is_refused_when_the_model_is_built():
    with pytest.raises(ValueError, match=r"layers 1 and 2 are one TimeRNN object: .* cannot be "
                                         r"used at two places .* build a second TimeRNN over "
                                         r"the same arrays"):
        SharedRnnLm(V, H, same_object=True)


def test_two_layers_over_the_same_arrays_share_them_with_exact_gradients():
    check_model(SharedRnnLm(V, H, dtype=np.float64), np.random.default_rng(1))


class BookTiedLm(LanguageModel):
    """An LSTM language model whose output layer reads the embedding's
    matrix: as the book ties it (``TimeAffine(W.T, b)``, a transposed view)
    or as rnnlab does (``transpose=True``, the array itself)."""

    def __init__(self, V, H, book=True, seed=0):
        randn, zeros = _weights(seed, np.float32)
        self.config = {"V": V, "H": H, "book": book}
        W = randn(V, H)
        affine = (TimeAffine(W.T, zeros(V)) if book
                  else TimeAffine(W, zeros(V), transpose=True))
        self.layers = [TimeEmbedding(W), TimeLSTM(randn(H, 4 * H), randn(H, 4 * H),
                                                  zeros(4 * H), stateful=True), affine]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "lstm.Wx", "lstm.Wh", "lstm.b", "affine.W",
                              "affine.b"])


def test_merge_tied_grads_merges_the_books_transposed_tie_as_remove_duplicate_does():
    W, b = np.arange(6.0).reshape(2, 3), np.zeros(3)
    dW, db, dWT = np.ones((2, 3)), np.ones(3), np.arange(6.0).reshape(3, 2)
    whole = dW + dWT.T
    merge_tied_grads([W, b, W.T], [dW, db, dWT])
    np.testing.assert_array_equal(dW, whole)
    np.testing.assert_array_equal(dWT, 0.0)
    np.testing.assert_array_equal(db, 1.0)
    # Another array of the transposed shape is not tied: left as it is.
    dA, dB = np.ones((2, 3)), np.ones((3, 2))
    merge_tied_grads([np.zeros((2, 3)), np.zeros((3, 2))], [dA, dB])
    np.testing.assert_array_equal(dB, 1.0)


def test_fit_clips_the_books_transposed_tie_by_its_whole_gradient():
    # SGD steps the one matrix by both gradients either way; with a clip, the
    # book's tie gave another norm (the two gradients as two arrays).
    ids = np.random.default_rng(0).integers(0, 30, 400)
    trained = []
    for book in (True, False):
        model = BookTiedLm(30, 8, book=book)
        RnnlmTrainer(model, SGD(1.0)).fit(ids[:-1], ids[1:], max_epoch=1, batch_size=4,
                                          time_size=5, max_grad=0.25, verbose=False)
        trained.append(model.params[0])
    np.testing.assert_array_equal(trained[0], trained[1])


class ResidualLm(LanguageModel):
    """Scores from ``h + embedding``: ``predict`` is not the chain of its layers."""

    def __init__(self, V, H, seed=0):
        randn, zeros = _weights(seed, np.float32)
        self.config = {"V": V, "H": H}
        self.layers = [TimeEmbedding(randn(V, H)),
                       TimeLSTM(randn(H, 4 * H), randn(H, 4 * H), zeros(4 * H), stateful=True),
                       TimeAffine(randn(H, V), zeros(V))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "lstm.Wx", "lstm.Wh", "lstm.b", "affine.W",
                              "affine.b"])

    def predict(self, xs, train_flg=None):
        embed, lstm, affine = self.layers
        e = embed.forward(xs)
        return affine.forward(lstm.forward(e) + e)

    def backward(self, dout=1):
        embed, lstm, affine = self.layers
        da = affine.backward(self.loss_layer.backward(dout))
        return embed.backward(lstm.backward(da) + da)


def test_gradient_through_time_refuses_a_model_that_is_not_a_chain():
    xs = np.random.default_rng(0).integers(0, V, (2, 4))
    with pytest.raises(ValueError, match=r"ResidualLm.predict does not compute its scores from "
                                         r"its top recurrent layer's h \(TimeLSTM\) through the "
                                         r"layers after it"):
        gradient_through_time(ResidualLm(V, H), xs, xs)


class NoDtypeLm(LanguageModel):
    """Opted in to the halves, but its constructor takes no ``dtype``."""

    replicable = True

    def __init__(self, V, H, seed=0):
        randn, zeros = _weights(seed, np.float32)
        self.config = {"V": V, "H": H}
        self.layers = [TimeEmbedding(randn(V, H)),
                       TimeRNN(randn(H, H), randn(H, H), zeros(H), stateful=True),
                       TimeAffine(randn(H, V), zeros(V))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b", "affine.W", "affine.b"])


def test_a_replicable_constructor_without_dtype_is_named_before_any_process_starts():
    worker = BatchWorker()
    with pytest.raises(ReplicaRefused, match=r"NoDtypeLm\(\*\*config, dtype=\.\.\.\), as the "
                                             r"helper builds the replica, does not fit its "
                                             r"constructor \(.*'dtype'\)"):
        worker.begin(NoDtypeLm(V, H), (4, 5), (4, 5))
    assert worker.process is None


def test_arrays_added_after_building_are_refused_with_how_to_list_them_again():
    model = SharedRnnLm(V, H)
    model.layers.insert(3, TimeAffine(np.zeros((H, H), np.float32), np.zeros(H, np.float32)))
    with pytest.raises(ValueError, match=r"After adding or removing a layer, list the arrays "
                                         r"again with a name for each: "
                                         r"model._collect_params\(names\)"):
        model._check_arrays()
    names = model.param_names[:7] + ["proj.W", "proj.b"] + model.param_names[7:]
    model._collect_params(names)
    model._check_arrays()  # listed again: accepted


def test_gradient_through_time_of_a_model_with_a_nan_weight_is_nan_not_refused():
    from models import Rnnlm

    model = Rnnlm(V, 8, 8, seed=0)
    model.params[-2][0, 0] = np.nan  # (the output layer's: every score NaN)
    xs = np.random.default_rng(0).integers(0, V, (2, 4))
    assert np.isnan(gradient_through_time(model, xs, xs)).all()
