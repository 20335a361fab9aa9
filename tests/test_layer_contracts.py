"""The layer contract, held where a user could break it without noticing:
outputs that backward reads again are read-only, one layer object cannot
serve both directions of a Bidirectional, the loss keeps its precision for
large logits, and weights, gradients and batches of the wrong kind get one
clear error that says what to fix."""

import numpy as np
import pytest

from layers import (
    GRU,
    LSTM,
    RNN,
    Affine,
    Attention,
    AttentionWeight,
    Bidirectional,
    Embedding,
    SoftmaxWithLoss,
    TimeAffine,
    TimeAttention,
    TimeDropout,
    TimeEmbedding,
    TimeGRU,
    TimeLSTM,
    TimeRepeat,
    TimeRNN,
    TimeSoftmaxWithLoss,
    WeightSum,
    joint_weight_bias,
)

N, T, D, H, V = 2, 3, 5, 4, 7


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def rnn_weights(rng, D=D, H=H):
    return f32(rng, D, H), f32(rng, H, H), f32(rng, H)


def lstm_weights(rng, D=D, H=H):
    return f32(rng, D, 4 * H), f32(rng, H, 4 * H), f32(rng, 4 * H)


def gru_weights(rng, D=D, H=H):
    return f32(rng, D, 3 * H), f32(rng, H, 3 * H), f32(rng, 3 * H), f32(rng, 3 * H)


# --- Bidirectional needs two layer objects ------------------------------------------


@pytest.mark.parametrize("make", [lambda rng: TimeRNN(*rnn_weights(rng)),
                                  lambda rng: TimeLSTM(*lstm_weights(rng))])
def test_one_layer_object_for_both_directions_is_refused(rng, make):
    layer = make(rng)
    with pytest.raises(ValueError, match=r"same Time(RNN|LSTM) object.*Pass two layer objects"):
        Bidirectional(layer, layer)


def test_two_layers_built_from_the_same_arrays_tie_the_directions(rng):
    # What a user wanting tied directions does instead: the gradients are
    # those of two separate layers that happen to hold equal weights.
    weights = rnn_weights(rng)
    xs, dhs = f32(rng, N, T, D), f32(rng, N, T, 2 * H)
    tied = Bidirectional(TimeRNN(*weights), TimeRNN(*weights))
    twin = Bidirectional(TimeRNN(*[w.copy() for w in weights]),
                         TimeRNN(*[w.copy() for w in weights]))
    np.testing.assert_array_equal(tied.forward(xs), twin.forward(xs))
    np.testing.assert_array_equal(tied.backward(dhs), twin.backward(dhs))
    for g_tied, g_twin in zip(tied.grads, twin.grads, strict=True):
        np.testing.assert_array_equal(g_tied, g_twin)


def test_bidirectional_halves_of_different_D_name_the_direction(rng):
    layer = Bidirectional(TimeRNN(*rnn_weights(rng)), TimeRNN(*rnn_weights(rng, D=D + 1)))
    with pytest.raises(ValueError, match=r"the backward direction \(TimeRNN\): xs has 5 "
                                         r"features but Wx expects D = 6"):
        layer.forward(f32(rng, N, T, D))


# --- outputs that backward reads are read-only --------------------------------------


TIME_LAYERS = {
    "TimeRNN": lambda rng: TimeRNN(*rnn_weights(rng)),
    "TimeLSTM": lambda rng: TimeLSTM(*lstm_weights(rng)),
    "TimeGRU": lambda rng: TimeGRU(*gru_weights(rng)),
}


@pytest.mark.parametrize("kind", TIME_LAYERS)
def test_changing_a_recurrent_output_in_place_is_refused_and_a_copy_is_free(rng, kind):
    xs, dhs = f32(rng, N, T, D), f32(rng, N, T, H)
    layer = TIME_LAYERS[kind](rng)
    layer.forward(xs)
    dxs_before = layer.backward(dhs).copy()
    grads_before = [g.copy() for g in layer.grads]

    hs = layer.forward(xs)
    with pytest.raises(ValueError, match="read-only"):
        np.clip(hs, -0.5, 0.5, out=hs)  # e.g. clipping the states for a plot
    clipped = np.clip(hs, -0.5, 0.5)  # a copy: changes nothing the layer keeps
    clipped[...] = 0
    np.testing.assert_array_equal(layer.backward(dhs), dxs_before)
    for g, g_before in zip(layer.grads, grads_before, strict=True):
        np.testing.assert_array_equal(g, g_before)


