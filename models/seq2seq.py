"""The encoder-decoder (sequence to sequence) model of the textbook.

    xs (N, T_enc) -> Encoder: TimeEmbedding -> TimeLSTM -> h, the last hidden state (N, H)
    h, ts[:, :-1] -> Decoder: TimeEmbedding -> TimeLSTM (starting from h) -> TimeAffine
                  -> TimeSoftmaxWithLoss <- ts[:, 1:]

The decoder learns to continue the answer one character at a time, from
the encoder's summary ``h`` of the question. To answer a new question it
starts from the answer's first id (``'_'`` in the toy tasks) and feeds back
what it predicts (greedy), or keeps the ``beam_width`` most likely answers
so far (beam search, :mod:`models.beam_search`).

Decoders generate through three methods that every decoder here has, so
one greedy loop and one beam search serve them all:
``begin(encoding)`` sets the state for ``N`` questions, ``step(ids (M,))``
returns the scores ``(M, V)`` of the next id and advances the state, and
``select(rows)`` keeps (reorders, repeats) rows of the state.
"""

import numpy as np

from common.backend import FLOAT, to_cpu, xp
from common.parallel import deferred
from common.util import carrying_state
from layers import (
    TimeAffine,
    TimeAttention,
    TimeBiLSTM,
    TimeEmbedding,
    TimeGRU,
    TimeLSTM,
    TimeRNN,
    TimeSoftmaxWithLoss,
    joint_weight_bias,
)
from layers._checks import check_ids, check_ndim, require_forward
from models.base import Init, Model, check_sizes, config_sizes
from models.beam_search import beam_search, check_count, useful_width


def lstm_weights(init, D, H):
    """The textbook's LSTM initialisation: ``N(0,1)/sqrt(D)``, ``N(0,1)/sqrt(H)``, zeros."""
    return (init.normal((D, 4 * H), 1 / np.sqrt(D)), init.normal((H, 4 * H), 1 / np.sqrt(H)),
            init.zeros(4 * H))


def embedding_layer(init, V, D):
    return TimeEmbedding(init.normal((V, D), 1 / 100))


def affine_layer(init, D, V):
    return TimeAffine(*joint_weight_bias(init.normal((D, V), 1 / np.sqrt(D)), init.zeros(V)))


def gather_layers(part, layers):
    """Set a part's ``layers`` and its ``params``/``grads`` (those of the layers, in order)."""
    part.layers = list(layers)
    part.params = [p for layer in part.layers for p in layer.params]
    part.grads = [g for layer in part.layers for g in layer.grads]


class Encoder:
    """Embed the question and run an LSTM over it; the last hidden state is the encoding.

    Shape:
        forward: xs int ``(N, T)`` -> h ``(N, H)``
        backward: dh ``(N, H)`` -> None
    """

    def __init__(self, vocab_size, wordvec_size, hidden_size, init=None):
        V, D, H = vocab_size, wordvec_size, hidden_size
        init = init or Init()
        self.embed = embedding_layer(init, V, D)
        self.lstm = self._lstm(init, D, H)
        gather_layers(self, [self.embed, self.lstm])
        self.hs = None

    def _lstm(self, init, D, H):
        """The recurrent layer (a subclass may return a TimeGRU instead)."""
        return TimeLSTM(*lstm_weights(init, D, H), stateful=False)

    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs[:, -1, :]

    def backward(self, dh):
        require_forward(self, self.hs)
        dhs = xp.zeros_like(self.hs)
        dhs[:, -1, :] = dh
        self.embed.backward(self.lstm.backward(dhs))


