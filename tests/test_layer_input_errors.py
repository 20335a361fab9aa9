"""Bad input to a layer gets one clear error that says what to fix, not a
traceback from deep inside NumPy: empty batches, backward before forward,
mismatched weights and gradients, and gradient checks in float32."""

import numpy as np
import pytest

from common.gradcheck import check_function, check_layer
from layers import (
    GRU,
    LSTM,
    RNN,
    Affine,
    Attention,
    AttentionWeight,
    Bidirectional,
    Embedding,
    TimeAffine,
    TimeAttention,
    TimeBiLSTM,
    TimeDropout,
    TimeEmbedding,
    TimeGRU,
    TimeLSTM,
    TimeRNN,
    WeightSum,
    joint_weight_bias,
)

N, T, D, H, V = 2, 3, 5, 4, 7


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def lstm_weights(rng, D, H, dtype=np.float32):
    return [rng.standard_normal(s).astype(dtype) for s in ((D, 4 * H), (H, 4 * H), (4 * H,))]


# Each maker returns (layer, a good input of shape (n, t, ...), the gradient backward takes).
MAKERS = {
    "TimeAffine": lambda rng, n, t: (TimeAffine(f32(rng, D, V), f32(rng, V)),
                                     f32(rng, n, t, D), f32(rng, n, t, V)),
    "TimeRNN": lambda rng, n, t: (TimeRNN(f32(rng, D, H), f32(rng, H, H), f32(rng, H)),
                                  f32(rng, n, t, D), f32(rng, n, t, H)),
    "TimeLSTM": lambda rng, n, t: (TimeLSTM(*lstm_weights(rng, D, H)),
                                   f32(rng, n, t, D), f32(rng, n, t, H)),
    "TimeGRU": lambda rng, n, t: (TimeGRU(f32(rng, D, 3 * H), f32(rng, H, 3 * H),
                                          f32(rng, 3 * H), f32(rng, 3 * H)),
                                  f32(rng, n, t, D), f32(rng, n, t, H)),
    "TimeEmbedding": lambda rng, n, t: (TimeEmbedding(f32(rng, V, D)),
                                        rng.integers(0, V, size=(n, t)), f32(rng, n, t, D)),
}


# --- empty batches ------------------------------------------------------------------


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("n, t", [(0, T), (N, 0)])
def test_time_layers_reject_an_empty_batch(rng, kind, n, t):
    layer, xs, _ = MAKERS[kind](rng, n, t)
    shape = str(xs.shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"has shape {shape}: a batch needs at least one "
                                         r"sequence \(N >= 1\) and one time step \(T >= 1\)"):
        layer.forward(xs)


@pytest.mark.parametrize("enc, dec", [((0, T, H), (0, 2, H)), ((N, 0, H), (N, 2, H)),
                                      ((N, T, H), (N, 0, H))])
def test_time_attention_rejects_an_empty_batch(rng, enc, dec):
    with pytest.raises(ValueError, match="a batch needs at least one sequence"):
        TimeAttention().forward(f32(rng, *enc), f32(rng, *dec))


# --- backward before forward --------------------------------------------------------


@pytest.mark.parametrize("kind", MAKERS)
def test_backward_before_forward_says_so(rng, kind):
    layer, _, dout = MAKERS[kind](rng, N, T)
    with pytest.raises(RuntimeError, match=rf"{kind}.backward\(\) called before forward\(\)"):
        layer.backward(dout)


@pytest.mark.parametrize("make, args", [
    (lambda rng: RNN(f32(rng, 3, H), f32(rng, H, H), f32(rng, H)), (H,)),
    (lambda rng: LSTM(f32(rng, 3, 4 * H), f32(rng, H, 4 * H), f32(rng, 4 * H)), (H, H)),
    (lambda rng: GRU(f32(rng, 3, 3 * H), f32(rng, H, 3 * H), f32(rng, 3 * H), f32(rng, 3 * H)),
     (H,)),
    (lambda rng: Embedding(f32(rng, 5, H)), (H,)),
    (lambda rng: AttentionWeight(), (T,)),
    (lambda rng: WeightSum(), (H,)),
])
def test_a_one_step_layers_backward_before_forward_says_so(rng, make, args):
    layer = make(rng)
    douts = [f32(rng, N, width) for width in args]
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}.backward\(\) called "
                                           r"before forward\(\)"):
        layer.backward(*douts)


