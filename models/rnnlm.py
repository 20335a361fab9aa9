"""The LSTM language model of the textbook, and its GRU twin.

    xs (N, T) -> TimeEmbedding -> TimeLSTM (or TimeGRU) -> TimeAffine -> loss
"""

import numpy as np

from common.backend import FLOAT
from layers import (
    TimeAffine,
    TimeEmbedding,
    TimeGRU,
    TimeLSTM,
    TimeSoftmaxWithLoss,
    joint_weight_bias,
)
from models.base import Init, LanguageModel, check_sizes, config_sizes


class Rnnlm(LanguageModel):
    """One stateful LSTM layer between an embedding and the output layer.

    ``params``: embedding W ``(V, D)``, LSTM Wx ``(D, 4H)``, Wh ``(H, 4H)``,
    b ``(4H,)`` (gate order i, f, g, o), affine W ``(H, V)``, b ``(V,)``.
    Initialisation as :class:`~models.SimpleRnnlm` (``N(0,1)/100`` embedding,
    ``N(0,1)/sqrt(fan_in)`` matrices, zero biases), or uniform in
    ``+-init_scale`` when given. Arguments as :class:`~models.SimpleRnnlm`.
    """

    replicable = True  # a helper's replica computes the same bits (models.base.Model)

    def __init__(self, vocab_size: int = 10000, wordvec_size: int = 100, hidden_size: int = 100, *,
                 seed: int | None = None, rng=None, dtype=FLOAT, init_scale: float | None = None):
        V, D, H = check_sizes(vocab_size=vocab_size, wordvec_size=wordvec_size,
                              hidden_size=hidden_size)
        self.config = {"vocab_size": V, "wordvec_size": D, "hidden_size": H}
        init = Init(seed, rng, dtype, init_scale)
        self.embed = TimeEmbedding(init.normal((V, D), 1 / 100))
        self.lstm = TimeLSTM(init.normal((D, 4 * H), 1 / np.sqrt(D)),
                             init.normal((H, 4 * H), 1 / np.sqrt(H)), init.zeros(4 * H),
                             stateful=True)
        self.affine = TimeAffine(*joint_weight_bias(init.normal((H, V), 1 / np.sqrt(H)),
                                                   init.zeros(V)))
        self.loss_layer = TimeSoftmaxWithLoss()
        self.layers = [self.embed, self.lstm, self.affine]
        self.lstm_layer = self.lstm  # the book's name
        self._collect_params(["embed.W", "lstm.Wx", "lstm.Wh", "lstm.b", "affine.W", "affine.b"])

    @classmethod
    def param_shapes(cls, config: dict) -> dict:
        V, D, H = config_sizes(cls, config, "vocab_size", "wordvec_size", "hidden_size")
        return {"embed.W": (V, D), "lstm.Wx": (D, 4 * H), "lstm.Wh": (H, 4 * H),
                "lstm.b": (4 * H,), "affine.W": (H, V), "affine.b": (V,)}


class GruRnnlm(LanguageModel):
    """One stateful GRU layer between an embedding and the output layer.

    ``params``: embedding W ``(V, D)``, GRU Wx ``(D, 3H)``, Wh ``(H, 3H)``,
    bx ``(3H,)``, bh ``(3H,)`` (gate order r, z, n, as PyTorch), affine W
    ``(H, V)``, b ``(V,)``. Arguments and initialisation as :class:`Rnnlm`.
    """

    replicable = True  # a helper's replica computes the same bits (models.base.Model)

    def __init__(self, vocab_size: int = 10000, wordvec_size: int = 100, hidden_size: int = 100, *,
                 seed: int | None = None, rng=None, dtype=FLOAT, init_scale: float | None = None):
        V, D, H = check_sizes(vocab_size=vocab_size, wordvec_size=wordvec_size,
                              hidden_size=hidden_size)
        self.config = {"vocab_size": V, "wordvec_size": D, "hidden_size": H}
        init = Init(seed, rng, dtype, init_scale)
        self.embed = TimeEmbedding(init.normal((V, D), 1 / 100))
        self.gru = TimeGRU(init.normal((D, 3 * H), 1 / np.sqrt(D)),
                           init.normal((H, 3 * H), 1 / np.sqrt(H)), init.zeros(3 * H),
                           init.zeros(3 * H), stateful=True)
        self.affine = TimeAffine(*joint_weight_bias(init.normal((H, V), 1 / np.sqrt(H)),
                                                   init.zeros(V)))
        self.loss_layer = TimeSoftmaxWithLoss()
        self.layers = [self.embed, self.gru, self.affine]
        self._collect_params(["embed.W", "gru.Wx", "gru.Wh", "gru.bx", "gru.bh", "affine.W",
                              "affine.b"])

    @classmethod
    def param_shapes(cls, config: dict) -> dict:
        V, D, H = config_sizes(cls, config, "vocab_size", "wordvec_size", "hidden_size")
        return {"embed.W": (V, D), "gru.Wx": (D, 3 * H), "gru.Wh": (H, 3 * H),
                "gru.bx": (3 * H,), "gru.bh": (3 * H,), "affine.W": (H, V), "affine.b": (V,)}
