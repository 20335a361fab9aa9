"""A straightforward, textbook-style reference of the sequence-to-sequence models.

Written the way "Deep Learning from Scratch 2" (ch. 7-8) lays its code out,
on purpose, as the yardstick that :mod:`benchmarks.seq2seq_speed` times
rnnlab against:

* ``TimeLSTM`` makes one ``LSTM`` cell object per time step at every
  forward, and walks them back in backward; each cell computes its own
  weight gradients, which the Time layer adds up step by step;
* ``TimeEmbedding`` holds one ``Embedding`` object per step, each scattering
  its gradient with ``np.add.at`` (it, ``TimeAffine``, ``TimeSoftmaxWithLoss``
  and ``softmax`` are the language-model reference's,
  :mod:`benchmarks.reference_textbook`; this module adds what is new for
  sequence to sequence);
* ``TimeAttention`` holds one ``Attention`` object per decoder step, which
  repeats the decoder state over the encoder steps and multiplies
  elementwise;
* the peeky decoder repeats and concatenates with ``np.repeat`` and
  ``np.concatenate``; ``TimeAffine`` reshapes to one product;
* ``Adam`` and gradient clipping loop over the parameters; the training
  loop shuffles with a permutation and slices mini-batches;
* generation answers one question per call, one step at a time.

Everything is float32. The gate order (i, f, g, o), the parameter order and
the initialisation are rnnlab's, so ``copy_params`` can give a reference
model the weights of an rnnlab model, and a test checks that both compute
the same loss and gradients. Not part of the library; not meant to be fast.
"""

import numpy as np

from benchmarks.reference_textbook import TimeAffine, TimeEmbedding, TimeSoftmaxWithLoss, softmax


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- layers ------------------------------------------------------------------------------------


class LSTM:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
        i = sigmoid(A[:, :H])
        f = sigmoid(A[:, H:2 * H])
        g = np.tanh(A[:, 2 * H:3 * H])
        o = sigmoid(A[:, 3 * H:])
        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        tanh_c = np.tanh(c_next)
        ds = dc_next + (dh_next * o) * (1 - tanh_c ** 2)
        dc_prev = ds * f
        di = ds * g * i * (1 - i)
        df = ds * c_prev * f * (1 - f)
        dg = ds * i * (1 - g ** 2)
        do = dh_next * tanh_c * o * (1 - o)
        dA = np.hstack((di, df, dg, do))
        self.grads[0][...] = np.dot(x.T, dA)
        self.grads[1][...] = np.dot(h_prev.T, dA)
        self.grads[2][...] = dA.sum(axis=0)
        return np.dot(dA, Wx.T), np.dot(dA, Wh.T), dc_prev


class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.c, self.dh = None, None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T):
            layer = LSTM(*self.params)
            self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D = Wx.shape[0]
        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh, dc = 0, 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


class AttentionWeight:
    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, h):
        N, T, H = hs.shape
        hr = h.reshape(N, 1, H).repeat(T, axis=1)
        s = np.sum(hs * hr, axis=2)
        a = softmax(s)
        self.cache = (hs, hr, a)
        return a

    def backward(self, da):
        hs, hr, a = self.cache
        N, T, H = hs.shape
        ds = a * (da - np.sum(a * da, axis=1, keepdims=True))
        dt = ds.reshape(N, T, 1).repeat(H, axis=2)
        dhs = dt * hr
        dhr = dt * hs
        dh = np.sum(dhr, axis=1)
        return dhs, dh


class WeightSum:
    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, a):
        N, T, H = hs.shape
        ar = a.reshape(N, T, 1).repeat(H, axis=2)
        self.cache = (hs, ar)
        return np.sum(hs * ar, axis=1)

    def backward(self, dc):
        hs, ar = self.cache
        N, T, H = hs.shape
        dt = dc.reshape(N, 1, H).repeat(T, axis=1)
        dar = dt * hs
        dhs = dt * ar
        da = np.sum(dar, axis=2)
        return dhs, da


class Attention:
    def __init__(self):
        self.params, self.grads = [], []
        self.weight_layer = AttentionWeight()
        self.sum_layer = WeightSum()
        self.attention_weight = None

    def forward(self, hs, h):
        a = self.weight_layer.forward(hs, h)
        self.attention_weight = a
        return self.sum_layer.forward(hs, a)

    def backward(self, dc):
        dhs0, da = self.sum_layer.backward(dc)
        dhs1, dh = self.weight_layer.backward(da)
        return dhs0 + dhs1, dh


class TimeAttention:
    def __init__(self):
        self.params, self.grads = [], []
        self.layers = None
        self.attention_weights = None

    def forward(self, hs_enc, hs_dec):
        N, T, H = hs_dec.shape
        out = np.empty_like(hs_dec)
        self.layers = []
        self.attention_weights = []
        for t in range(T):
            layer = Attention()
            out[:, t, :] = layer.forward(hs_enc, hs_dec[:, t, :])
            self.layers.append(layer)
            self.attention_weights.append(layer.attention_weight)
        return out

    def backward(self, dout):
        N, T, H = dout.shape
        dhs_enc = 0
        dhs_dec = np.empty_like(dout)
        for t in range(T):
            dhs, dh = self.layers[t].backward(dout[:, t, :])
            dhs_enc += dhs
            dhs_dec[:, t, :] = dh
        return dhs_enc, dhs_dec


