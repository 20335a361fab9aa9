"""Attention, concatenation, repetition and bidirectional layers: exact
gradients (float64, central differences), the fast Time layer against the
step-by-step one and against PyTorch autograd, and input errors."""

import numpy as np
import pytest

from common.gradcheck import check_function, check_layer
from layers import (
    Attention,
    AttentionWeight,
    Bidirectional,
    Concat,
    TimeAttention,
    TimeBiLSTM,
    TimeLSTM,
    TimeRepeat,
    WeightSum,
)

TOL = 1e-6
N, T_ENC, T_DEC, H = 3, 5, 4, 6


def assert_exact(errors):
    worst = max(errors.values()) if isinstance(errors, dict) else max(errors)
    assert worst < TOL, errors


def test_attention_weight_gradients(rng):
    hs, h = rng.standard_normal((N, T_ENC, H)), rng.standard_normal((N, H))
    assert_exact(check_layer(AttentionWeight(), [hs, h]))


def test_attention_weights_are_a_distribution(rng):
    a = AttentionWeight().forward(rng.standard_normal((N, T_ENC, H)) * 10,
                                  rng.standard_normal((N, H)))
    assert a.shape == (N, T_ENC)
    assert np.all(a >= 0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-12)


def test_weight_sum_gradients(rng):
    hs, a = rng.standard_normal((N, T_ENC, H)), rng.random((N, T_ENC))
    assert_exact(check_layer(WeightSum(), [hs, a]))


def test_attention_gradients(rng):
    hs, h = rng.standard_normal((N, T_ENC, H)), rng.standard_normal((N, H))
    layer = Attention()
    assert_exact(check_layer(layer, [hs, h]))
    assert layer.attention_weight.shape == (N, T_ENC)


def test_time_attention_gradients(rng):
    hs_enc, hs_dec = rng.standard_normal((N, T_ENC, H)), rng.standard_normal((N, T_DEC, H))
    assert_exact(check_layer(TimeAttention(), [hs_enc, hs_dec]))


def test_time_attention_equals_attention_step_by_step(rng):
    """The batched products compute what one Attention per decoder step does."""
    hs_enc, hs_dec = rng.standard_normal((N, T_ENC, H)), rng.standard_normal((N, T_DEC, H))
    dcs = rng.standard_normal((N, T_DEC, H))
    layer = TimeAttention()
    cs = layer.forward(hs_enc, hs_dec)
    dhs_enc, dhs_dec = layer.backward(dcs)

    dhs_enc_steps = np.zeros_like(hs_enc)
    for t in range(T_DEC):
        step = Attention()
        np.testing.assert_allclose(step.forward(hs_enc, hs_dec[:, t]), cs[:, t], rtol=1e-12)
        np.testing.assert_allclose(step.attention_weight, layer.attention_weights[t], rtol=1e-12)
        dhs, dh = step.backward(dcs[:, t])
        dhs_enc_steps += dhs
        np.testing.assert_allclose(dh, dhs_dec[:, t], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dhs_enc, dhs_enc_steps, rtol=1e-10, atol=1e-12)
    assert len(layer.attention_weights) == T_DEC
    assert all(w.shape == (N, T_ENC) for w in layer.attention_weights)


