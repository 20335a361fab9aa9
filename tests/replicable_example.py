"""Models of one's own that opt in to the batch halves (``replicable = True``),
for ``tests/test_replicable_models.py``.

They live in a module of their own because the helper process that
computes the second half of each batch rebuilds the model from its class's
module and name (:mod:`common.batch_worker`): it runs in the checkout,
where this module is ``tests.replicable_example``, and that is how the
tests import it. A class defined in a test file (which pytest imports
under a top-level name, from ``tests/`` on its own path) or in ``__main__``
could not be found there.

- :class:`GruSeq2seq`: the textbook's ``Seq2seq`` with a GRU in the
  encoder and the decoder (as in ``tests/test_new_models.py``), opted in.
- :class:`UndeclaredGruSeq2seq`: the same model, a subclass that does not
  declare ``replicable`` itself: never split (the declaration is not
  inherited).
- :class:`TwoLayerLstmLm`: a language model of two stateful LSTM layers,
  with dropout between the layers (ratio 0 by default), opted in.
- :class:`BiLstmTagger`: a tagger (a language model's interface, a tag
  for each token) reading through a bidirectional LSTM, which carries no
  state and has no ``stateful`` flag, opted in.
- :class:`PrintingSeq2seq`: ``Seq2seq`` that prints a line (its process id)
  at every ``forward``, wherever it runs.
- :class:`ForgetfulSeq2seq`: ``Seq2seq`` scaling its loss by a ``scale``
  its ``config`` leaves out, so that the replica (scale 1) computes other
  gradients without raising.
- :class:`HomeOnlySeq2seq`: ``Seq2seq`` whose ``forward`` raises in any
  process but the one it was built for (``config['home_pid']``): a replica
  that does not compute what the model does, as a class whose ``config``
  leaves something out would not.
"""

import os

import numpy as np

from common.backend import FLOAT
from layers import (
    TimeAffine,
    TimeBiLSTM,
    TimeDropout,
    TimeEmbedding,
    TimeGRU,
    TimeLSTM,
    TimeSoftmaxWithLoss,
)
from models import LanguageModel, Seq2seq
from models.base import Init, check_sizes
from models.seq2seq import Decoder, Encoder


def gru_weights(init, D, H):
    """Wx ``(D, 3H)``, Wh ``(H, 3H)``, bx and bh ``(3H,)``."""
    return (init.normal((D, 3 * H), 1 / np.sqrt(D)), init.normal((H, 3 * H), 1 / np.sqrt(H)),
            init.zeros(3 * H), init.zeros(3 * H))


class GruEncoder(Encoder):
    def _lstm(self, init, D, H):
        return TimeGRU(*gru_weights(init, D, H), stateful=False)


class GruDecoder(Decoder):
    def _lstm(self, init, D, H):
        return TimeGRU(*gru_weights(init, D, H), stateful=True)


class GruSeq2seq(Seq2seq):
    """A GRU encoder-decoder; arguments, shapes and ``config`` as :class:`Seq2seq`.

    Its forward and backward depend on nothing but the parameters and the
    pairs, and ``GruSeq2seq(**config, dtype=...)`` builds it: it may say so.
    """

    replicable = True
    encoder_class, decoder_class = GruEncoder, GruDecoder


class UndeclaredGruSeq2seq(GruSeq2seq):
    """:class:`GruSeq2seq` under another name, without its own ``replicable``."""


class TwoLayerLstmLm(LanguageModel):
    """Embedding, two stateful LSTM layers and the output layer, with
    dropout after the embedding and after each LSTM.

    Args:
        vocab_size: V; wordvec_size: D; hidden_size: H.
        dropout_ratio: of the three dropout layers (0: none drawn).
        seed, dtype: as for :class:`models.Rnnlm`.

    Shape:
        forward: xs, ts int ``(N, T)`` -> scalar mean loss; state ``4 x (N, H)``
        (h and c of each LSTM) carried to the next batch.
    """

    replicable = True

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int,
                 dropout_ratio: float = 0.0, *, seed: int | None = None, dtype=FLOAT):
        V, D, H = check_sizes(vocab_size=vocab_size, wordvec_size=wordvec_size,
                              hidden_size=hidden_size)
        # Everything the constructor takes but seed and dtype: the helper builds
        # its replica from it (its weights are then overwritten with these).
        self.config = {"vocab_size": V, "wordvec_size": D, "hidden_size": H,
                       "dropout_ratio": dropout_ratio}
        init = Init(seed, dtype=dtype)

        def lstm(D_in):
            return TimeLSTM(init.normal((D_in, 4 * H), 1 / np.sqrt(D_in)),
                            init.normal((H, 4 * H), 1 / np.sqrt(H)), init.zeros(4 * H),
                            stateful=True)

        def dropout():
            return TimeDropout(dropout_ratio, rng=init.child_rng())

        self.layers = [TimeEmbedding(init.normal((V, D), 1 / 100)), dropout(),
                       lstm(D), dropout(), lstm(H), dropout(),
                       TimeAffine(init.normal((H, V), 1 / np.sqrt(H)), init.zeros(V))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "lstm1.Wx", "lstm1.Wh", "lstm1.b",
                              "lstm2.Wx", "lstm2.Wh", "lstm2.b", "affine.W", "affine.b"])


