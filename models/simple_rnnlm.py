"""The simplest recurrent language model: embed, recur, project, score.

    xs (N, T) ids -> TimeEmbedding -> TimeRNN -> TimeAffine -> TimeSoftmaxWithLoss <- ts (N, T)
"""

import numpy as np

from common.backend import FLOAT, to_gpu
from layers import TimeAffine, TimeEmbedding, TimeRNN, TimeSoftmaxWithLoss


class SimpleRnnlm:
    """A one-layer tanh RNN language model.

    ``params`` are, in order: embedding W ``(V, D)``, RNN Wx ``(D, H)``,
    Wh ``(H, H)``, b ``(H,)``, affine W ``(H, V)``, b ``(V,)``; ``grads`` match.
    The RNN is stateful, so consecutive batches of a truncated-BPTT stream
    continue each other; call ``reset_state()`` to start afresh.

    Initialisation: embedding ``N(0, 1) / 100``; Wx ``N(0, 1) / sqrt(D)``;
    Wh and the output W ``N(0, 1) / sqrt(H)`` (so activations keep roughly
    unit scale); zero biases.

    Args:
        vocab_size: V; wordvec_size: D; hidden_size: H.
        seed: seed of the weight initialisation (ignored if ``rng`` is given).
        rng: a ``numpy.random.Generator`` to draw the weights from.
        dtype: float32 for training; float64 for gradient checks.

    Shape:
        forward: xs int ``(N, T)``, ts int ``(N, T)`` -> scalar mean loss
        backward: dout (default 1) -> None (fills ``grads``)
    """

    def __init__(self, vocab_size=10000, wordvec_size=100, hidden_size=100, seed=None, rng=None,
                 dtype=FLOAT):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rng = rng if rng is not None else np.random.default_rng(seed)
        # Draw in float64 on the CPU, then cast: the same seed gives the same
        # weights on either backend.
        def init(shape, scale):
            return to_gpu((rng.standard_normal(shape) * scale).astype(dtype))

        embed_W = init((V, D), 1 / 100)
        rnn_Wx = init((D, H), 1 / np.sqrt(D))
        rnn_Wh = init((H, H), 1 / np.sqrt(H))
        rnn_b = to_gpu(np.zeros(H, dtype=dtype))
        affine_W = init((H, V), 1 / np.sqrt(H))
        affine_b = to_gpu(np.zeros(V, dtype=dtype))

        self.embed = TimeEmbedding(embed_W)
        self.rnn = TimeRNN(rnn_Wx, rnn_Wh, rnn_b, stateful=True)
        self.affine = TimeAffine(affine_W, affine_b)
        self.loss_layer = TimeSoftmaxWithLoss()
        self.layers = [self.embed, self.rnn, self.affine]

        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    @property
    def vocab_size(self):
        return self.embed.params[0].shape[0]

    def predict(self, xs):
        """Logits ``(N, T, V)`` for ids ``xs`` ``(N, T)``; advances the state."""
        x = self.embed.forward(xs)
        hs = self.rnn.forward(x)
        return self.affine.forward(hs)

    def forward(self, xs, ts):
        return self.loss_layer.forward(self.predict(xs), ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def reset_state(self):
        self.rnn.reset_state()