class Decoder:
    """An LSTM language model over the answer whose state starts at the encoding.

    A subclass may feed the LSTM or the affine layer more features (the
    encoding again, an attention context); ``lstm_extra`` and
    ``affine_extra`` say how many, in multiples of H.

    Shape:
        forward: xs int ``(N, T)``, h ``(N, H)`` -> scores ``(N, T, V)``
        backward: dscore ``(N, T, V)`` -> dh ``(N, H)``
    """

    lstm_extra = 0  # the LSTM reads D + lstm_extra * H features
    affine_extra = 0  # the affine layer reads H + affine_extra * H features

    def __init__(self, vocab_size, wordvec_size, hidden_size, init=None):
        V, D, H = vocab_size, wordvec_size, hidden_size
        init = init or Init()
        self.embed = embedding_layer(init, V, D)
        self.lstm = self._lstm(init, D + self.lstm_extra * H, H)
        self.affine = affine_layer(init, H + self.affine_extra * H, V)
        gather_layers(self, [self.embed, self.lstm, self.affine])
        # How many times begin() has run: generating replaces what forward
        # left in the layers for backward, and the model checks this count.
        self.generations = 0

    def _lstm(self, init, D, H):
        """The recurrent layer (a subclass may return a stateful TimeGRU instead)."""
        return TimeLSTM(*lstm_weights(init, D, H), stateful=True)

    def forward(self, xs, h):
        check_encoding("h", h, 2, "(N, H)", xs)
        self.lstm.set_state(h)
        return self.affine.forward(self.lstm.forward(self.embed.forward(xs)))

    def backward(self, dscore):
        dout = self.lstm.backward(self.affine.backward(dscore))
        self.embed.backward(dout)
        return self.lstm.dh

    # -- generation: begin / step / select ---------------------------------------------

    def begin(self, h):
        check_encoding("h", h, 2, "(N, H)")
        self.generations += 1
        self.lstm.set_state(h)

    def step(self, ids):
        out = self.lstm.forward(self.embed.forward(ids[:, None]))
        return self.affine.forward(out)[:, 0]

    def select(self, rows):
        select_rows(self.lstm, rows)

    def generate(self, encoding, start_id, sample_size):
        """Greedy answers ``(N, sample_size)`` from the encodings of N questions.

        ``encoding`` is what :meth:`begin` takes: ``h`` ``(N, H)`` here, the
        encoder states ``(N, T_enc, H)`` for an attention decoder.
        """
        check_count("sample_size", sample_size, 0)
        self.begin(encoding)  # (which checks it)
        N = encoding.shape[0]
        start_ids = start_ids_of(start_id, N, self.embed.params[0].shape[0])
        if N == 0:  # no questions, no answers (as the model's generate)
            return np.zeros((0, sample_size), dtype=np.int64)
        return greedy(self, start_ids, sample_size)


def check_encoding(name, encoding, ndim, shape_doc, xs=None):
    """What a decoder starts from must be an array of ``ndim`` dims (and,
    given the decoder's input ``xs``, one row per question of ``xs``)."""
    check_ndim(name, encoding, ndim, shape_doc)
    if xs is not None and hasattr(xs, "shape") and len(xs.shape) and \
            encoding.shape[0] != xs.shape[0]:
        raise ValueError(f"{name} has {encoding.shape[0]} rows but xs has {xs.shape[0]}: the "
                         f"decoder needs the encoding of each of its N questions")


def start_ids_of(start_id, N: int, vocab_size: int):
    """The start id of each of ``N`` answers ``(N,)``, from one id or one per
    question; ValueError (or TypeError) for anything else."""
    start_ids = xp.asarray(start_id)
    if start_ids.ndim > 1:
        raise ValueError(f"start_id must be one id or one per question ({N}), got shape "
                         f"{start_ids.shape}")
    check_ids("start_id", start_ids, vocab_size)  # integers (not bools, floats)
    if start_ids.ndim == 0:
        return xp.full(N, int(start_ids))
    if start_ids.shape != (N,):
        raise ValueError(f"start_id must be one id or one per question ({N}), got shape "
                         f"{start_ids.shape}")
    return start_ids


def select_rows(lstm, rows):
    """Keep rows ``rows`` of a recurrent layer's carried state (a beam's
    reordering): ``h``, and an LSTM's ``c``."""
    lstm.h = lstm.h[rows]
    if getattr(lstm, "c", None) is not None:
        lstm.c = lstm.c[rows]


def greedy(decoder, start_ids, sample_size: int) -> np.ndarray:
    """Feed back the most likely id ``sample_size`` times; ids ``(N, sample_size)``.

    Each step starts from the state the last one left, whatever the
    decoder's recurrent layer's ``stateful`` flag (:func:`carrying_state`)."""
    ids = start_ids
    out = []
    with carrying_state(decoder):
        for _ in range(sample_size):
            scores = decoder.step(ids)
            if not bool(xp.isfinite(scores).all()):
                raise FloatingPointError("the model produced non-finite scores (NaN or inf); "
                                         "its weights have diverged")
            ids = scores.argmax(axis=1)
            out.append(ids)
    return to_cpu(xp.stack(out, axis=1)) if out else np.zeros((len(start_ids), 0), np.int64)