def test_the_rnn_cells_output_is_read_only(rng):
    cell = RNN(*rnn_weights(rng))
    h = cell.forward(f32(rng, N, D), f32(rng, N, H))
    with pytest.raises(ValueError, match="read-only"):
        h *= 2
    h2 = cell.forward(f32(rng, N, D), h)  # read-only h is fine as the next step's input
    assert h2.shape == (N, H)


def test_attention_weights_are_read_only(rng):
    hs_enc, hs_dec = f32(rng, N, T, H), f32(rng, N, 2, H)
    dcs = f32(rng, N, 2, H)
    layer = TimeAttention()
    layer.forward(hs_enc, hs_dec)
    expected = [g.copy() for g in layer.backward(dcs)]
    layer.forward(hs_enc, hs_dec)
    for w in layer.attention_weights:
        with pytest.raises(ValueError, match="read-only"):
            w /= w.max(axis=1, keepdims=True)  # rescaling for a plot: make a copy instead
    for got, want in zip(layer.backward(dcs), expected, strict=True):
        np.testing.assert_array_equal(got, want)

    step = Attention()
    step.forward(hs_enc, hs_dec[:, 0])
    with pytest.raises(ValueError, match="read-only"):
        step.attention_weight[:] = 0
    a = AttentionWeight().forward(hs_enc, hs_dec[:, 0])
    with pytest.raises(ValueError, match="read-only"):
        a[0, 0] = 1


# --- the loss keeps float32 precision for logits near 88 -----------------------------


def test_the_loss_gradient_is_exact_for_float32_logits_near_the_top_of_the_range():
    # Logits of 87.5: exp(87.5) is finite in float32, but the row sum over 1000
    # positions makes the row's scale (1/1000) / sum a subnormal number.
    n = 1000
    xs = np.full((n, 1, 4), 87.5, np.float32)
    xs[:, :, 0] = 0
    ts = np.zeros((n, 1), int)
    layer = TimeSoftmaxWithLoss()
    loss = layer.forward(xs, ts)
    dxs = layer.backward().reshape(n, 4)

    x = xs.reshape(n, 4).astype(np.float64)
    log_p = x - x.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    ref_dx = (np.exp(log_p) - np.eye(4)[0]) / n
    np.testing.assert_allclose(dxs, ref_dx, rtol=1e-6, atol=0)
    np.testing.assert_allclose(loss, -log_p[:, 0].mean(), rtol=1e-6)


def test_one_loss_layer_takes_float64_then_float32_logits():
    """A gradient check in float64, then training in float32, through one layer
    object: its softmax buffer of the first dtype must not be reused."""
    rng = np.random.default_rng(0)
    xs, ts = rng.normal(size=(2, 3, 5)), rng.integers(0, 5, (2, 3))
    layer = TimeSoftmaxWithLoss()
    layer.forward(xs, ts)
    layer.backward()
    fresh = TimeSoftmaxWithLoss()
    assert layer.forward(xs.astype(np.float32), ts) == fresh.forward(xs.astype(np.float32), ts)
    dxs = layer.backward()
    assert dxs.dtype == np.float32
    np.testing.assert_array_equal(dxs, fresh.backward())


# --- embedding weights --------------------------------------------------------------


@pytest.mark.parametrize("layer_class", [Embedding, TimeEmbedding])
def test_embedding_weights_must_be_a_2d_float_array(layer_class):
    with pytest.raises(TypeError, match=r"W must be a float array .*got int64.*astype"):
        layer_class(np.arange(20).reshape(5, 4))  # integer W would truncate the gradients
    with pytest.raises(ValueError, match=r"W must have shape \(V, D\) \(2 dims\), got shape "
                                         r"\(5,\)"):
        layer_class(np.ones(5, np.float32))
    with pytest.raises(TypeError, match=r"W must be a float array .*got list.*np.asarray"):
        layer_class([[0.0, 1.0], [2.0, 3.0]])


