"""Edge cases of the training helpers in common.util and of the gradient checker.

- ``clip_grads`` clips an exploding gradient even when its squared norm
  overflows float32 (it is finite; only its square is not);
- ``eval_perplexity`` of a model far from trained is ``inf``, not an
  ``OverflowError``, and ``perplexity`` (which the trainers use too) is
  ``exp`` wherever that is finite;
- ``numerical_gradient`` refuses what it cannot differentiate exactly, and
  ``check_layer`` a stateful layer.
"""

import math

import numpy as np
import pytest

from common.gradcheck import check_function, check_layer, numerical_gradient
from common.util import clip_grads, eval_perplexity, perplexity
from layers import TimeAffine, TimeRNN
from models import SimpleRnnlm


def test_clip_grads_clips_a_finite_gradient_whose_square_overflows():
    grads = [np.full(3, 1e20, np.float32), np.full(3, 1e20, np.float32)]
    norm = clip_grads(grads, 1.0)
    assert norm == pytest.approx(1e20 * math.sqrt(6), rel=1e-5)
    assert all(g.dtype == np.float32 for g in grads)
    clipped = math.sqrt(sum(float(g.astype(np.float64) @ g.astype(np.float64)) for g in grads))
    assert clipped == pytest.approx(1.0, rel=1e-5)


def test_clip_grads_scales_by_max_norm_over_the_norm_plus_a_millionth():
    """The book's and torch.nn.utils.clip_grad_norm_'s rule: visible where the
    norm is itself of the order of 1e-6."""
    grads = [np.array([2e-6], np.float64)]
    assert clip_grads(grads, 1e-6) == pytest.approx(2e-6, rel=1e-12)
    assert grads[0][0] == pytest.approx(1e-6 * 2e-6 / 3e-6, rel=1e-12)


def test_clip_grads_still_leaves_non_finite_gradients_alone():
    grads = [np.array([np.inf, 1.0], np.float32)]
    assert clip_grads(grads, 1.0) == math.inf
    assert grads[0][1] == 1.0


def test_eval_perplexity_of_a_hopeless_model_is_inf():
    model = SimpleRnnlm(30, 8, 8, seed=0)
    model.params[0][...] *= 100  # the embedding
    model.params[4][...] *= 1e3  # the output layer's W: a mean loss far above 709 nats
    corpus = np.random.default_rng(0).integers(0, 30, 600)
    assert eval_perplexity(model, corpus) == math.inf


@pytest.mark.parametrize("mean_loss", [0.0, 4.6, 709.0, 709.5, 709.78])
def test_perplexity_is_exp_up_to_the_largest_float(mean_loss):
    # (Before: the trainer's validation figure was inf from 709 nats on.)
    assert perplexity(mean_loss) == math.exp(mean_loss)


def test_perplexity_is_inf_past_the_largest_float():
    assert perplexity(709.8) == perplexity(1e6) == math.inf


def square_sum(x):
    return lambda: float((x.astype(np.float64) ** 2).sum())


@pytest.mark.parametrize("x", [np.array([1.0, 2.0], np.float32), np.array([1, 2])],
                         ids=["float32", "int"])
def test_numerical_gradient_needs_float64(x):
    # (float32 gave [1.9, 3.8] for d(sum x^2) at [1, 2]; ints gave [5e5, 1.5e6].)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(square_sum(x), x)


@pytest.mark.parametrize("eps", [0, -1e-6, float("nan")])
def test_numerical_gradient_needs_a_positive_step(eps):
    x = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="eps must be a number above 0"):
        numerical_gradient(square_sum(x), x, eps=eps)


def test_numerical_gradient_of_a_square_sum():
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(numerical_gradient(square_sum(x), x), [2.0, 4.0], rtol=1e-8)


def rnn(stateful):
    rng = np.random.default_rng(0)
    return TimeRNN(rng.standard_normal((3, 4)), rng.standard_normal((4, 4)) * 0.5,
                   rng.standard_normal(4), stateful=stateful)


def test_numerical_gradient_of_a_fortran_ordered_or_empty_array():
    x = np.asfortranarray(np.arange(6.0).reshape(3, 2))
    np.testing.assert_allclose(numerical_gradient(lambda: float((x ** 2).sum()), x), 2 * x,
                               rtol=1e-8)
    assert numerical_gradient(lambda: 0.0, np.zeros((0, 3))).shape == (0, 3)


