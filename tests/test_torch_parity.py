"""The same weights in rnnlab and in PyTorch give the same numbers.

float32 throughout, as in training: forward outputs and every gradient must
agree to round-off. Skipped when torch is not installed
(``pip install -e '.[torch]'``).
"""

import numpy as np
import pytest

from layers import TimeAffine, TimeEmbedding, TimeRNN, TimeSoftmaxWithLoss
from models import SimpleRnnlm

torch = pytest.importorskip("torch")
F = torch.nn.functional

N, T, D, H, V = 4, 6, 5, 8, 11


def close(ours, theirs, rtol=1e-5):
    """Agreement to float32 round-off, relative to the array's scale."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    scale = max(np.abs(theirs).max(), 1e-6)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def torch_rnn_from(Wx, Wh, b):
    """torch.nn.RNN holding our weights: W_ih = Wx.T, W_hh = Wh.T, b_ih + b_hh = b."""
    rnn = torch.nn.RNN(Wx.shape[0], Wx.shape[1], nonlinearity="tanh", batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(Wx.T))
        rnn.weight_hh_l0.copy_(torch.from_numpy(Wh.T))
        rnn.bias_ih_l0.copy_(torch.from_numpy(b * 0.25))
        rnn.bias_hh_l0.copy_(torch.from_numpy(b * 0.75))
    return rnn


def test_time_rnn_matches_torch_rnn(rng):
    Wx, Wh, b = f32(rng, D, H), f32(rng, H, H) * 0.4, f32(rng, H)
    xs, h0, dhs = f32(rng, N, T, D), f32(rng, N, H), f32(rng, N, T, H)

    layer = TimeRNN(Wx, Wh, b)
    layer.set_state(h0)
    hs = layer.forward(xs)
    dxs = layer.backward(dhs)

    rnn = torch_rnn_from(Wx, Wh, b)
    xs_t = torch.from_numpy(xs).requires_grad_()
    h0_t = torch.from_numpy(h0)[None].requires_grad_()
    hs_t, _ = rnn(xs_t, h0_t)
    hs_t.backward(torch.from_numpy(dhs))

    close(hs, hs_t)
    close(dxs, xs_t.grad)
    close(layer.dh, h0_t.grad[0])
    close(layer.grads[0], rnn.weight_ih_l0.grad.T)
    close(layer.grads[1], rnn.weight_hh_l0.grad.T)
    close(layer.grads[2], rnn.bias_ih_l0.grad)  # both torch biases get the same gradient
    close(layer.grads[2], rnn.bias_hh_l0.grad)


def test_embedding_affine_and_loss_match_torch(rng):
    W_embed, W, b = f32(rng, V, D), f32(rng, D, V), f32(rng, V)
    xs = rng.integers(0, V, size=(N, T))
    ts = rng.integers(0, V, size=(N, T))
    ts[1, 2] = -1  # ignored position

    embed, affine, loss_layer = TimeEmbedding(W_embed), TimeAffine(W, b), TimeSoftmaxWithLoss()
    scores = affine.forward(embed.forward(xs))
    loss = loss_layer.forward(scores, ts)
    embed.backward(affine.backward(loss_layer.backward()))

    emb_t = torch.nn.Embedding(V, D)
    lin_t = torch.nn.Linear(D, V)
    with torch.no_grad():
        emb_t.weight.copy_(torch.from_numpy(W_embed))
        lin_t.weight.copy_(torch.from_numpy(W.T))
        lin_t.bias.copy_(torch.from_numpy(b))
    scores_t = lin_t(emb_t(torch.from_numpy(xs)))
    loss_t = F.cross_entropy(scores_t.reshape(-1, V), torch.from_numpy(ts).reshape(-1),
                             ignore_index=-1)
    loss_t.backward()

    close(scores, scores_t)
    assert loss == pytest.approx(loss_t.item(), rel=1e-6)
    close(embed.grads[0], emb_t.weight.grad)
    close(affine.grads[0], lin_t.weight.grad.T)
    close(affine.grads[1], lin_t.bias.grad)


def test_simple_rnnlm_matches_torch_over_two_stateful_batches(rng):
    model = SimpleRnnlm(V, D, H, seed=3)
    embed_W, Wx, Wh, b, W, b_out = model.params
    b[...] = f32(rng, H)
    b_out[...] = f32(rng, V)

    emb_t = torch.nn.Embedding(V, D)
    rnn_t = torch_rnn_from(Wx, Wh, b)
    lin_t = torch.nn.Linear(H, V)
    with torch.no_grad():
        emb_t.weight.copy_(torch.from_numpy(embed_W))
        lin_t.weight.copy_(torch.from_numpy(W.T))
        lin_t.bias.copy_(torch.from_numpy(b_out))

    h_t = None
    for _ in range(2):  # the second batch starts from the first one's last state
        xs = rng.integers(0, V, size=(N, T))
        ts = rng.integers(0, V, size=(N, T))
        loss = model.forward(xs, ts)
        model.backward()

        for p in (*emb_t.parameters(), *rnn_t.parameters(), *lin_t.parameters()):
            p.grad = None
        hs_t, h_t = rnn_t(emb_t(torch.from_numpy(xs)), h_t)
        h_t = h_t.detach()  # truncated BPTT
        loss_t = F.cross_entropy(lin_t(hs_t).reshape(-1, V), torch.from_numpy(ts).reshape(-1))
        loss_t.backward()

        assert loss == pytest.approx(loss_t.item(), rel=1e-6)
        close(model.grads[0], emb_t.weight.grad)
        close(model.grads[1], rnn_t.weight_ih_l0.grad.T)
        close(model.grads[2], rnn_t.weight_hh_l0.grad.T)
        close(model.grads[3], rnn_t.bias_hh_l0.grad)
        close(model.grads[4], lin_t.weight.grad.T)
        close(model.grads[5], lin_t.bias.grad)