def test_time_attention_matches_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    hs_enc, hs_dec = rng.standard_normal((N, T_ENC, H)), rng.standard_normal((N, T_DEC, H))
    dcs = rng.standard_normal((N, T_DEC, H))
    layer = TimeAttention()
    cs = layer.forward(hs_enc, hs_dec)
    dhs_enc, dhs_dec = layer.backward(dcs)

    enc = torch.tensor(hs_enc, requires_grad=True)
    dec = torch.tensor(hs_dec, requires_grad=True)
    weights = torch.softmax(dec @ enc.transpose(1, 2), dim=-1)
    cs_torch = weights @ enc
    cs_torch.backward(torch.tensor(dcs))
    np.testing.assert_allclose(cs, cs_torch.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dhs_enc, enc.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dhs_dec, dec.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_time_attention_keeps_float32(rng):
    layer = TimeAttention()
    cs = layer.forward(rng.standard_normal((N, T_ENC, H)).astype(np.float32),
                       rng.standard_normal((N, T_DEC, H)).astype(np.float32))
    assert cs.dtype == np.float32
    dhs_enc, dhs_dec = layer.backward(np.ones_like(cs))
    assert dhs_enc.dtype == dhs_dec.dtype == np.float32


def test_attention_shape_errors(rng):
    with pytest.raises(ValueError, match="must agree in N and H"):
        TimeAttention().forward(rng.standard_normal((N, T_ENC, H)),
                                rng.standard_normal((N, T_DEC, H + 1)))
    with pytest.raises(ValueError, match="3 dims"):
        TimeAttention().forward(rng.standard_normal((N, H)), rng.standard_normal((N, T_DEC, H)))
    with pytest.raises(TypeError, match="dtype"):
        Attention().forward(rng.standard_normal((N, T_ENC, H)),
                            rng.standard_normal((N, H)).astype(np.float32))
    with pytest.raises(ValueError, match="h must have shape"):
        AttentionWeight().forward(rng.standard_normal((N, T_ENC, H)),
                                  rng.standard_normal((N + 1, H)))


# --- concatenation and repetition ---------------------------------------------------------


def test_concat_gradients(rng):
    a, b, c = (rng.standard_normal((N, T_DEC, d)) for d in (2, 3, 4))
    layer = Concat()
    assert layer.forward(a, b, c).shape == (N, T_DEC, 9)
    assert_exact(check_layer(layer, [a, b, c]))


def test_concat_errors(rng):
    with pytest.raises(ValueError, match="all inputs must agree"):
        Concat().forward(rng.standard_normal((N, 2, 3)), rng.standard_normal((N, 3, 3)))
    with pytest.raises(ValueError, match="at least two"):
        Concat().forward(rng.standard_normal((N, 2, 3)))


def test_time_repeat_gradients(rng):
    h = rng.standard_normal((N, H))
    layer = TimeRepeat()
    hs = layer.forward(h, T_DEC)
    assert hs.shape == (N, T_DEC, H)
    np.testing.assert_array_equal(hs[:, 2], h)
    assert_exact(check_layer(layer, [h], forward_kwargs={"T": T_DEC}))


# --- bidirectional ----------------------------------------------------------------------------


def lstm_weights(rng, D, Hd):
    return [rng.standard_normal(s) * 0.5 for s in ((D, 4 * Hd), (Hd, 4 * Hd), (4 * Hd,))]


def test_time_bilstm_gradients(rng):
    D, Hd = 4, 3
    layer = TimeBiLSTM(*lstm_weights(rng, D, Hd), *lstm_weights(rng, D, Hd))
    xs = rng.standard_normal((N, T_ENC, D))
    assert layer.forward(xs).shape == (N, T_ENC, 2 * Hd)
    assert len(layer.params) == 6
    assert_exact(check_layer(layer, [xs]))


def test_bidirectional_halves_read_forward_and_backward(rng):
    """The first half is an LSTM over xs; the second, one over reversed xs, reversed back."""
    D, Hd = 4, 3
    w_f, w_b = lstm_weights(rng, D, Hd), lstm_weights(rng, D, Hd)
    xs = rng.standard_normal((N, T_ENC, D))
    hs = TimeBiLSTM(*w_f, *w_b).forward(xs)
    np.testing.assert_allclose(hs[:, :, :Hd], TimeLSTM(*w_f).forward(xs), rtol=1e-12)
    np.testing.assert_allclose(hs[:, :, Hd:], TimeLSTM(*w_b).forward(xs[:, ::-1])[:, ::-1],
                               rtol=1e-12)
    # The backward half at step 0 has read the whole sequence: changing the last input changes it.
    xs2 = xs.copy()
    xs2[:, -1] += 1
    hs2 = TimeBiLSTM(*w_f, *w_b).forward(xs2)
    assert not np.allclose(hs[:, 0, Hd:], hs2[:, 0, Hd:])
    np.testing.assert_array_equal(hs[:, 0, :Hd], hs2[:, 0, :Hd])


def test_bidirectional_wraps_any_time_layer(rng):
    from layers import TimeGRU

    D, Hd = 4, 3

    def gru():
        return TimeGRU(*(rng.standard_normal(s) * 0.5
                         for s in ((D, 3 * Hd), (Hd, 3 * Hd), (3 * Hd,), (3 * Hd,))))

    layer = Bidirectional(gru(), gru())
    assert_exact(check_layer(layer, [rng.standard_normal((N, T_ENC, D))]))


def test_bilstm_refuses_stateful(rng):
    with pytest.raises(ValueError, match="cannot be stateful"):
        TimeBiLSTM(*lstm_weights(rng, 4, 3), *lstm_weights(rng, 4, 3), stateful=True)


def test_check_function_on_attention_inputs(rng):
    """The two inputs' gradients through a sum of squares (a second, independent check)."""
    hs_enc, hs_dec = rng.standard_normal((N, T_ENC, H)), rng.standard_normal((N, T_DEC, H))
    layer = TimeAttention()

    def loss():
        return float(np.sum(layer.forward(hs_enc, hs_dec) ** 2))

    def backward():
        cs = layer.forward(hs_enc, hs_dec)
        return list(layer.backward(2 * cs))

    assert_exact(check_function(loss, backward, [hs_enc, hs_dec]))