def test_check_layer_takes_a_transposed_weight():
    # W.T is a natural way to share a weight with another layer: Fortran order.
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 3))
    errors = check_layer(TimeAffine(W.T, np.zeros(4)), [rng.standard_normal((2, 2, 3))])
    assert max(errors.values()) < 1e-7


def test_check_layer_refuses_a_stateful_layer():
    # (It reported an error of 0.91 for a right layer: each forward started from
    # the state the last one left.)
    xs = np.random.default_rng(1).standard_normal((2, 5, 3))
    with pytest.raises(ValueError, match="stateful.*check_function"):
        check_layer(rnn(stateful=True), [xs])
    assert max(check_layer(rnn(stateful=False), [xs]).values()) < 1e-6


def test_a_stateful_layer_is_checked_with_check_function_and_its_initial_state():
    layer = rnn(stateful=True)
    xs = np.random.default_rng(1).standard_normal((2, 5, 3))
    h0 = np.random.default_rng(2).standard_normal((2, 4))
    w = np.random.default_rng(3).standard_normal((2, 5, 4))

    def loss():
        layer.set_state(h0)
        return float((w * layer.forward(xs)).sum())

    def backward():
        loss()
        dxs = layer.backward(w)
        return [*layer.grads, dxs, layer.dh]

    errors = check_function(loss, backward, [*layer.params, xs, h0])
    assert max(errors) < 1e-6


class Masked:
    """A layer of one's own: ``x * mask`` scaled by a weight ``a``; the float
    mask has no gradient (backward returns only ``dx``)."""

    def __init__(self):
        self.params = [np.array([1.5])]
        self.grads = [np.zeros(1)]

    def forward(self, x, mask):
        self.cache = x, mask
        return self.params[0][0] * x * mask

    def backward(self, dout):
        x, mask = self.cache
        self.grads[0][0] = np.sum(dout * x * mask)
        return self.params[0][0] * dout * mask


def test_check_layer_says_which_input_has_no_gradient_and_what_to_pass():
    rng = np.random.default_rng(0)
    x, mask = rng.standard_normal((4, 2)), (rng.random((4, 2)) > 0.5).astype(float)
    with pytest.raises(ValueError, match=r"Masked.backward returned no gradient for input 1 "
                                         r"\(1 returned\).*pass check_inputs"):
        check_layer(Masked(), [x, mask])
    errors = check_layer(Masked(), [x, mask], check_inputs=[0])
    assert set(errors) == {"param0", "input0"} and max(errors.values()) < 1e-7
    for bad in ([2], [-1], [True], [0.0]):
        with pytest.raises(ValueError, match=r"check_inputs .* the position of an input, 0 \.\. 1"):
            check_layer(Masked(), [x, mask], check_inputs=bad)


def test_check_layer_checks_a_tied_array_by_the_sum_of_its_gradients():
    """Tied weights are one array listed at each place it is used, and the
    optimizers update it by the sum of its gradients: that sum is what the
    differences of the array measure, reported at each of its places."""
    from layers import Bidirectional, TimeLSTM

    rng = np.random.default_rng(4)
    Wx, Wh, b = rng.standard_normal((3, 20)), rng.standard_normal((5, 20)), rng.standard_normal(20)
    tied = Bidirectional(TimeLSTM(Wx, Wh, b), TimeLSTM(Wx, Wh, b))  # both directions' weights
    errors = check_layer(tied, [rng.standard_normal((2, 4, 3)) * 0.5])
    assert max(errors.values()) < 1e-6, errors
    for i in range(3):
        assert errors[f"param{i}"] == errors[f"param{i + 3}"]


def test_check_layer_still_finds_a_wrong_gradient_of_a_tied_array():
    class TiedScale:
        """``a * x + a * x``, with ``a`` listed twice; backward forgets the second use."""

        def __init__(self):
            a = np.array([1.5])
            self.params, self.grads = [a, a], [np.zeros(1), np.zeros(1)]

        def forward(self, x):
            self.x = x
            return 2 * self.params[0][0] * x

        def backward(self, dout):
            self.grads[0][0] = np.sum(dout * self.x)
            self.grads[1][0] = 0.0  # (should be the same as the first)
            return 2 * self.params[0][0] * dout

    errors = check_layer(TiedScale(), [np.random.default_rng(5).standard_normal(6)])
    assert errors["input0"] < 1e-8
    assert errors["param0"] == errors["param1"] == pytest.approx(0.5)