# -- models ------------------------------------------------------------------------------------


def _randn(rng, shape, scale):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _lstm_params(rng, D, H):
    return (_randn(rng, (D, 4 * H), 1 / np.sqrt(D)), _randn(rng, (H, 4 * H), 1 / np.sqrt(H)),
            np.zeros(4 * H, dtype=np.float32))


def _gather(part, *layers):
    """A part's ``params`` and ``grads``: those of its layers, in order."""
    part.params, part.grads = [], []
    for layer in layers:
        part.params += layer.params
        part.grads += layer.grads


class Encoder:
    def __init__(self, V, D, H, rng):
        self.embed = TimeEmbedding(_randn(rng, (V, D), 1 / 100))
        self.lstm = TimeLSTM(*_lstm_params(rng, D, H), stateful=False)
        _gather(self, self.embed, self.lstm)
        self.hs = None

    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs[:, -1, :]

    def backward(self, dh):
        dhs = np.zeros_like(self.hs)
        dhs[:, -1, :] = dh
        self.embed.backward(self.lstm.backward(dhs))


class Decoder:
    def __init__(self, V, D, H, rng):
        self.embed = TimeEmbedding(_randn(rng, (V, D), 1 / 100))
        self.lstm = TimeLSTM(*_lstm_params(rng, D, H), stateful=True)
        self.affine = TimeAffine(_randn(rng, (H, V), 1 / np.sqrt(H)), np.zeros(V, np.float32))
        _gather(self, self.embed, self.lstm, self.affine)

    def forward(self, xs, h):
        self.lstm.set_state(h)
        return self.affine.forward(self.lstm.forward(self.embed.forward(xs)))

    def backward(self, dscore):
        self.embed.backward(self.lstm.backward(self.affine.backward(dscore)))
        return self.lstm.dh

    def generate(self, h, start_id, sample_size):
        sampled = []
        x = start_id
        self.lstm.set_state(h)
        for _ in range(sample_size):
            out = self.affine.forward(self.lstm.forward(self.embed.forward(np.array([[x]]))))
            x = int(np.argmax(out.flatten()))
            sampled.append(x)
        return sampled


class PeekyDecoder:
    def __init__(self, V, D, H, rng):
        self.embed = TimeEmbedding(_randn(rng, (V, D), 1 / 100))
        self.lstm = TimeLSTM(*_lstm_params(rng, H + D, H), stateful=True)
        self.affine = TimeAffine(_randn(rng, (H + H, V), 1 / np.sqrt(H + H)),
                                 np.zeros(V, np.float32))
        _gather(self, self.embed, self.lstm, self.affine)
        self.H = H

    def forward(self, xs, h):
        N, T = xs.shape
        N, H = h.shape
        self.lstm.set_state(h)
        out = self.embed.forward(xs)
        hs = np.repeat(h, T, axis=0).reshape(N, T, H)
        out = np.concatenate((hs, out), axis=2)
        out = self.lstm.forward(out)
        out = np.concatenate((hs, out), axis=2)
        return self.affine.forward(out)

    def backward(self, dscore):
        H = self.H
        dout = self.affine.backward(dscore)
        dout, dhs0 = dout[:, :, H:], dout[:, :, :H]
        dout = self.lstm.backward(dout)
        dembed, dhs1 = dout[:, :, H:], dout[:, :, :H]
        self.embed.backward(dembed)
        dhs = dhs0 + dhs1
        return self.lstm.dh + np.sum(dhs, axis=1)

    def generate(self, h, start_id, sample_size):
        sampled = []
        x = start_id
        self.lstm.set_state(h)
        H = h.shape[1]
        peeky_h = h.reshape(1, 1, H)
        for _ in range(sample_size):
            out = self.embed.forward(np.array([x]).reshape((1, 1)))
            out = np.concatenate((peeky_h, out), axis=2)
            out = self.lstm.forward(out)
            out = np.concatenate((peeky_h, out), axis=2)
            x = int(np.argmax(self.affine.forward(out).flatten()))
            sampled.append(x)
        return sampled


class AttentionEncoder(Encoder):
    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs

    def backward(self, dhs):
        self.embed.backward(self.lstm.backward(dhs))


