"""Every layer's and model's analytic gradients against central differences.

All arrays here are float64: in float32 a finite difference is too noisy to
tell an exact gradient from a nearly right one. Each check returns the
largest relative error over all elements of one parameter or input.
"""

import numpy as np
import pytest

from common.gradcheck import check_function, check_layer
from layers import (
    RNN,
    Affine,
    Embedding,
    SoftmaxWithLoss,
    TimeAffine,
    TimeEmbedding,
    TimeRNN,
    TimeSoftmaxWithLoss,
    joint_weight_bias,
)
from models import SimpleRnnlm

TOL = 1e-6
N, T, D, H, V = 3, 4, 5, 6, 7


def randn(rng, *shape):
    return rng.standard_normal(shape)


def assert_exact(errors):
    worst = max(errors.values()) if isinstance(errors, dict) else max(errors)
    assert worst < TOL, errors


def test_the_check_sees_a_wrong_gradient(rng):
    """The checker itself: an Affine whose backward forgets a term of dx, or
    misscales db, fails it, and only on the wrong array."""

    class DxWithoutOneColumn(Affine):
        def backward(self, dout):
            dx = super().backward(dout)
            dx[:, 0] = 0.0
            return dx

    class DbTimesOnePointOne(Affine):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads[1] *= 1.1
            return dx

    x = randn(rng, N, D)
    errors = check_layer(DxWithoutOneColumn(randn(rng, D, H), randn(rng, H)), [x])
    assert errors["input0"] > 0.01 and errors["param0"] < TOL and errors["param1"] < TOL
    errors = check_layer(DbTimesOnePointOne(randn(rng, D, H), randn(rng, H)), [x])
    assert errors["param1"] == pytest.approx(0.1 / 1.1, rel=1e-4)
    assert errors["param0"] < TOL and errors["input0"] < TOL


def test_affine(rng):
    layer = Affine(randn(rng, D, H), randn(rng, H))
    assert_exact(check_layer(layer, [randn(rng, N, D)]))


def test_time_affine(rng):
    layer = TimeAffine(randn(rng, D, H), randn(rng, H))
    assert_exact(check_layer(layer, [randn(rng, N, T, D)]))


def test_time_affine_with_weight_and_bias_in_one_block(rng):
    W, b = joint_weight_bias(randn(rng, D, H), randn(rng, H))
    layer = TimeAffine(W, b)
    assert layer.Wb is not None  # the one-GEMM path
    assert_exact(check_layer(layer, [randn(rng, N, T, D)]))


def test_time_affine_transposed_for_weight_tying(rng):
    layer = TimeAffine(randn(rng, H, D), randn(rng, H), transpose=True)
    assert_exact(check_layer(layer, [randn(rng, N, T, D)]))


def test_embedding_with_repeated_ids(rng):
    layer = Embedding(randn(rng, V, D))
    ids = np.array([1, 3, 1, 0])  # id 1 twice: its gradient rows must add up
    assert_exact(check_layer(layer, [ids]))


def test_time_embedding(rng):
    layer = TimeEmbedding(randn(rng, V, D))
    xs = rng.integers(0, V, size=(N, T))
    assert_exact(check_layer(layer, [xs]))


def test_rnn_cell(rng):
    layer = RNN(randn(rng, D, H), randn(rng, H, H) * 0.5, randn(rng, H))
    assert_exact(check_layer(layer, [randn(rng, N, D), randn(rng, N, H)]))


def test_softmax_with_loss(rng):
    layer = SoftmaxWithLoss()
    assert_exact(check_layer(layer, [randn(rng, N, V), rng.integers(0, V, size=N)]))


def test_time_softmax_with_loss_and_ignored_targets(rng):
    layer = TimeSoftmaxWithLoss(ignore_label=-1)
    ts = rng.integers(0, V, size=(N, T))
    ts[0, 1] = ts[2, 3] = -1
    assert_exact(check_layer(layer, [randn(rng, N, T, V) * 3, ts]))


def rnn_state_check(layer, xs, h0, rng):
    """Check every weight, the inputs and the initial state of a TimeRNN."""
    w = rng.standard_normal((xs.shape[0], xs.shape[1], layer.params[1].shape[0]))

    def loss():
        layer.set_state(h0)
        return float(np.sum(w * layer.forward(xs)))

    def backward():
        loss()
        dxs = layer.backward(w)
        return [*layer.grads, dxs, layer.dh]

    return check_function(loss, backward, [*layer.params, xs, h0])


@pytest.mark.parametrize("stateful", [False, True])
def test_time_rnn_with_initial_state(rng, stateful):
    layer = TimeRNN(randn(rng, D, H), randn(rng, H, H) * 0.5, randn(rng, H), stateful=stateful)
    assert_exact(rnn_state_check(layer, randn(rng, N, T, D), randn(rng, N, H), rng))


@pytest.mark.parametrize("stateful", [False, True])
def test_time_rnn_from_zero_state(rng, stateful):
    layer = TimeRNN(randn(rng, D, H), randn(rng, H, H) * 0.5, randn(rng, H), stateful=stateful)
    xs = randn(rng, N, T, D)
    w = randn(rng, N, T, H)

    def loss():
        layer.reset_state()
        return float(np.sum(w * layer.forward(xs)))

    def backward():
        loss()
        return [*layer.grads, layer.backward(w)]

    assert_exact(check_function(loss, backward, [*layer.params, xs]))


def test_stateful_rnn_carries_state_but_truncates_gradient(rng):
    layer = TimeRNN(randn(rng, D, H), randn(rng, H, H) * 0.5, randn(rng, H), stateful=True)
    hs1 = layer.forward(randn(rng, N, T, D))
    # The next batch starts from the last hidden state of the first ...
    np.testing.assert_array_equal(layer.h, hs1[:, -1])
    # ... which is a constant for its backward pass: the gradients of batch 2
    # w.r.t. weights, inputs and that carried state are exact.
    assert_exact(rnn_state_check(layer, randn(rng, N, T, D), layer.h.copy(), rng))


def test_simple_rnnlm_end_to_end(rng):
    model = SimpleRnnlm(vocab_size=V, wordvec_size=D, hidden_size=H, seed=0, dtype=np.float64)
    # Larger than the default init so that every gradient is well above round-off.
    for p in model.params:
        p[...] = randn(rng, *p.shape) * 0.5
    xs = rng.integers(0, V, size=(N, T))
    ts = rng.integers(0, V, size=(N, T))

    def loss():
        model.reset_state()
        return model.forward(xs, ts)

    def backward():
        loss()
        model.backward()
        return model.grads

    assert_exact(check_function(loss, backward, model.params))