# --- one-step layers check the gradient they are given -------------------------------


def _rnn_cell(rng):
    cell = RNN(*rnn_weights(rng))
    cell.forward(f32(rng, N, D), f32(rng, N, H))
    return cell, [(N, H)]


def _lstm_cell(rng):
    cell = LSTM(*lstm_weights(rng))
    cell.forward(f32(rng, N, D), f32(rng, N, H), f32(rng, N, H))
    return cell, [(N, H), (N, H)]


def _gru_cell(rng):
    cell = GRU(*gru_weights(rng))
    cell.forward(f32(rng, N, D), f32(rng, N, H))
    return cell, [(N, H)]


def _embedding(rng):
    layer = Embedding(f32(rng, V, D))
    layer.forward(np.array([0, 3, 3]))
    return layer, [(3, D)]


def _attention_weight(rng):
    layer = AttentionWeight()
    layer.forward(f32(rng, N, T, H), f32(rng, N, H))
    return layer, [(N, T)]


def _weight_sum(rng):
    layer = WeightSum()
    layer.forward(f32(rng, N, T, H), f32(rng, N, T))
    return layer, [(N, H)]


def _attention(rng):
    layer = Attention()
    layer.forward(f32(rng, N, T, H), f32(rng, N, H))
    return layer, [(N, H)]


ONE_STEP = [_rnn_cell, _lstm_cell, _gru_cell, _embedding, _attention_weight, _weight_sum,
            _attention]


@pytest.mark.parametrize("make", ONE_STEP, ids=lambda make: make.__name__.strip("_"))
def test_a_one_step_layer_refuses_a_gradient_of_the_wrong_shape(rng, make):
    layer, shapes = make(rng)
    # Transposed (the shape NumPy used to broadcast or misread), then one row only.
    for wrong in ([s[::-1] for s in shapes], [(1, s[1]) for s in shapes]):
        douts = [f32(rng, *s) for s in wrong]
        with pytest.raises(ValueError, match=r"must have shape .* \(the forward's output\)"):
            layer.backward(*douts)
    layer.backward(*[f32(rng, *s) for s in shapes])  # the right shape works


@pytest.mark.parametrize("make", ONE_STEP, ids=lambda make: make.__name__.strip("_"))
def test_a_one_step_layer_refuses_a_float64_gradient_in_float32(rng, make):
    layer, shapes = make(rng)
    douts = [rng.standard_normal(s) for s in shapes]
    with pytest.raises(TypeError, match=r"has dtype float64 but .* float32; convert it"):
        layer.backward(*douts)


def test_the_lstm_cell_takes_the_books_dc_next_of_0(rng):
    # The book's TimeLSTM starts its backward loop with dh, dc = 0, 0.
    cell, _ = _lstm_cell(rng)
    dh = f32(rng, N, H)
    dx, dh_prev, dc_prev = cell.backward(dh, 0)
    np.testing.assert_array_equal(dx, cell.backward(dh, np.zeros((N, H), np.float32))[0])


@pytest.mark.parametrize("zero", [0, 0.0, np.float32(0), np.float64(0), np.int64(0)])
def test_any_real_zero_dc_next_means_no_gradient_and_keeps_float32(rng, zero):
    # np.float64(0) is a Python float: it must not make the gradients float64
    # (NumPy would promote them), and np.float32(0) is as good as 0.
    cell, _ = _lstm_cell(rng)
    dh = f32(rng, N, H)
    grads = cell.backward(dh, zero)
    expected = cell.backward(dh, np.zeros((N, H), np.float32))
    for g, e in zip(grads, expected, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, e)


# --- empty batches and the one-step loss ---------------------------------------------


