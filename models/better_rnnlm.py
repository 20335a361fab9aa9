"""Stacked LSTMs with dropout and (when D == H) tied input/output embeddings.

    xs -> Embedding -> Dropout -> [LSTM -> Dropout] x num_layers -> Affine -> loss

This is the regularised LSTM language model of Zaremba et al. (2014), with
the weight tying of Press & Wolf (2017) and Inan et al. (2017): the output
layer's weight is the embedding matrix itself, which saves ``V * H``
parameters and usually lowers perplexity. Tying needs the word vectors and
the hidden state to have one size (D == H, as in the book's 650/650 model);
by default the weights are tied exactly then.
"""

import numpy as np

from common.backend import FLOAT
from common.util import finite_number
from layers import (
    TimeAffine,
    TimeDropout,
    TimeEmbedding,
    TimeLSTM,
    TimeSoftmaxWithLoss,
    joint_weight_bias,
)
from models.base import Init, LanguageModel, check_sizes, config_sizes

#: The most layers :meth:`BetterRnnlm.param_shapes` describes. A file's config
#: is checked against its arrays through those shapes, one dict entry per
#: array; a config claiming more layers (a damaged or hostile file of a few
#: kB saying ``num_layers: 1000000000``) is refused at once instead of
#: building a dict no file could match (far beyond any stack that trains:
#: 10,000 layers take 0.3 s just to build at V = 5, D = H = 2).
MAX_FILE_LAYERS = 10_000


class BetterRnnlm(LanguageModel):
    """A configurable stacked-LSTM language model.

    The first four arguments are the book's, in its order
    (``BetterRnnlm(vocab_size, wordvec_size, hidden_size, dropout_ratio)``);
    the others are keyword-only.

    Args:
        vocab_size, wordvec_size, hidden_size: V, D, H (all LSTM layers have H units).
        dropout_ratio: dropout after the embedding and after every LSTM layer
            (0 leaves the dropout layers out).
        num_layers: how many LSTM layers are stacked (a saved file loads with
            up to ``MAX_FILE_LAYERS``, 10,000).
        tie_weights: use the embedding matrix as the output weight: ``True``
            (needs D == H), ``False``, or ``None`` (the default): tied when
            D == H, as in the book (whose model is always tied, D = H = 650),
            else untied. ``config['tie_weights']`` records the choice made.
        init_scale: uniform init in ``+-init_scale`` (else the textbook's
            normal init); seed, rng, dtype as :class:`~models.SimpleRnnlm`.

    ``params``: embedding W; for each layer ``k``: ``lstm{k}.Wx``, ``.Wh``,
    ``.b``; then affine W (the embedding W again when tied) and affine b.
    Call ``train()`` / ``eval()`` to switch dropout; the trainer and
    ``eval_perplexity`` do it for you.
    """

    def __init__(self, vocab_size: int = 10000, wordvec_size: int = 650, hidden_size: int = 650,
                 dropout_ratio: float = 0.5, *, num_layers: int = 2,
                 tie_weights: bool | None = None,
                 seed: int | None = None, rng=None, dtype=FLOAT,
                 init_scale: float | None = None):
        V, D, H, num_layers = check_sizes(vocab_size=vocab_size, wordvec_size=wordvec_size,
                                          hidden_size=hidden_size, num_layers=num_layers)
        if not (finite_number(dropout_ratio) and 0 <= dropout_ratio < 1):
            raise ValueError(f"dropout_ratio must be in [0, 1) (0: no dropout), got "
                             f"{dropout_ratio!r}")
        if tie_weights is None:
            tie_weights = D == H  # the book's model (D == H) is tied
        if not isinstance(tie_weights, (bool, np.bool_)):
            raise ValueError(f"tie_weights must be True or False, got {tie_weights!r} (or "
                             "None, the default: tied when wordvec_size == hidden_size)")
        # Plain Python values: the config is saved as JSON, which has no numpy scalars.
        dropout_ratio, tie_weights = float(dropout_ratio), bool(tie_weights)
        if tie_weights and D != H:
            raise ValueError(f"tie_weights needs wordvec_size == hidden_size, got D={D}, H={H}")
        self.config = {"vocab_size": V, "wordvec_size": D, "hidden_size": H,
                       "num_layers": num_layers, "dropout_ratio": dropout_ratio,
                       "tie_weights": tie_weights}
        init = Init(seed, rng, dtype, init_scale)

        def dropout():
            return [TimeDropout(dropout_ratio, rng=init.child_rng())] if dropout_ratio else []

        self.embed = TimeEmbedding(init.normal((V, D), 1 / 100))
        self.layers = [self.embed, *dropout()]
        names = ["embed.W"]
        self.lstms = []
        for k in range(num_layers):
            d_in = D if k == 0 else H
            lstm = TimeLSTM(init.normal((d_in, 4 * H), 1 / np.sqrt(d_in)),
                            init.normal((H, 4 * H), 1 / np.sqrt(H)), init.zeros(4 * H),
                            stateful=True)
            self.lstms.append(lstm)
            self.layers += [lstm, *dropout()]
            names += [f"lstm{k}.Wx", f"lstm{k}.Wh", f"lstm{k}.b"]
        if tie_weights:
            self.affine = TimeAffine(self.embed.params[0], init.zeros(V), transpose=True)
        else:
            self.affine = TimeAffine(*joint_weight_bias(init.normal((H, V), 1 / np.sqrt(H)),
                                                   init.zeros(V)))
        self.layers.append(self.affine)
        # the book's names
        self.lstm_layers = self.lstms
        self.drop_layers = [layer for layer in self.layers if isinstance(layer, TimeDropout)]
        names += ["affine.W", "affine.b"]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(names)

    @classmethod
    def param_shapes(cls, config: dict) -> dict:
        V, D, H, L = config_sizes(cls, config, "vocab_size", "wordvec_size", "hidden_size",
                                  "num_layers")
        if L > MAX_FILE_LAYERS:
            raise ValueError(f"the config's num_layers is {L}, more than the "
                             f"{MAX_FILE_LAYERS:,} layers a {cls.__name__} file may have: it "
                             f"is damaged or hand-edited (so many layers would be "
                             f"{3 * L + 2:,} arrays or more)")
        shapes = {"embed.W": (V, D)}
        for k in range(L):
            d_in = D if k == 0 else H
            shapes.update({f"lstm{k}.Wx": (d_in, 4 * H), f"lstm{k}.Wh": (H, 4 * H),
                           f"lstm{k}.b": (4 * H,)})
        tie = config.get("tie_weights")
        if not (D == H if tie is None else tie):
            shapes["affine.W"] = (H, V)
        shapes["affine.b"] = (V,)
        return shapes