class AttentionDecoder:
    def __init__(self, V, D, H, rng):
        self.embed = TimeEmbedding(_randn(rng, (V, D), 1 / 100))
        self.lstm = TimeLSTM(*_lstm_params(rng, D, H), stateful=True)
        self.attention = TimeAttention()
        self.affine = TimeAffine(_randn(rng, (H + H, V), 1 / np.sqrt(H + H)),
                                 np.zeros(V, np.float32))
        _gather(self, self.embed, self.lstm, self.attention, self.affine)

    def forward(self, xs, enc_hs):
        self.lstm.set_state(enc_hs[:, -1])
        dec_hs = self.lstm.forward(self.embed.forward(xs))
        c = self.attention.forward(enc_hs, dec_hs)
        return self.affine.forward(np.concatenate((c, dec_hs), axis=2))

    def backward(self, dscore):
        dout = self.affine.backward(dscore)
        N, T, H2 = dout.shape
        H = H2 // 2
        dc, ddec_hs0 = dout[:, :, :H], dout[:, :, H:]
        denc_hs, ddec_hs1 = self.attention.backward(dc)
        dout = self.lstm.backward(ddec_hs0 + ddec_hs1)
        denc_hs[:, -1] += self.lstm.dh
        self.embed.backward(dout)
        return denc_hs

    def generate(self, enc_hs, start_id, sample_size):
        sampled = []
        x = start_id
        self.lstm.set_state(enc_hs[:, -1])
        for _ in range(sample_size):
            dec_hs = self.lstm.forward(self.embed.forward(np.array([x]).reshape((1, 1))))
            c = self.attention.forward(enc_hs, dec_hs)
            out = self.affine.forward(np.concatenate((c, dec_hs), axis=2))
            x = int(np.argmax(out.flatten()))
            sampled.append(x)
        return sampled


class Seq2seq:
    encoder_class, decoder_class = Encoder, Decoder

    def __init__(self, vocab_size, wordvec_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        self.encoder = self.encoder_class(vocab_size, wordvec_size, hidden_size, rng)
        self.decoder = self.decoder_class(vocab_size, wordvec_size, hidden_size, rng)
        self.softmax = TimeSoftmaxWithLoss()
        _gather(self, self.encoder, self.decoder)

    def forward(self, xs, ts):
        h = self.encoder.forward(xs)
        score = self.decoder.forward(ts[:, :-1], h)
        return self.softmax.forward(score, ts[:, 1:])

    def backward(self, dout=1):
        self.encoder.backward(self.decoder.backward(self.softmax.backward(dout)))

    def generate(self, xs, start_id, sample_size):
        return self.decoder.generate(self.encoder.forward(xs), start_id, sample_size)


class PeekySeq2seq(Seq2seq):
    encoder_class, decoder_class = Encoder, PeekyDecoder


class AttentionSeq2seq(Seq2seq):
    encoder_class, decoder_class = AttentionEncoder, AttentionDecoder


def copy_params(reference, model):
    """Give a reference model the weights of the rnnlab model of the same kind."""
    if len(reference.params) != len(model.params):
        raise ValueError(f"{len(reference.params)} reference parameters for "
                         f"{len(model.params)} rnnlab ones")
    for p, q in zip(reference.params, model.params, strict=True):
        p[...] = np.asarray(q)


# -- training and evaluation ---------------------------------------------------------------------


class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m, self.v = None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for i in range(len(params)):
            self.m[i] += (1 - self.beta1) * (grads[i] - self.m[i])
            self.v[i] += (1 - self.beta2) * (grads[i] ** 2 - self.v[i])
            params[i] -= lr_t * self.m[i] / (np.sqrt(self.v[i]) + 1e-7)


def clip_grads(grads, max_norm):
    total_norm = 0
    for grad in grads:
        total_norm += np.sum(grad ** 2)
    total_norm = np.sqrt(total_norm)
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate


def fit(model, optimizer, x, t, batch_size=128, max_grad=5.0, max_iters=None, seed=0):
    """One epoch over shuffled mini-batches (the first ``max_iters`` of them, if given)."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    x, t = x[idx], t[idx]
    iters = len(x) // batch_size
    if max_iters is not None:
        iters = min(iters, max_iters)
    losses = []
    for i in range(iters):
        batch_x = x[i * batch_size:(i + 1) * batch_size]
        batch_t = t[i * batch_size:(i + 1) * batch_size]
        losses.append(model.forward(batch_x, batch_t))
        model.backward()
        if max_grad is not None:
            clip_grads(model.grads, max_grad)
        optimizer.update(model.params, model.grads)
    return losses


def accuracy_one_by_one(model, questions, answers):
    """Exact-match accuracy, one question per call (the textbook's evaluation loop)."""
    correct = 0
    for i in range(len(questions)):
        question, answer = questions[[i]], answers[i]
        guess = model.generate(question, int(answer[0]), len(answer) - 1)
        correct += int(list(guess) == [int(a) for a in answer[1:]])
    return correct / len(questions)


def answers_one_by_one(model, questions, answers):
    """The model's answers ``(N, T - 1)``, one question per call, each started
    by its answer's first id (as :func:`accuracy_one_by_one` makes them)."""
    return np.array([model.generate(questions[[i]], int(answers[i, 0]), answers.shape[1] - 1)
                     for i in range(len(questions))])