def test_the_losses_refuse_an_empty_batch():
    with pytest.raises(ValueError, match=r"xs has shape \(0, 3, 5\): a batch needs at least "
                                         r"one sequence \(N >= 1\) and one time step"):
        TimeSoftmaxWithLoss().forward(np.zeros((0, 3, 5), np.float32), np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="a batch needs at least one sequence"):
        TimeSoftmaxWithLoss().forward(np.zeros((2, 0, 5), np.float32), np.zeros((2, 0), int))
    with pytest.raises(ValueError, match=r"x has shape \(0, 5\): a batch needs at least one "
                                         r"row \(N >= 1\)"):
        SoftmaxWithLoss().forward(np.zeros((0, 5), np.float32), np.zeros(0, int))


def test_softmax_with_loss_backward_before_forward_says_so():
    with pytest.raises(RuntimeError, match=r"SoftmaxWithLoss.backward\(\) called before "
                                           r"forward\(\)"):
        SoftmaxWithLoss().backward()


def test_softmax_with_loss_refuses_integer_logits_like_its_time_layer():
    with pytest.raises(TypeError, match="x must hold float logits, got dtype int64; convert"):
        SoftmaxWithLoss().forward(np.zeros((2, 5), np.int64), np.zeros(2, int))
    with pytest.raises(TypeError, match="xs must hold float logits, got dtype int64; convert"):
        TimeSoftmaxWithLoss().forward(np.zeros((2, 3, 5), np.int64), np.zeros((2, 3), int))


@pytest.mark.parametrize("ignore_label", [True, "pad", 1.5, np.float64(-1)])
def test_the_ignore_label_must_be_an_integer_or_none(ignore_label):
    # True would ignore class 1, and "pad" or 1.5 would never match a target.
    with pytest.raises(TypeError, match=r"ignore_label must be an integer \(-1 by default\) "
                                        r"or None"):
        TimeSoftmaxWithLoss(ignore_label=ignore_label)


def test_the_ignore_label_may_be_any_integer_or_none():
    xs, ts = np.zeros((1, 3, 4), np.float32), np.array([[0, 1, 2]])
    assert TimeSoftmaxWithLoss(ignore_label=None).forward(xs, ts) == pytest.approx(np.log(4))
    assert TimeSoftmaxWithLoss(ignore_label=np.int64(1)).forward(xs, ts) == pytest.approx(
        np.log(4))
    assert TimeSoftmaxWithLoss(ignore_label=-100).ignore_label == -100


@pytest.mark.parametrize("layer_class, xs, ts", [
    (TimeSoftmaxWithLoss, np.zeros((1, 2, 3), np.float32), np.array([[0, 1]])),
    (SoftmaxWithLoss, np.zeros((2, 3), np.float32), np.array([0, 1])),
])
def test_a_dout_past_float32s_range_is_refused_not_made_inf(layer_class, xs, ts):
    layer = layer_class()
    layer.forward(xs, ts)
    with pytest.raises(ValueError, match=r"dout 1e\+39 is too large for the float32 logits"):
        layer.backward(1e39)
    layer.forward(xs.astype(np.float64), ts)  # float64 holds it
    assert np.isfinite(layer.backward(1e39)).all()


# --- recurrent weights ---------------------------------------------------------------


RECURRENT = {
    "RNN": (RNN, rnn_weights), "TimeRNN": (TimeRNN, rnn_weights),
    "LSTM": (LSTM, lstm_weights), "TimeLSTM": (TimeLSTM, lstm_weights),
    "GRU": (GRU, gru_weights), "TimeGRU": (TimeGRU, gru_weights),
}


@pytest.mark.parametrize("kind", RECURRENT)
def test_recurrent_weights_of_the_wrong_rank_are_refused(rng, kind):
    layer_class, weights = RECURRENT[kind]
    Wx, *rest = weights(rng)
    with pytest.raises(ValueError, match=r"Wx must have shape \(D, \d?H\) \(2 dims\), got "
                                         r"shape"):
        layer_class(Wx[0], *rest)  # 1-D: one row of Wx
    *first, b_last = weights(rng)
    with pytest.raises(ValueError, match=r"b\w? must have shape \(\d?H,\) \(1 dims\)"):
        layer_class(*first, b_last[None])