class Seq2seq(Model):
    """The textbook's ``Seq2seq``: an :class:`Encoder` and a :class:`Decoder`.

    ``params``: encoder embedding W ``(V, D)``, LSTM Wx ``(D, 4H)``, Wh
    ``(H, 4H)``, b ``(4H,)``; decoder embedding, LSTM (same shapes), affine
    W ``(H, V)``, b ``(V,)``. Initialisation as the textbook (and
    :class:`~models.Rnnlm`).

    Args:
        vocab_size: V; wordvec_size: D; hidden_size: H.
        seed, rng, dtype: as for the language models (float64 for gradient checks).

    Shape:
        forward: xs int ``(N, T_enc)``, ts int ``(N, T_dec + 1)`` -> scalar mean loss
        generate: xs int ``(N, T_enc)`` -> ids ``(N, sample_size)``
    """

    replicable = True  # a helper's replica computes the same bits (models.base.Model)
    encoder_class = Encoder
    decoder_class = Decoder

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, *,
                 seed: int | None = None, rng=None, dtype=FLOAT):
        V, D, H = check_sizes(vocab_size=vocab_size, wordvec_size=wordvec_size,
                              hidden_size=hidden_size)
        self.config = {"vocab_size": V, "wordvec_size": D, "hidden_size": H}
        init = Init(seed, rng, dtype)
        self.encoder = self.encoder_class(V, D, H, init)
        self.decoder = self.decoder_class(V, D, H, init)
        self.softmax = TimeSoftmaxWithLoss()
        self.loss_layer = self.softmax
        self._forward_mark = None  # see _check_parts_unchanged
        self._collect_seq2seq_params()

    def _collect_seq2seq_params(self):
        lstm = ["Wx", "Wh", "b"]
        names = {TimeEmbedding: ["embed.W"], TimeLSTM: [f"lstm.{n}" for n in lstm],
                 TimeGRU: [f"gru.{n}" for n in ("Wx", "Wh", "bx", "bh")],
                 TimeRNN: [f"rnn.{n}" for n in lstm],
                 TimeBiLSTM: [f"lstm.{d}.{n}" for d in ("forward", "backward") for n in lstm],
                 TimeAffine: ["affine.W", "affine.b"], TimeAttention: []}
        param_names = []
        for part_name, part in (("encoder", self.encoder), ("decoder", self.decoder)):
            counts = {}  # a part's second layer of a kind is lstm2, embed2, ...
            for layer in part.layers:
                param_names += _layer_param_names(part_name, layer, names, counts)
        self.layers = [self.encoder, self.decoder]
        self._collect_params(param_names, layers=self.encoder.layers + self.decoder.layers)

    @classmethod
    def param_shapes(cls, config: dict) -> dict:
        V, D, H = config_sizes(cls, config, "vocab_size", "wordvec_size", "hidden_size")
        shapes = {"encoder.embed.W": (V, D)}
        shapes.update(_lstm_shapes("encoder.lstm", D, H))
        decoder = cls.decoder_class
        shapes["decoder.embed.W"] = (V, D)
        shapes.update(_lstm_shapes("decoder.lstm", D + decoder.lstm_extra * H, H))
        shapes.update({"decoder.affine.W": (H + decoder.affine_extra * H, V),
                       "decoder.affine.b": (V,)})
        return shapes

    @property
    def vocab_size(self) -> int:
        return self.config["vocab_size"]

    def forward(self, xs, ts) -> float:
        self._check_pairs(xs, ts)
        h = self.encoder.forward(xs)
        score = self.decoder.forward(ts[:, :-1], h)
        loss = self.softmax.forward(score, ts[:, 1:])
        self._mark_forward()
        return loss

    def _parts_mark(self):
        """What changes when a part runs on other inputs: the encoder's states
        (a new array at each of its forwards), the decoder's count of
        ``begin`` calls, and the input its output layer keeps (a new array at
        each of the decoder's forwards and steps)."""
        return (getattr(self.encoder, "hs", None), getattr(self.decoder, "generations", 0),
                getattr(getattr(self.decoder, "affine", None), "x", None))

    def _mark_forward(self):
        self._forward_mark = self._parts_mark()

    def _check_parts_unchanged(self):
        """Refuse a backward after the book-style parts ran on other inputs
        (``decoder.generate(encoder.forward(q), ...)`` between ``forward`` and
        ``backward``): their layers would hold another batch's values, and
        the gradients would be wrong without an error."""
        mark, now = self._forward_mark, self._parts_mark()
        if mark is not None and (now[0] is not mark[0] or now[1] != mark[1]
                                 or now[2] is not mark[2]):
            raise RuntimeError("backward() needs the values its forward() left, but the encoder "
                               "or decoder has run on other inputs since (generating, predicting "
                               "or evaluating in between replaces them): call forward() again")

    def check_pairs(self, xs, ts):
        """Raise ``ValueError`` or ``TypeError`` for pairs ``forward`` cannot
        take: shapes, integer ids, ids outside the vocabulary (the targets
        ``ts[:, 1:]`` may hold the loss's ``ignore_label``, the decoder's
        input ``ts[:, :-1]`` may not). :class:`~common.trainer.Trainer`
        checks whole data sets so before training."""
        self._check_pairs(xs, ts)
        # Each batch's are checked by the encoder's embedding and by the loss.
        check_ids("xs", xs, self.vocab_size)
        check_ids("ts[:, 1:] (the targets)", ts[:, 1:], self.vocab_size,
                  self.loss_layer.ignore_label)

    def _check_pairs(self, xs, ts):
        """What ``forward`` checks of each batch before its layers do."""
        check_ndim("xs", xs, 2, "(N, T_enc)")
        check_ndim("ts", ts, 2, "(N, T_dec + 1)")
        if ts.shape[1] < 2:
            raise ValueError(f"ts needs at least 2 columns (a start id and a target), "
                             f"got shape {ts.shape}")
        if ts.shape[0] != xs.shape[0]:
            raise ValueError(f"xs has {xs.shape[0]} rows but ts has {ts.shape[0]}")
        if xs.shape[0] == 0:
            raise ValueError("xs and ts hold no pairs (0 rows): a batch needs at least one")
        if xs.shape[1] == 0:
            raise ValueError("xs needs at least one column: a question of at least one id")
        # The decoder's input may not hold the ignore label, and its embedding
        # would call it xs.
        check_ids("ts[:, :-1] (the decoder's input)", ts[:, :-1], self.vocab_size)

    def backward(self, dout: float = 1) -> None:
        self._check_parts_unchanged()
        with deferred():
            dout = self.softmax.backward(dout)
            dh = self.decoder.backward(dout)
            self.encoder.backward(dh)

    def generate(self, xs, start_id, sample_size: int, beam_width: int = 1) -> np.ndarray:
        """Answers to the questions ``xs`` ``(N, T_enc)``, all at once.

        ``start_id`` (an int, or one per question) starts each answer;
        ``sample_size`` ids follow it. ``beam_width=1`` is greedy (the most
        likely id at each step); wider keeps the ``beam_width`` most likely
        answers so far (:func:`models.beam_search.beam_search`).

        Returns:
            an int array ``(N, sample_size)`` (one row per question).
        """
        xs, start_ids = self._check_generate(xs, start_id, sample_size, beam_width)
        self._forget_forward()
        if xs.shape[0] == 0:  # no questions, no answers (and no attention weights)
            attention = getattr(self.decoder, "attention", None)
            if attention is not None:
                attention.attention_weights = []
            return np.zeros((0, sample_size), dtype=np.int64)
        self._begin(xs)
        beam_width = useful_width(beam_width, self.vocab_size, sample_size)
        if beam_width == 1:
            return greedy(self.decoder, start_ids, sample_size)
        with carrying_state(self.decoder):  # (as greedy: step after step)
            return beam_search(self.decoder, start_ids, sample_size, beam_width)

    def _begin(self, xs):
        """Encode ``xs`` and set the decoder's state for generating."""
        self.decoder.begin(self.encoder.forward(xs))

    def _check_generate(self, xs, start_id, sample_size, beam_width):
        try:
            xs = xp.asarray(xs)
        except ValueError:  # NumPy's words for rows of different lengths
            raise ValueError("xs must be questions of one length, (N, T_enc) ids: pad the "
                             "shorter ones (the datasets pad with spaces)") from None
        if xs.ndim == 1:
            xs = xs[None]
        check_ndim("xs", xs, 2, "(N, T_enc)")
        if xs.shape[1] == 0:
            raise ValueError("xs needs at least one column: a question of at least one id")
        check_ids("xs", xs, self.vocab_size)
        start_ids = start_ids_of(start_id, xs.shape[0], self.vocab_size)
        check_count("sample_size", sample_size, 0)
        check_count("beam_width", beam_width, 1)
        return xs, start_ids


def _lstm_shapes(prefix, D, H):
    return {f"{prefix}.Wx": (D, 4 * H), f"{prefix}.Wh": (H, 4 * H), f"{prefix}.b": (4 * H,)}


def _layer_param_names(part_name, layer, names, counts):
    """The names of ``layer``'s parameters in the part: ``encoder.lstm.Wx``
    for the first layer of its kind (a class of ``names``, subclasses
    included), ``encoder.lstm2.Wx`` for the second; ``counts`` counts the
    part's layers of each kind so far."""
    for cls, layer_names in names.items():
        if isinstance(layer, cls):
            k = counts[cls] = counts.get(cls, 0) + 1
            suffix = "" if k == 1 else str(k)
            return [f"{part_name}.{n.replace('.', suffix + '.', 1)}" for n in layer_names]
    raise TypeError(f"no parameter names for a {type(layer).__name__} in the {part_name}: "
                    f"build the parts of rnnlab's Time layers, or override "
                    f"_collect_seq2seq_params to name its parameters")
