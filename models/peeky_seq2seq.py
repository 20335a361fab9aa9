"""Seq2seq with a "peeky" decoder: the encoding at every step, not only the first.

    h (N, H) repeated over the T steps: hs_h (N, T, H)
    [hs_h | embed(xs)] -> TimeLSTM (starting from h) -> [hs_h | hs] -> TimeAffine -> scores

A plain decoder must carry what it knows of the question through its
recurrent state alone; here the LSTM and the output layer see ``h`` at each
step as extra input features. Backward, the gradient of ``h`` is the sum of
what reaches its copies (both concatenations, every step) plus what reaches
the LSTM's initial state.

The LSTM's input ``[hs_h | embed(xs)]`` is given as ``forward(embed(xs),
x_static=h)``: the same thing (see :class:`~layers.TimeLSTM`), but ``h``'s
share of the gates, ``h @ Wx[:H]``, is one product for the whole answer
instead of one per step, and so are its gradients. One forward and backward
of half a textbook batch (64 questions of addition, H = 128, one core): 6.2
against 7.2 ms with the concatenation.
"""

import inspect

from common.backend import xp
from layers import Concat, TimeRepeat
from models.seq2seq import Decoder, Encoder, Seq2seq, check_encoding


class PeekyDecoder(Decoder):
    """A decoder that reads the encoding ``h`` at every step (see the module docstring).

    ``params``: embedding W ``(V, D)``, LSTM Wx ``(H + D, 4H)`` (rows for
    ``h`` first), Wh ``(H, 4H)``, b ``(4H,)``, affine W ``(2H, V)`` (rows for
    ``h`` first), b ``(V,)``.

    Shape:
        forward: xs int ``(N, T)``, h ``(N, H)`` -> scores ``(N, T, V)``
        backward: dscore ``(N, T, V)`` -> dh ``(N, H)``
    """

    lstm_extra = 1  # [h | embedding]
    affine_extra = 1  # [h | LSTM output]

    def __init__(self, vocab_size, wordvec_size, hidden_size, init=None):
        super().__init__(vocab_size, wordvec_size, hidden_size, init)
        if "x_static" not in inspect.signature(self.lstm.forward).parameters:
            raise TypeError(f"{type(self).__name__} feeds the encoding to its recurrent layer at "
                            f"every step as x_static, which {type(self.lstm).__name__} does not "
                            f"take: a peeky decoder needs a TimeLSTM, or a layer with "
                            f"forward(xs, x_static=h) and its gradient dx_static")
        self.repeat = TimeRepeat()
        self.concat_out = Concat()  # [h | LSTM output] into the affine layer
        self.h = None  # the encoding, while generating

    def forward(self, xs, h):
        check_encoding("h", h, 2, "(N, H)", xs)
        self.lstm.set_state(h)
        out = self.lstm.forward(self.embed.forward(xs), x_static=h)  # [h | embedding] each step
        hs_h = self.repeat.forward(h, xs.shape[1])
        return self.affine.forward(self.concat_out.forward(hs_h, out))

    def backward(self, dscore):
        dhs_h, dout = self.concat_out.backward(self.affine.backward(dscore))
        self.embed.backward(self.lstm.backward(dout))
        return self.repeat.backward(dhs_h) + self.lstm.dx_static + self.lstm.dh

    # -- generation: begin / step / select (see models.seq2seq) ---------------------------

    def begin(self, h):
        super().begin(h)
        self.h = h

    def step(self, ids):
        out = self.lstm.forward(self.embed.forward(ids[:, None]), x_static=self.h)
        return self.affine.forward(xp.concatenate([self.h[:, None, :], out], axis=2))[:, 0]

    def select(self, rows):
        super().select(rows)
        self.h = self.h[rows]


class PeekySeq2seq(Seq2seq):
    """The textbook's ``PeekySeq2seq``: :class:`~models.seq2seq.Encoder` and
    :class:`PeekyDecoder`; arguments, methods and shapes as :class:`~models.Seq2seq`.
    """

    replicable = True  # a helper's replica computes the same bits (models.base.Model)
    encoder_class = Encoder
    decoder_class = PeekyDecoder