@pytest.mark.parametrize("kind", RECURRENT)
def test_integer_recurrent_weights_are_refused(rng, kind):
    layer_class, weights = RECURRENT[kind]
    ints = [np.ones(w.shape, int) for w in weights(rng)]
    with pytest.raises(TypeError, match=r"Wx must be a float array .*got int64; convert it "
                                        r"with .astype\(np.float32\)"):
        layer_class(*ints)


@pytest.mark.parametrize("kind", RECURRENT)
def test_recurrent_weights_of_mixed_dtypes_are_refused(rng, kind):
    # A float64 bias would make every output of a float32 layer float64.
    layer_class, weights = RECURRENT[kind]
    *first, b_last = weights(rng)
    with pytest.raises(TypeError, match=r"b\w? has dtype float64 but Wx is float32; convert it "
                                        r"with .astype\(float32\)"):
        layer_class(*first, b_last.astype(np.float64))


@pytest.mark.parametrize("kind", RECURRENT)
def test_recurrent_weights_as_python_lists_are_refused(rng, kind):
    layer_class, weights = RECURRENT[kind]
    Wx, *rest = weights(rng)
    with pytest.raises(TypeError, match=r"Wx must be a float array .*got list; make it one "
                                        r"with np.asarray"):
        layer_class(Wx.tolist(), *rest)


def test_affine_biases_as_python_lists_are_refused(rng):
    for layer_class in (Affine, TimeAffine):
        with pytest.raises(TypeError, match=r"b must be an array of shape \(7,\), got list"):
            layer_class(f32(rng, D, V), [0.0] * V)


# --- the smaller ones ----------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_dropout_backward_checks_the_gradient_in_both_modes(rng, training):
    layer = TimeDropout(0.5, rng=0)
    layer.train_flg = training
    layer.forward(f32(rng, N, T, H))
    with pytest.raises(ValueError, match=r"dys must have shape \(2, 3, 4\)"):
        layer.backward(f32(rng, N, T, H + 1))
    with pytest.raises(TypeError, match="dys has dtype float64 but the forward's xs is float32"):
        layer.backward(rng.standard_normal((N, T, H)))


def test_time_repeat_refuses_an_integer_h():
    with pytest.raises(TypeError, match=r"h must be a float array .*got int64"):
        TimeRepeat().forward(np.ones((N, H), int), T)


def test_attention_over_no_encoder_states_says_so(rng):
    with pytest.raises(ValueError, match=r"hs has shape \(2, 0, 4\): a batch needs at least "
                                         r"one sequence"):
        Attention().forward(f32(rng, N, 0, H), f32(rng, N, H))


def test_joint_weight_bias_checks_its_pair(rng):
    with pytest.raises(ValueError, match=r"b must have shape \(4,\), one bias per output of W "
                                         r"\(3, 4\); got \(5,\)"):
        joint_weight_bias(f32(rng, 3, 4), f32(rng, 5))
    with pytest.raises(ValueError, match=r"W must have shape \(D, M\) \(2 dims\), got shape"):
        joint_weight_bias(f32(rng, 4), f32(rng, 4))


@pytest.mark.parametrize("kind", TIME_LAYERS)
def test_a_state_of_the_wrong_batch_size_says_who_set_it(rng, kind):
    layer = TIME_LAYERS[kind](rng)
    layer.set_state(f32(rng, N + 1, H))  # the user's own state, for N + 1 sequences
    with pytest.raises(ValueError, match=r"the hidden state given to set_state\(\) has shape "
                                         r"\(3, 4\) but this batch needs \(2, 4\).*"
                                         r"reset_state\(\)"):
        layer.forward(f32(rng, N, T, D))

    layer = TIME_LAYERS[kind](rng)
    layer.stateful = True
    layer.forward(f32(rng, N + 1, T, D))  # carries a state of N + 1 rows
    with pytest.raises(ValueError, match=r"the carried hidden state has shape \(3, 4\).*"
                                         r"call reset_state\(\) when the batch size changes"):
        layer.forward(f32(rng, N, T, D))