def test_attention_backward_before_forward_says_so(rng):
    with pytest.raises(RuntimeError, match=r"TimeAttention.backward\(\) called before"):
        TimeAttention().backward(f32(rng, N, 2, H))


def test_dropout_backward_needs_a_forward_and_is_the_identity_after_an_eval_forward(rng):
    dys = f32(rng, N, T, H)
    layer = TimeDropout(0.5)
    with pytest.raises(RuntimeError, match=r"TimeDropout.backward\(\) called before"):
        layer.backward(dys)
    layer.train_flg = False
    layer.forward(f32(rng, N, T, H))
    assert layer.backward(dys) is dys


# --- TimeAffine and Affine ----------------------------------------------------------


@pytest.mark.parametrize("cls", [Affine, TimeAffine])
def test_affine_weights_are_checked_when_built(rng, cls):
    with pytest.raises(ValueError, match=r"b must have shape \(7,\), one bias per output"):
        cls(f32(rng, D, V), f32(rng, V + 1))
    with pytest.raises(TypeError, match=r"W must be a float array.*astype\(np.float32\)"):
        cls(np.ones((D, V), dtype=int), np.zeros(V, dtype=int))
    with pytest.raises(TypeError, match="b has dtype float64 but the layer's weights are float32"):
        cls(f32(rng, D, V), np.zeros(V))


def test_time_affine_checks_b_against_a_transposed_w(rng):
    TimeAffine(f32(rng, V, D), f32(rng, V), transpose=True)  # W (M, D): fine
    with pytest.raises(ValueError, match=r"shape \(7,\).*transpose=True; got \(5,\)"):
        TimeAffine(f32(rng, V, D), f32(rng, D), transpose=True)


@pytest.mark.parametrize("joint", [False, True])
def test_time_affine_backward_checks_dy(rng, joint):
    W, b = f32(rng, D, V), f32(rng, V)
    layer = TimeAffine(*(joint_weight_bias(W, b) if joint else (W, b)))
    layer.forward(f32(rng, N, T, D))
    for bad in [(N, T, V + 1), (N + 1, T, V), (N * T, V)]:
        with pytest.raises(ValueError, match=r"dy must have shape \(2, 3, 7\) \(the forward's"):
            layer.backward(f32(rng, *bad))
    with pytest.raises(TypeError, match="dy has dtype float64.*astype\\(float32\\)"):
        layer.backward(np.ones((N, T, V)))


def test_affine_backward_checks_dy(rng):
    layer = Affine(f32(rng, D, V), f32(rng, V))
    with pytest.raises(RuntimeError, match=r"Affine.backward\(\) called before forward"):
        layer.backward(f32(rng, N, V))
    layer.forward(f32(rng, N, D))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 7\)"):
        layer.backward(f32(rng, N, V + 1))
    with pytest.raises(TypeError, match="dy has dtype float64"):
        layer.backward(np.ones((N, V)))


def test_gru_and_affine_backward_say_a_gradient_must_be_an_array(rng):
    gru, xs, _ = MAKERS["TimeGRU"](rng, N, T)
    gru.forward(xs)
    with pytest.raises(TypeError, match=r"dhs must be an array of shape \(2, 3, 4\), got NoneType"):
        gru.backward(None)
    affine = Affine(f32(rng, D, V), f32(rng, V))
    affine.forward(f32(rng, N, D))
    with pytest.raises(TypeError, match=r"dy must be an array of shape \(2, 7\), got list"):
        affine.backward(np.zeros((N, V)).tolist())


# --- gradients of the other Time layers ---------------------------------------------


def test_time_rnn_backward_checks_the_dtype_of_dhs(rng):
    layer, xs, _ = MAKERS["TimeRNN"](rng, N, T)
    layer.forward(xs)
    with pytest.raises(TypeError, match="dhs has dtype float64"):
        layer.backward(np.ones((N, T, H)))


def test_time_embedding_backward_checks_the_shape_of_dout(rng):
    layer, xs, _ = MAKERS["TimeEmbedding"](rng, N, T)
    layer.forward(xs)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 5\)"):
        layer.backward(f32(rng, T, N, D))  # the same size, axes swapped


