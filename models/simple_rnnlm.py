"""The simplest recurrent language model: embed, recur, project, score.

    xs (N, T) ids -> TimeEmbedding -> TimeRNN -> TimeAffine -> TimeSoftmaxWithLoss <- ts (N, T)
"""

import numpy as np

from common.backend import FLOAT
from layers import TimeAffine, TimeEmbedding, TimeRNN, TimeSoftmaxWithLoss, joint_weight_bias
from models.base import Init, LanguageModel, check_sizes, config_sizes


class SimpleRnnlm(LanguageModel):
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
        init_scale: if given, every weight uniform in ``+-init_scale`` instead.

    Shape:
        forward: xs int ``(N, T)``, ts int ``(N, T)`` -> scalar mean loss
        backward: dout (default 1) -> None (fills ``grads``)
    """

    replicable = True  # a helper's replica computes the same bits (models.base.Model)

    def __init__(self, vocab_size: int = 10000, wordvec_size: int = 100, hidden_size: int = 100, *,
                 seed: int | None = None, rng=None, dtype=FLOAT, init_scale: float | None = None):
        V, D, H = check_sizes(vocab_size=vocab_size, wordvec_size=wordvec_size,
                              hidden_size=hidden_size)
        self.config = {"vocab_size": V, "wordvec_size": D, "hidden_size": H}
        init = Init(seed, rng, dtype, init_scale)
        self.embed = TimeEmbedding(init.normal((V, D), 1 / 100))
        self.rnn = TimeRNN(init.normal((D, H), 1 / np.sqrt(D)), init.normal((H, H), 1 / np.sqrt(H)),
                           init.zeros(H), stateful=True)
        self.affine = TimeAffine(*joint_weight_bias(init.normal((H, V), 1 / np.sqrt(H)),
                                                   init.zeros(V)))
        self.loss_layer = TimeSoftmaxWithLoss()
        self.layers = [self.embed, self.rnn, self.affine]
        self.rnn_layer = self.rnn  # the book's name
        self._collect_params(["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b", "affine.W", "affine.b"])

    @classmethod
    def param_shapes(cls, config: dict) -> dict:
        V, D, H = config_sizes(cls, config, "vocab_size", "wordvec_size", "hidden_size")
        return {"embed.W": (V, D), "rnn.Wx": (D, H), "rnn.Wh": (H, H), "rnn.b": (H,),
                "affine.W": (H, V), "affine.b": (V,)}
