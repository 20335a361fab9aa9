"""The contenders: one training iteration of each, as a function of no arguments.

* rnnlab: what ``RnnlmTrainer.fit`` does per batch (``get_batch`` + forward +
  backward + update), to be timed inside ``common.parallel.managed()``;
* the textbook-style reference (:mod:`benchmarks.reference_textbook`);
* the *lean step*: the demo step written as one plain NumPy function;
* PyTorch on the CPU: the same model and loop.

The word-level configuration (V, D, H, N, T) and the learning rate are
constants here, shared by the sections.
"""

import numpy as np

from common.trainer import RnnlmTrainer

# The reference configuration of the issue.
V, D, H, N, T = 10_000, 100, 100, 20, 35
# The demo configuration.
SMALL_WORDS, SMALL_N, SMALL_T = 1000, 10, 5
LR = 0.1


def training_step(model, optimizer, batches, xs, ts, batch_size, time_size):
    """One iteration of ``RnnlmTrainer.fit`` without its bookkeeping, for
    rnnlab (``batches`` a trainer) or the textbook-style reference
    (``batches`` its ``BatchFetcher``): the same four calls either way.

    ``fit`` runs all its iterations inside one ``common.parallel.managed()``
    context; time rnnlab's steps inside one too (see :func:`round_robin`).
    """

    def step():
        batch_x, batch_t = batches.get_batch(xs, ts, batch_size, time_size)
        loss = model.forward(batch_x, batch_t)
        model.backward()
        optimizer.update(model.params, model.grads)
        return loss

    return step


def lean_step(ours, xs, ts, batch_size, time_size):
    """SimpleRnnlm's iteration written as one plain NumPy function, as a bound.

    No layers, no input checks, no thread pool: the fewest NumPy calls we
    could write the model's step with (embedding rows, one input product,
    ``T`` recurrent steps, one output product, softmax with loss, the
    backward products, an SGD update that scatters straight into the
    embedding). It starts from a copy of ``ours``'s weights and reads the
    batches as ``RnnlmTrainer.get_batch`` does. It shows how far any NumPy
    implementation of the demo step can be from the textbook's, whatever
    its structure. Returns ``step``; ``step()`` returns the loss.
    """
    E, Wx, Wh, b, Wa, ba = ours.params
    E, Wx, Wh, b = E.copy(), Wx.copy(), Wh.copy(), b.copy()
    Wab = np.concatenate([Wa, ba[None]])  # bias folded into the product (a copy)
    D, H = Wx.shape
    N, T = batch_size, time_size
    hs = np.empty((T + 1, N, H), dtype=np.float32)  # time-major, hs[0] = carried state
    hs[0] = 0
    h1 = np.empty((T * N, H + 1), dtype=np.float32)  # [h, 1] of every step
    h1[:, H] = 1
    rows = np.arange(T * N)
    lr = np.float32(LR)
    scale = np.float32(1 / (T * N))
    fetch = RnnlmTrainer(None, None)

    def step():
        batch_x, batch_t = fetch.get_batch(xs, ts, N, T)
        ids, targets = batch_x.T.reshape(-1), batch_t.T.reshape(-1)  # time-major
        x = E[ids]
        a = (x @ Wx + b).reshape(T, N, H)
        for t in range(T):
            at = a[t]
            at += hs[t] @ Wh
            np.tanh(at, out=hs[t + 1])
        h1[:, :H] = hs[1:].reshape(T * N, H)
        y = h1 @ Wab
        y -= y.max(axis=1, keepdims=True)
        np.exp(y, out=y)
        s = y.sum(axis=1)
        loss = float(np.log(s).sum() - np.log(y[rows, targets]).sum()) * float(scale)
        y *= (scale / s)[:, None]
        y[rows, targets] -= scale
        dWab = h1.T @ y
        dh_all = (y @ Wab[:H].T).reshape(T, N, H)
        da = np.empty((T, N, H), dtype=np.float32)
        dh = np.zeros((N, H), dtype=np.float32)
        for t in range(T - 1, -1, -1):
            d = np.add(dh_all[t], dh, out=da[t])
            d *= 1 - hs[t + 1] * hs[t + 1]
            dh = d @ Wh.T
        da2 = da.reshape(T * N, H)
        dWx, dWh = x.T @ da2, hs[:T].reshape(T * N, H).T @ da2
        db, dx = da2.sum(axis=0), da2 @ Wx.T
        hs[0] = hs[T]  # stateful
        np.subtract.at(E.reshape(-1), (ids[:, None] * D + np.arange(D)).reshape(-1),
                       (lr * dx).reshape(-1))
        for p, g in ((Wx, dWx), (Wh, dWh), (b, db), (Wab, dWab)):
            p -= lr * g
        return loss

    return step


def torch_model(torch, cell, ours):
    """The same model in PyTorch, holding a copy of ``ours``'s weights."""
    nn, F = torch.nn, torch.nn.functional

    class TorchRnnlm(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, D)
            if cell == "rnn":
                self.rnn = nn.RNN(D, H, nonlinearity="tanh", batch_first=True)
            else:
                self.rnn = nn.LSTM(D, H, batch_first=True)
            self.affine = nn.Linear(H, V)
            self.state = None

        def forward(self, x, t):
            hs, state = self.rnn(self.embed(x), self.state)
            # Carried to the next batch, the gradient stops at the boundary.
            if isinstance(state, tuple):
                self.state = tuple(s.detach() for s in state)
            else:
                self.state = state.detach()
            logits = self.affine(hs)
            return F.cross_entropy(logits.reshape(-1, V), t.reshape(-1))

    model = TorchRnnlm()
    p = ours.params
    gates = 1 if cell == "rnn" else 4
    shapes = [(V, D), (D, gates * H), (H, gates * H), (gates * H,), (H, V), (V,)]
    copied = len(p) == 6 and [tuple(a.shape) for a in p] == shapes
    if copied:
        # W_ih = Wx.T, W_hh = Wh.T, b_ih + b_hh = b; Linear holds W.T.
        with torch.no_grad():
            model.embed.weight.copy_(torch.from_numpy(p[0]))
            model.rnn.weight_ih_l0.copy_(torch.from_numpy(p[1].T.copy()))
            model.rnn.weight_hh_l0.copy_(torch.from_numpy(p[2].T.copy()))
            model.rnn.bias_ih_l0.copy_(torch.from_numpy(p[3]))
            model.rnn.bias_hh_l0.zero_()
            model.affine.weight.copy_(torch.from_numpy(p[4].T.copy()))
            model.affine.bias.copy_(torch.from_numpy(p[5]))
    return model, copied


def torch_step(torch, model, trainer, xs, ts):
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        batch_x, batch_t = trainer.get_batch(xs, ts, N, T)
        x = torch.from_numpy(batch_x).long()
        t = torch.from_numpy(batch_t).long()
        loss = model(x, t)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step