# --- TimeAttention dtypes ------------------------------------------------------------


def test_attention_rejects_integer_inputs(rng):
    ints = np.ones((N, T, H), dtype=int)
    with pytest.raises(TypeError, match=r"hs_enc must be a float array"):
        TimeAttention().forward(ints, ints[:, :2])
    with pytest.raises(TypeError, match=r"hs must be a float array"):
        Attention().forward(ints, ints[:, 0])


def test_time_attention_names_hs_enc_as_the_dtype_to_match(rng):
    with pytest.raises(TypeError, match="hs_dec has dtype float64 but hs_enc is float32"):
        TimeAttention().forward(f32(rng, N, T, H), np.ones((N, 2, H)))
    layer = TimeAttention()
    layer.forward(f32(rng, N, T, H), f32(rng, N, 2, H))
    with pytest.raises(TypeError, match="dcs has dtype float64"):
        layer.backward(np.ones((N, 2, H)))


# --- TimeBiLSTM ----------------------------------------------------------------------


def test_bilstm_directions_may_differ_in_hidden_size(rng):
    """Bidirectional joins halves of any widths: with H1 != H2 the output is
    H1 + H2 wide and the gradients stay exact."""
    layer = TimeBiLSTM(*lstm_weights(rng, D, 3, np.float64), *lstm_weights(rng, D, 2, np.float64))
    xs = rng.standard_normal((N, T, D))
    assert layer.forward(xs).shape == (N, T, 5)
    assert max(check_layer(layer, [xs]).values()) < 1e-6


def test_bilstm_directions_must_read_the_same_input(rng):
    with pytest.raises(ValueError, match=r"same number of rows D"):
        TimeBiLSTM(*lstm_weights(rng, D, H), *lstm_weights(rng, D + 1, H))
    with pytest.raises(TypeError, match="one dtype: Wx1 is float32, Wx2 is float64"):
        TimeBiLSTM(*lstm_weights(rng, D, H), *lstm_weights(rng, D, H, np.float64))


def test_bilstm_names_the_direction_whose_weights_are_wrong(rng):
    # (A list as Wx1 gave an AttributeError, and a wrong Wh2 a message about
    # "Wx" and "Wh" that did not say which direction.)
    Wx, Wh, b = lstm_weights(rng, D, H)
    with pytest.raises(TypeError, match=r"the forward direction \(Wx1, Wh1, b1\): .*Wx"):
        TimeBiLSTM(Wx.tolist(), Wh, b, *lstm_weights(rng, D, H))
    with pytest.raises(ValueError, match=r"the backward direction \(Wx2, Wh2, b2\): .*Wh"):
        TimeBiLSTM(Wx, Wh, b, Wx, Wh[:, :4], b)
    with pytest.raises(TypeError, match=r"the backward direction \(Wx2, Wh2, b2\): .*float"):
        TimeBiLSTM(Wx, Wh, b, Wx.astype(np.int64), Wh, b)


def test_bidirectional_takes_two_time_layers(rng):
    layer = TimeLSTM(*lstm_weights(rng, D, H))
    with pytest.raises(TypeError, match="forward_layer must be a Time layer.*got NoneType"):
        Bidirectional(None, None)
    with pytest.raises(TypeError, match="backward_layer must be a Time layer.*got object, which "
                                        "has no params, grads, forward, backward"):
        Bidirectional(layer, object())


# --- gradient checks need float64 --------------------------------------------------


def test_check_layer_refuses_float32(rng):
    layer = TimeRNN(f32(rng, D, H), f32(rng, H, H), f32(rng, H))
    with pytest.raises(TypeError, match=r"check_layer needs float64 .* param0 is float32"):
        check_layer(layer, [f32(rng, N, T, D)])
    layer64 = TimeRNN(*(p.astype(np.float64) for p in layer.params))
    with pytest.raises(TypeError, match="input0 is float32"):
        check_layer(layer64, [f32(rng, N, T, D)])


def test_check_function_refuses_float32(rng):
    x = f32(rng, 3)
    with pytest.raises(TypeError, match=r"check_function needs float64 .* arrays\[0\]"):
        check_function(lambda: float((x * x).sum()), lambda: [2 * x], [x])
