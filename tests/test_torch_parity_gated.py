"""TimeLSTM and TimeGRU against torch.nn.LSTM and torch.nn.GRU.

The same float32 weights, with no reordering of the gates: forward outputs,
final states and every gradient (weights, input, initial state) must agree
to float32 round-off. Skipped when torch is not installed.
"""

import numpy as np
import pytest

from layers.gru import TimeGRU
from layers.lstm import TimeLSTM

torch = pytest.importorskip("torch")

N, T, D, H = 4, 6, 5, 8


def close(ours, theirs, rtol=1e-5):
    """Agreement to float32 round-off, relative to the array's scale."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    scale = max(np.abs(theirs).max(), 1e-6)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0.1 * rtol * scale)


def f32(rng, *shape, s=1.0):
    return (rng.standard_normal(shape) * s).astype(np.float32)


def load(module, **tensors):
    with torch.no_grad():
        for name, value in tensors.items():
            getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


def run_torch(module, xs, state, dhs):
    """Forward and backward through a torch module; returns what we compare."""
    xs_t = torch.from_numpy(xs).requires_grad_()
    state_t = [torch.from_numpy(s)[None].requires_grad_() for s in state]
    if isinstance(module, torch.nn.LSTM):
        hs_t, final = module(xs_t, tuple(state_t) if state_t else None)
    else:
        hs_t, final = module(xs_t, state_t[0] if state_t else None)
    hs_t.backward(torch.from_numpy(dhs))
    return hs_t, final, xs_t.grad, [s.grad[0] for s in state_t]


@pytest.mark.parametrize("with_state", [False, True])
def test_time_lstm_matches_torch_lstm(rng, with_state):
    Wx, Wh, b = f32(rng, D, 4 * H, s=0.5), f32(rng, H, 4 * H, s=0.4), f32(rng, 4 * H, s=0.5)
    b_ih = f32(rng, 4 * H)  # any split b = b_ih + b_hh is the same LSTM
    xs, dhs = f32(rng, N, T, D), f32(rng, N, T, H)
    state = [f32(rng, N, H), f32(rng, N, H)] if with_state else []

    layer = TimeLSTM(Wx, Wh, b, stateful=True)
    if with_state:
        layer.set_state(*state)
    hs = layer.forward(xs)
    dxs = layer.backward(dhs)

    lstm = load(
        torch.nn.LSTM(D, H, batch_first=True),
        weight_ih_l0=Wx.T,
        weight_hh_l0=Wh.T,
        bias_ih_l0=b_ih,
        bias_hh_l0=b - b_ih,
    )
    hs_t, (h_n, c_n), dxs_t, dstate_t = run_torch(lstm, xs, state, dhs)

    close(hs, hs_t)
    close(layer.h, h_n[0])
    close(layer.c, c_n[0])
    close(dxs, dxs_t)
    close(layer.grads[0], lstm.weight_ih_l0.grad.T)
    close(layer.grads[1], lstm.weight_hh_l0.grad.T)
    close(layer.grads[2], lstm.bias_ih_l0.grad)  # both torch biases get the same gradient
    close(layer.grads[2], lstm.bias_hh_l0.grad)
    if with_state:
        close(layer.dh, dstate_t[0])
        close(layer.dc, dstate_t[1])


@pytest.mark.parametrize("with_state", [False, True])
def test_time_gru_matches_torch_gru(rng, with_state):
    Wx, Wh = f32(rng, D, 3 * H, s=0.5), f32(rng, H, 3 * H, s=0.4)
    bx, bh = f32(rng, 3 * H, s=0.5), f32(rng, 3 * H, s=0.5)
    xs, dhs = f32(rng, N, T, D), f32(rng, N, T, H)
    state = [f32(rng, N, H)] if with_state else []

    layer = TimeGRU(Wx, Wh, bx, bh, stateful=True)
    if with_state:
        layer.set_state(*state)
    hs = layer.forward(xs)
    dxs = layer.backward(dhs)

    gru = load(
        torch.nn.GRU(D, H, batch_first=True),
        weight_ih_l0=Wx.T,
        weight_hh_l0=Wh.T,
        bias_ih_l0=bx,
        bias_hh_l0=bh,
    )
    hs_t, h_n, dxs_t, dstate_t = run_torch(gru, xs, state, dhs)

    close(hs, hs_t)
    close(layer.h, h_n[0])
    close(dxs, dxs_t)
    close(layer.grads[0], gru.weight_ih_l0.grad.T)
    close(layer.grads[1], gru.weight_hh_l0.grad.T)
    close(layer.grads[2], gru.bias_ih_l0.grad)
    close(layer.grads[3], gru.bias_hh_l0.grad)
    if with_state:
        close(layer.dh, dstate_t[0])