class BiLstmTagger(LanguageModel):
    """Embedding, a bidirectional LSTM and an output layer of ``n_tags``
    scores for each token.

    Shape:
        forward: xs ``(N, T)`` ids below ``vocab_size``, ts ``(N, T)`` tags
        below ``n_tags`` -> scalar mean loss; no state carried.
    """

    replicable = True

    def __init__(self, vocab_size: int, hidden_size: int, n_tags: int, *,
                 seed: int | None = None, dtype=FLOAT):
        V, H, C = check_sizes(vocab_size=vocab_size, hidden_size=hidden_size, n_tags=n_tags)
        self.config = {"vocab_size": V, "hidden_size": H, "n_tags": C}
        init = Init(seed, dtype=dtype)

        def direction():
            return (init.normal((H, 4 * H), 1 / np.sqrt(H)),
                    init.normal((H, 4 * H), 1 / np.sqrt(H)), init.zeros(4 * H))

        self.layers = [TimeEmbedding(init.normal((V, H), 0.5)),
                       TimeBiLSTM(*direction(), *direction()),
                       TimeAffine(init.normal((2 * H, C), 1 / np.sqrt(2 * H)), init.zeros(C))]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._collect_params(["embed.W", "forward.Wx", "forward.Wh", "forward.b",
                              "backward.Wx", "backward.Wh", "backward.b", "affine.W",
                              "affine.b"])


class PrintingSeq2seq(Seq2seq):
    """:class:`Seq2seq` that prints ``forward in <pid>`` and 2 kB more at every
    forward: more than a pipe holds, over a few dozen batches."""

    replicable = True

    def forward(self, xs, ts):
        print(f"forward in {os.getpid()} " + "x" * 2000)
        return super().forward(xs, ts)


class HomeOnlySeq2seq(Seq2seq):
    """:class:`Seq2seq` whose ``forward`` raises outside process ``home_pid``."""

    replicable = True

    def __init__(self, vocab_size, wordvec_size, hidden_size, home_pid, **kwargs):
        super().__init__(vocab_size, wordvec_size, hidden_size, **kwargs)
        self.config = {**self.config, "home_pid": home_pid}

    def forward(self, xs, ts):
        if os.getpid() != self.config["home_pid"]:
            raise RuntimeError("not the process this model was built for")
        return super().forward(xs, ts)


class ForgetfulSeq2seq(Seq2seq):
    """:class:`Seq2seq` whose loss is multiplied by ``scale``, which its
    ``config`` does not record: it breaks the promise ``replicable`` makes."""

    replicable = True

    def __init__(self, vocab_size, wordvec_size, hidden_size, scale=1.0, **kwargs):
        super().__init__(vocab_size, wordvec_size, hidden_size, **kwargs)
        self.scale = scale

    def forward(self, xs, ts):
        return self.scale * super().forward(xs, ts)

    def backward(self, dout=1):
        return super().backward(dout * self.scale)


class ReversingSeq2seq(Seq2seq):
    """:class:`Seq2seq` that reads its questions reversed when ``reverse``,
    which its ``config`` does not record: its replica answers otherwise."""

    replicable = True

    def __init__(self, vocab_size, wordvec_size, hidden_size, reverse=False, **kwargs):
        super().__init__(vocab_size, wordvec_size, hidden_size, **kwargs)
        self.reverse = reverse

    def generate(self, xs, start_id, sample_size, beam_width=1):
        xs = xs[:, ::-1] if self.reverse else xs
        return super().generate(xs, start_id, sample_size, beam_width=beam_width)
