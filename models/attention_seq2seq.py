"""Seq2seq with attention: the decoder looks back at every encoder state.

    xs -> TimeEmbedding -> TimeLSTM (or a bidirectional one) -> enc_hs (N, T_enc, H)
    ts[:, :-1] -> TimeEmbedding -> TimeLSTM (starting from the encoder's last state) -> dec_hs
    TimeAttention(enc_hs, dec_hs) -> cs (N, T_dec, H);  [cs | dec_hs] -> TimeAffine -> scores

At each step the decoder state picks, by dot-product attention, a weighted
mix of the encoder states (the context ``c``); the output layer reads the
context beside the decoder state. The weights are kept for inspection:
``decoder.attention.attention_weights`` (one ``(N, T_enc)`` array per step).
"""

import numpy as np

from common.backend import FLOAT, xp
from common.parallel import deferred
from layers import Concat, TimeAttention, TimeBiLSTM
from layers._checks import require_forward
from models.seq2seq import (
    Decoder,
    Encoder,
    Seq2seq,
    _lstm_shapes,
    check_encoding,
    lstm_weights,
)


class AttentionEncoder(Encoder):
    """Embed the question and run an LSTM over it; all hidden states are the encoding.

    With ``bidirectional=True`` the LSTM is a :class:`~layers.TimeBiLSTM`
    of ``H / 2`` units per direction, so the states still have ``H``
    features; its summary for the decoder's first state is the forward
    half's last state beside the backward half's first one (each has then
    read the whole question).

    Shape:
        forward: xs int ``(N, T)`` -> hs ``(N, T, H)``
        backward: dhs ``(N, T, H)``, dh ``(N, H)`` (gradient of :meth:`final_state`) -> None
    """

    def __init__(self, vocab_size, wordvec_size, hidden_size, init=None, bidirectional=False):
        self.bidirectional = bidirectional
        super().__init__(vocab_size, wordvec_size, hidden_size, init)

    def _lstm(self, init, D, H):
        if not self.bidirectional:
            return super()._lstm(init, D, H)
        if H % 2:
            raise ValueError(f"a bidirectional encoder needs an even hidden_size, got {H}")
        return TimeBiLSTM(*lstm_weights(init, D, H // 2), *lstm_weights(init, D, H // 2))

    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs

    def final_state(self):
        """The summary ``(N, H)`` of the question that starts the decoder."""
        return summary(self.hs, self.bidirectional)

    def backward(self, dhs, dh=None):
        require_forward(self, self.hs)
        if dh is not None:
            dhs = dhs.copy()
            if self.bidirectional:
                H2 = dhs.shape[2] // 2
                dhs[:, -1, :H2] += dh[:, :H2]
                dhs[:, 0, H2:] += dh[:, H2:]
            else:
                dhs[:, -1, :] += dh
        self.embed.backward(self.lstm.backward(dhs))


def summary(enc_hs, bidirectional: bool):
    """The encoder states ``(N, T_enc, H)`` summed up in one ``(N, H)``: the last
    step's, or for a bidirectional encoder each direction's last (the backward
    half reads the question from its end, so its last state is at step 0)."""
    if not bidirectional:
        return enc_hs[:, -1, :]
    H2 = enc_hs.shape[2] // 2
    return xp.concatenate([enc_hs[:, -1, :H2], enc_hs[:, 0, H2:]], axis=1)


class AttentionDecoder(Decoder):
    """A decoder that attends over all encoder states at each step.

    ``params``: embedding W ``(V, D)``, LSTM Wx ``(D, 4H)``, Wh ``(H, 4H)``,
    b ``(4H,)``, affine W ``(2H, V)`` (rows for the context first), b ``(V,)``.

    ``forward(xs, enc_hs, h=None)`` starts the LSTM from ``h`` or, as in the
    textbook, from ``enc_hs[:, -1]``; after ``backward``, ``dh`` holds the
    gradient w.r.t. that initial state (in the textbook's case it is also
    added into the returned ``denc_hs[:, -1]``).

    Shape:
        forward: xs int ``(N, T_dec)``, enc_hs ``(N, T_enc, H)`` -> scores ``(N, T_dec, V)``
        backward: dscore ``(N, T_dec, V)`` -> denc_hs ``(N, T_enc, H)``
    """

    affine_extra = 1  # [context | decoder state]

    def __init__(self, vocab_size, wordvec_size, hidden_size, init=None):
        super().__init__(vocab_size, wordvec_size, hidden_size, init)
        self.attention = TimeAttention()  # no parameters
        self.layers.insert(2, self.attention)  # embed, lstm, attention, affine
        self.concat = Concat()  # [context | decoder state] into the affine layer
        self.dh = None
        self._h_given = False
        self.enc_hs = None  # while generating
        self._weights = None

    def forward(self, xs, enc_hs, h=None):
        check_enc_hs(enc_hs, xs)
        self._h_given = h is not None
        self.lstm.set_state(enc_hs[:, -1] if h is None else h)
        dec_hs = self.lstm.forward(self.embed.forward(xs))
        cs = self.attention.forward(enc_hs, dec_hs)
        return self.affine.forward(self.concat.forward(cs, dec_hs))

    def backward(self, dscore):
        dcs, ddec_hs0 = self.concat.backward(self.affine.backward(dscore))
        denc_hs, ddec_hs1 = self.attention.backward(dcs)
        self.embed.backward(self.lstm.backward(ddec_hs0 + ddec_hs1))
        self.dh = self.lstm.dh
        if not self._h_given:
            denc_hs[:, -1] += self.dh
        return denc_hs

    # -- generation: begin / step / select (see models.seq2seq) ---------------------------

    # Set by the model: the book-style decoder.generate(encoder.forward(xs), ...)
    # then starts from the state the model's own generate and training start from.
    bidirectional_encoder = False

    def begin(self, enc_hs, h=None):
        check_enc_hs(enc_hs)
        super().begin(summary(enc_hs, self.bidirectional_encoder) if h is None else h)
        self.enc_hs = enc_hs
        self._weights = []  # attention weights of the steps so far, each (M, T_enc)
        self.attention.attention_weights = []  # none yet (also when no step follows)

    def step(self, ids):
        dec_hs = self.lstm.forward(self.embed.forward(ids[:, None]))
        cs = self.attention.forward(self.enc_hs, dec_hs)
        self._weights.append(self.attention.attention_weights[0])
        self.attention.attention_weights = list(self._weights)
        return self.affine.forward(xp.concatenate([cs, dec_hs], axis=2))[:, 0]

    def select(self, rows):
        super().select(rows)
        self.enc_hs = self.enc_hs[rows]
        self._weights = [w[rows] for w in self._weights]
        self.attention.attention_weights = list(self._weights)


def check_enc_hs(enc_hs, xs=None):
    """The encoder states an attention decoder reads: ``(N, T_enc, H)``, at
    least one step (and one row per question of ``xs``, when given)."""
    check_encoding("enc_hs", enc_hs, 3, "(N, T_enc, H), all the encoder's states", xs)
    if enc_hs.shape[1] == 0:
        raise ValueError(f"enc_hs has no steps (shape {enc_hs.shape}): attention needs the "
                         f"states of a question of at least one id")


class AttentionSeq2seq(Seq2seq):
    """The textbook's ``AttentionSeq2seq``: :class:`AttentionEncoder` and
    :class:`AttentionDecoder`; arguments, methods and shapes as
    :class:`~models.Seq2seq`, plus ``bidirectional=True`` for a
    bidirectional encoder (``hidden_size`` even).

    After ``forward`` or ``generate``, ``decoder.attention.attention_weights``
    holds one ``(N, T_enc)`` array per decoder step.
    """

    replicable = True  # a helper's replica computes the same bits (models.base.Model)

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, *,
                 seed: int | None = None, rng=None, dtype=FLOAT, bidirectional: bool = False):
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")
        self.bidirectional = bool(bidirectional)
        super().__init__(vocab_size, wordvec_size, hidden_size, seed=seed, rng=rng, dtype=dtype)
        self.config["bidirectional"] = self.bidirectional
        self.decoder.bidirectional_encoder = self.bidirectional

    @classmethod
    def param_shapes(cls, config: dict) -> dict:
        shapes = super().param_shapes(config)
        if config.get("bidirectional"):
            D, H = shapes["encoder.embed.W"][1], shapes["encoder.lstm.Wh"][0]
            for name in ("Wx", "Wh", "b"):
                del shapes[f"encoder.lstm.{name}"]
            for direction in ("forward", "backward"):
                shapes.update(_lstm_shapes(f"encoder.lstm.{direction}", D, H // 2))
        return shapes

    def encoder_class(self, V, D, H, init):
        return AttentionEncoder(V, D, H, init, bidirectional=self.bidirectional)

    decoder_class = AttentionDecoder

    def forward(self, xs, ts) -> float:
        self._check_pairs(xs, ts)
        enc_hs = self.encoder.forward(xs)
        score = self.decoder.forward(ts[:, :-1], enc_hs, self.encoder.final_state())
        loss = self.softmax.forward(score, ts[:, 1:])
        self._mark_forward()
        return loss

    def backward(self, dout: float = 1) -> None:
        self._check_parts_unchanged()
        with deferred():
            denc_hs = self.decoder.backward(self.softmax.backward(dout))
            self.encoder.backward(denc_hs, self.decoder.dh)

    def _begin(self, xs):
        enc_hs = self.encoder.forward(xs)
        self.decoder.begin(enc_hs, self.encoder.final_state())

