"""Look inside a trained language model: states, surprisal, gradients through time.

Four questions, one function each, for any rnnlab language model (a
``LanguageModel``: ``layers`` from ids to scores, a ``loss_layer``,
stateful recurrent layers):

* :func:`record_states`: what is every unit of every recurrent layer doing
  at each position of a text? (``h``, and ``c`` for an LSTM, plus the
  model's next-token probabilities.)
* :func:`token_surprisal`: how surprised is the model by each token of a
  text? (log-probability, bits, perplexity.)
* :func:`text_properties` and :func:`interesting_units`: which units track
  something simple about the text (inside quotes or brackets, position in
  the line or sentence, end of a word), and how well (Pearson's r)?
* :func:`gradient_through_time`: how much does the loss at the last step
  of a sequence still feel the hidden state of each earlier step?

:func:`load_model` rebuilds a model from a file of ``train_rnnlm.py
--save`` and :func:`encode_text` cuts a string into its tokens.

Every function leaves the model as it found it: dropout mode and carried
recurrent state are restored afterwards (the gradient functions do
overwrite ``grads``). Positions are counted from 0 and are batch-major, as
everywhere in rnnlab.

The first token of a text is context, not a prediction: a text of ``T``
tokens has ``T - 1`` scored tokens (``ids[1:]``), exactly as
:func:`common.util.eval_perplexity` counts ``len(corpus) - 1`` targets.
"""

import contextlib
import math
import os
from dataclasses import dataclass

import numpy as np

from common.backend import to_cpu, xp
from common.util import carrying_state, check_whole_number

LN2 = math.log(2.0)


# -- the model, left as it was found ------------------------------------------------


def recurrent_layers(model) -> list:
    """The layers of ``model`` that carry a recurrent state ``h``, bottom to
    top, those inside its parts (``part.layers``) too."""
    if hasattr(model, "_recurrent_layers"):
        layers = model._recurrent_layers()
    else:
        layers = [layer for layer in model.layers if hasattr(layer, "reset_state")]
    return [layer for layer in layers if hasattr(layer, "h")]


def _state_shapes(model, rec) -> list:
    """``(width, dtype)`` of each recurrent layer's ``h``: from rnnlab's
    ``Wh`` (``params[1]``, ``(H, k*H)``), else from the state it carries,
    else (a layer of one's own that carries none yet) from one step of the
    model from a zero state, which replaces what a ``forward`` left for
    ``backward``."""
    from layers import TimeGRU, TimeLSTM, TimeRNN  # (layers import common: late)

    def known(layer):
        if isinstance(layer, (TimeRNN, TimeLSTM, TimeGRU)):
            return int(layer.params[1].shape[0]), layer.params[1].dtype
        return None if getattr(layer, "h", None) is None else carried(layer)

    def carried(layer):
        return int(layer.h.shape[-1]), layer.h.dtype

    shapes = [known(layer) for layer in rec]
    if None in shapes:
        with _inspecting(model):
            model.predict(xp.zeros((1, 1), dtype=np.int64))
            shapes = [carried(layer) for layer in rec]
    return shapes


@contextlib.contextmanager
def _inspecting(model):
    """Dropout off, state reset, stateful layers; everything restored on exit."""
    with model.evaluating(), carrying_state(model):
        model.reset_state()
        yield


@contextlib.contextmanager
def _ignoring(loss_layer, ignore_label):
    """``loss_layer`` with ``ignore_label``; its own put back on exit."""
    own = loss_layer.ignore_label
    loss_layer.ignore_label = ignore_label
    try:
        yield
    finally:
        loss_layer.ignore_label = own


def _not_a_language_model(model, what: str) -> str:
    """Why ``what`` cannot read ``model``, a sequence-to-sequence model, and
    where to look instead."""
    if getattr(getattr(model, "decoder", None), "attention", None) is not None:
        where = "inspect_model.py attention draws its attention weights"
    else:
        where = ("inspect_model.py attention reads only those with attention "
                 "(train_seq2seq.py --model attention)")
    return (f"{what} {type(model).__name__}, a sequence-to-sequence model, not a language "
            f"model: units and surprisal read a language model saved by train_rnnlm.py "
            f"--save; {where}")


def _check_language_model(model):
    """Refuse a sequence-to-sequence model, which has no single stack of
    ``layers`` from ids to scores for these functions to read."""
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        raise ValueError(_not_a_language_model(model, "got"))


def _check_ids(model, ids, ndim, what):
    _check_language_model(model)
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{what} must be integer token ids, got dtype {ids.dtype}")
    if ids.ndim != ndim:
        shape = "(T,)" if ndim == 1 else "(N, T)"
        raise ValueError(f"{what} must have shape {shape}, got {ids.shape}")
    V = model.vocab_size
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        bad = int(ids[(ids < 0) | (ids >= V)].flat[0])
        raise ValueError(f"{what} holds id {bad}, outside the model's vocabulary 0..{V - 1}")
    return ids


def _log_softmax64(scores):
    s = np.asarray(to_cpu(scores), dtype=np.float64)
    # A NaN or +inf score would turn every probability into NaN, printed as if it meant something.
    if np.isnan(s).any() or np.isposinf(s).any():
        raise FloatingPointError("the model produced non-finite scores (NaN or inf); its "
                                 "weights have diverged or overflow")
    s = s - s.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


# -- a saved model and a text ------------------------------------------------------------


def load_model(path: str | os.PathLike) -> tuple:
    """``(model, vocab, level)`` from a file written by ``train_rnnlm.py --save``
    (or ``model.save_params(path, vocab=...)``).

    ``vocab`` is the list of tokens (id -> token) and ``level`` ``'word'`` or
    ``'char'`` (from the file, else guessed: single characters without
    ``<eos>`` mean character level). Raises ``ValueError`` naming the problem,
    ``FileNotFoundError`` or another ``OSError`` for a file that cannot be read.
    """
    from models import LanguageModel  # models imports common: import late
    from models import load_model as load_any_model

    model, meta = load_any_model(path)
    if not isinstance(model, LanguageModel):
        raise ValueError(_not_a_language_model(model, f"{path} holds"))
    vocab = meta.get("vocab")
    if not isinstance(vocab, list) or not vocab or not all(isinstance(t, str) for t in vocab):
        raise ValueError(f"{path} has no vocabulary (a list of tokens); save it with "
                         "train_rnnlm.py --save or model.save_params(path, vocab=id_to_word)")
    vocab = model_vocab(vocab, model.vocab_size, path)
    level = meta.get("level") or guess_level(vocab)
    if level not in ("word", "char"):
        raise ValueError(f"{path}: unknown token level {level!r}")
    return model, vocab, level


def guess_level(vocab: list) -> str:
    """The token level of a file that does not record one: single characters
    and no ``<eos>`` mean ``'char'``, else ``'word'``."""
    return "char" if "<eos>" not in vocab and all(len(t) == 1 for t in vocab) else "word"


def model_vocab(vocab: list, V: int, path, unit: str = "tokens") -> list:
    """The tokens of a model's ``V`` ids, from the vocabulary ``vocab`` saved
    in the model file ``path``: its first ``V`` (a model trained on the start
    of a corpus, ``train_rnnlm.py --corpus-size``, knows only those). A
    ``ValueError`` for one shorter than the model's ids, or that lists a
    token twice (:func:`repeated_token_problem`); ``unit`` names its tokens."""
    if len(vocab) < V:
        raise ValueError(f"{path}: the vocabulary has {len(vocab)} {unit} but the model has {V}")
    vocab = vocab[:V]
    if problem := repeated_token_problem(vocab, path):
        raise ValueError(problem)
    return vocab


def repeated_token_problem(vocab: list, path) -> str | None:
    """What to say of the model file ``path`` when its vocabulary ``vocab``
    (the model's ids, in order) lists one token at two ids (a hand-edited or
    damaged file): text would be read as the later id, which the model
    learned as another token, and every answer would be silently wrong; or
    None."""
    if len(set(vocab)) == len(vocab):
        return None
    first = {}
    for i, token in enumerate(vocab):
        if token in first:
            return (f"{path} is damaged: its vocabulary lists {token!r} at the ids "
                    f"{first[token]} and {i}, so text cannot be turned into the ids the model "
                    f"was trained on; save the model again with the vocabulary it was "
                    f"trained on")
        first[token] = i
    return None


def nonfinite_weights_problem(model, path) -> str | None:
    """What to say of the model file ``path`` when parameters of ``model`` hold a
    NaN or an infinity (saved from a run that diverged: every score computed
    from them is garbage), or None."""
    bad = [name for name, a in model.named_params().items() if not bool(xp.isfinite(a).all())]
    if not bad:
        return None
    return (f"{path}: the weights {', '.join(bad)} hold NaN or infinite values (the training "
            "run diverged); retrain with a smaller --lr or with --max-grad, or use an earlier "
            "file")


def encode_text(content: str, vocab: list, level: str, limit: int | None = None) -> tuple:
    """``(tokens, ids)`` of a string, cut as the model's training text was
    (its first ``limit`` tokens when given).

    Word level: words separated by white space, ``<eos>`` at each line end
    (as :func:`datasets.text.tokenize`); a word the model does not know
    becomes ``<unk>`` when the vocabulary has it. Unknown tokens otherwise
    (within the ``limit``) raise ``ValueError`` naming them.

    Shape:
        -> tokens: ``T`` strings, ids int ``(T,)``
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise ValueError(f"limit must be a whole number >= 1 or None, got {limit!r}")
    tokens = _first_tokens(content, level, limit)
    index = {t: i for i, t in enumerate(vocab)}
    if level == "word" and "<unk>" in index:
        tokens = [t if t in index else "<unk>" for t in tokens]
    unknown = sorted({t for t in tokens if t not in index})
    if unknown:
        what = "characters" if level == "char" else "words"
        raise ValueError(f"{len(unknown)} {what} of the text are not in the model's vocabulary "
                         f"of {len(vocab)}: " + ", ".join(map(repr, unknown[:10]))
                         + (" ..." if len(unknown) > 10 else ""))
    return tokens, np.array([index[t] for t in tokens], dtype=np.int64)


def _first_tokens(content: str, level: str, limit: int | None) -> list[str]:
    """``tokenize(content, level)[:limit]``, cutting only a start of a long
    text into tokens (the whole of a large file, for its first 3,000 tokens,
    took gigabytes, or ended in a MemoryError). A start that gives more
    than ``limit`` tokens gives the first ``limit`` exactly: only its last
    token can be a word cut in two."""
    from datasets.text import tokenize

    if limit is None:
        return tokenize(content, level)
    if level == "char":
        return list(content[:limit])
    size = 16 * limit
    while size < len(content):
        tokens = tokenize(content[:size], level)
        if len(tokens) > limit:
            return tokens[:limit]
        size *= 4
    return tokenize(content, level)[:limit]


# -- states over a text -----------------------------------------------------------------


@dataclass
class Recording:
    """The states of a model over one text, from :func:`record_states`.

    Attributes:
        ids: the token ids read, ``(T,)``.
        hidden: one array per recurrent layer (bottom first), ``(T, H)``, in
            the model's dtype:
            ``hidden[k][t]`` is layer ``k``'s ``h`` after reading ``ids[t]``.
        cell: per recurrent layer, ``(T, H)`` cell states for an LSTM, else ``None``.
        probs: ``(T, V)`` float32, the model's distribution of the token
            after ``ids[t]`` (``None`` when not asked for).
    """

    ids: np.ndarray
    hidden: list
    cell: list
    probs: np.ndarray | None

    def units(self) -> list:
        """``[(name, values (T,)), ...]`` for every unit: ``'h0:5'`` is unit 5
        of the hidden state of recurrent layer 0, ``'c0:5'`` its cell."""
        out = []
        for k, (h, c) in enumerate(zip(self.hidden, self.cell, strict=True)):
            for kind, a in (("h", h), ("c", c)):
                if a is not None:
                    out += [(f"{kind}{k}:{j}", a[:, j]) for j in range(a.shape[1])]
        return out

    def unit(self, name: str) -> np.ndarray:
        """The values ``(T,)`` of one unit by name (``'h0:5'``, ``'c1:17'``)."""
        kind, layer, j = unit_index(name, [h.shape[1] for h in self.hidden],
                                    [c is not None for c in self.cell])
        return {"h": self.hidden, "c": self.cell}[kind][layer][:, j]


def unit_index(name: str, widths: list, has_cell: list) -> tuple:
    """``(kind, layer, unit)`` of a unit's name (``'h0:5'``: ``('h', 0, 5)``).

    ``widths``: the number of units of every recurrent layer; ``has_cell``:
    whether each layer has an LSTM cell (``c`` units). A name that does not
    exist raises ``ValueError`` saying which names do.
    """
    kind, parts = name[:1], name[1:].split(":")
    # isascii: str.isdigit accepts digits such as '²' that int() refuses.
    if kind in ("h", "c") and len(parts) == 2 and all(p.isascii() and p.isdigit()
                                                      for p in parts):
        layer, j = int(parts[0]), int(parts[1])
        if layer < len(widths) and j < widths[layer] and (kind == "h" or has_cell[layer]):
            return kind, layer, j
    if not widths:
        raise ValueError(f"no unit {name!r}: the model has no recurrent layer")
    kinds = ("h<layer>:<unit> (hidden) or c<layer>:<unit> (LSTM cell)" if any(has_cell)
             else "h<layer>:<unit> (this model has no LSTM cell)")
    raise ValueError(f"no unit {name!r}: names are {kinds}, with layer 0..{len(widths) - 1} "
                     f"and unit 0..{widths[0] - 1}")


def model_units(model) -> tuple:
    """``(widths, has_cell)`` of ``model``'s recurrent layers, for :func:`unit_index`,
    known before the recording (without computing anything, but for a
    layer of one's own that carries no state yet: see :func:`_state_shapes`)."""
    rec = recurrent_layers(model)
    return [w for w, _ in _state_shapes(model, rec)], [hasattr(layer, "c") for layer in rec]


def record_states(model, ids: np.ndarray, probs: bool = True) -> Recording:
    """Run ``model`` over ``ids`` one token at a time and keep every state.

    The text is read as one sequence from a zero state (batch of one),
    with dropout off. Each step is one ``forward`` of the model's layers on
    a ``(1, 1)`` block, and the states are read from the recurrent layers'
    carried ``h`` (and ``c``) after it, so they are exactly the states the
    layers compute (``tests/test_inspection.py`` compares them with one
    ``forward`` over the whole text).

    Args:
        model: a language model (e.g. loaded with :func:`load_model`).
        ids: int token ids.
        probs: also keep the next-token distribution at every position.

    Shape:
        ids ``(T,)`` -> hidden, cell ``(T, H)`` per recurrent layer; probs ``(T, V)``
    """
    ids = _check_ids(model, ids, 1, "ids")
    rec = recurrent_layers(model)
    if not rec:
        raise ValueError(f"{type(model).__name__} has no recurrent layer to record")
    T = ids.size
    hidden = [np.empty((T, w), dtype) for w, dtype in _state_shapes(model, rec)]
    cell = [np.empty_like(h) if hasattr(layer, "c") else None for h, layer in zip(hidden, rec,
                                                                                   strict=True)]
    out_probs = np.empty((T, model.vocab_size), np.float32) if probs else None
    with _inspecting(model):
        for t in range(T):
            scores = model.predict(xp.asarray(ids[t:t + 1].reshape(1, 1)))
            for k, layer in enumerate(rec):
                hidden[k][t] = to_cpu(layer.h[0])
                if cell[k] is not None:
                    cell[k][t] = to_cpu(layer.c[0])
            if probs:
                out_probs[t] = np.exp(_log_softmax64(scores[0, 0]))
    return Recording(ids=ids, hidden=hidden, cell=cell, probs=out_probs)


def top_guesses(probs: np.ndarray, k: int = 5) -> tuple:
    """The ``k`` most likely next tokens at every position, most likely first.

    Shape:
        probs ``(T, V)`` -> (ids int ``(T, k)``, probabilities ``(T, k)``)
    """
    k = min(k, probs.shape[1])
    idx = np.empty((len(probs), k), np.int64)
    # By blocks of rows: the negated copy and argpartition's int64 indices of the
    # whole table would take three times its memory again.
    rows = max(1, 2**22 // max(probs.shape[1], 1))
    for start in range(0, len(probs), rows):
        block = slice(start, start + rows)
        idx[block] = np.argpartition(-probs[block], k - 1, axis=1)[:, :k]
    p = np.take_along_axis(probs, idx, axis=1)
    order = np.argsort(-p, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(p, order, axis=1)


# -- surprisal ----------------------------------------------------------------------------


@dataclass
class Surprisal:
    """Per-token surprisal of a text, from :func:`token_surprisal`.

    Attributes:
        ids: the text's ids ``(T,)``.
        log_prob: ``(T - 1,)`` natural-log probability of ``ids[t + 1]``
            given ``ids[:t + 1]``; the first token is context and is not scored.
    """

    ids: np.ndarray
    log_prob: np.ndarray

    @property
    def bits(self) -> np.ndarray:
        """``-log2 p`` of every scored token ``(T - 1,)``."""
        return -self.log_prob / LN2

    @property
    def total_loss(self) -> float:
        """Summed cross-entropy in nats (``-sum log p``)."""
        return float(-self.log_prob.sum())

    @property
    def perplexity(self) -> float:
        """``exp(mean cross-entropy)`` over the ``T - 1`` scored tokens."""
        try:
            return math.exp(self.total_loss / self.log_prob.size)
        except OverflowError:  # a model sure of wrong tokens: e**710 and more is inf in floats
            return math.inf

    @property
    def bits_per_token(self) -> float:
        return self.total_loss / self.log_prob.size / LN2


def token_surprisal(model, ids: np.ndarray, time_size: int = 35) -> Surprisal:
    """How unlikely each token of ``ids`` is under ``model``, read as one sequence.

    The text is one lane from a zero state, fed ``time_size`` tokens at a
    time with the state carried (so the result does not depend on
    ``time_size``). Summed over the text this is ``eval_perplexity``'s total
    loss with ``batch_size=1``; eval_perplexity's default cuts the text
    into 10 lanes that each start from zeros, which scores the first tokens
    of every lane with less context.

    Shape:
        ids ``(T,)``, T >= 2 -> ``Surprisal`` with ``log_prob (T - 1,)``
    """
    ids = _check_ids(model, ids, 1, "ids")
    if ids.size < 2:
        raise ValueError("token_surprisal needs at least 2 tokens: the first one is context")
    check_whole_number("time_size", time_size, example=35)
    xs, ts = ids[:-1], ids[1:]
    log_prob = np.empty(ts.size, np.float64)
    with _inspecting(model):
        for a in range(0, xs.size, time_size):
            scores = model.predict(xp.asarray(xs[a:a + time_size].reshape(1, -1)))
            logp = _log_softmax64(scores[0])
            t = ts[a:a + time_size]
            log_prob[a:a + t.size] = logp[np.arange(t.size), t]
    return Surprisal(ids=ids, log_prob=log_prob)


# -- simple properties of a text, and the units that follow them ---------------------------

OPEN_BRACKETS = {"(", "[", "{", "-lrb-", "-lcb-", "-lsb-"}
CLOSE_BRACKETS = {")", "]", "}", "-rrb-", "-rcb-", "-rsb-"}
LINE_ENDS = {"\n", "<eos>"}
SENTENCE_ENDS = {".", "!", "?", "<eos>"}


def text_properties(tokens: list, level: str | None = None) -> dict:
    """Simple properties of a text at every position, for correlating with units.

    Each value describes the text *after* reading ``tokens[t]``:

    * ``inside double quotes``: an odd number of ``"`` so far (triple quotes
      count three times, so a docstring is inside; at word level also
      between the Treebank's ````` and ``''``);
    * ``inside single quotes``: an odd number of ``'`` so far in this line
      (only a token that is a quote mark counts, not the one in ``"'s"``);
    * ``inside brackets``: a ``( [ {`` not yet closed (PTB's ``-lrb-``
      counts as a bracket; a closing bracket with none open is passed over),
      and ``bracket depth``: how many are open;
    * ``position in line``: tokens since the last line end (newline or ``<eos>``);
    * ``position in sentence``: tokens since the last ``. ! ?`` or ``<eos>``;
    * ``end of word``: a letter, digit or ``_`` followed by something else
      (an identifier is one word), and
      ``inside a # comment``: from a ``#`` to the end of its line (character
      level only: ``level="char"``; with ``level=None``, when every token
      is one character, which a word-level text such as ``a a a`` may be
      too: give the model's level where it is known).

    Properties that do not vary over the text are left out (a text where
    none varies gives ``{}``).

    Shape:
        tokens: ``T`` strings, T >= 1 -> ``{name: float array (T,)}``
    """
    if level not in (None, "char", "word"):
        raise ValueError(f"level must be 'char', 'word' or None (guessed from the tokens), "
                         f"got {level!r}")
    T = len(tokens)
    if T == 0:
        raise ValueError("text_properties needs at least one token, got an empty list: "
                         "pass the text's tokens, e.g. list(text) at character level")
    props = {name: np.zeros(T) for name in (
        "inside double quotes", "inside single quotes", "inside brackets", "bracket depth",
        "position in line", "position in sentence", "end of word", "inside a # comment")}
    dq = sq = depth = line = sentence = comment = 0
    for t, tok in enumerate(tokens):
        # Quote marks count as tokens of their own ("'s" and "n't" are no quotes);
        # Treebank-style `` and '' open and close.
        if tok and set(tok) == {'"'}:
            dq ^= len(tok) & 1
        elif tok in ("``", "''"):
            dq = int(tok == "``")
        elif tok == "'":
            sq ^= 1
        if tok in OPEN_BRACKETS:
            depth += 1
        elif tok in CLOSE_BRACKETS:
            depth = max(depth - 1, 0)
        props["inside double quotes"][t] = dq
        props["inside single quotes"][t] = sq
        props["inside brackets"][t] = depth > 0
        props["bracket depth"][t] = depth
        props["position in line"][t] = line
        props["position in sentence"][t] = sentence
        comment = comment or tok == "#"
        props["inside a # comment"][t] = comment and tok not in LINE_ENDS
        if tok in LINE_ENDS:
            line, sq, comment = 0, 0, 0
        else:
            line += 1
        sentence = 0 if tok in SENTENCE_ENDS else sentence + 1
    if level == "char" or (level is None and all(len(tok) == 1 for tok in tokens)):
        word = np.array([tok.isalnum() or tok == "_" for tok in tokens])
        props["end of word"] = (word & ~np.append(word[1:], False)).astype(float)
    else:
        del props["end of word"], props["inside a # comment"]
    return {name: v for name, v in props.items() if v.std() > 0}


def correlations(values: np.ndarray, prop: np.ndarray) -> np.ndarray:
    """Pearson's r of every column of ``values`` with ``prop`` (0 for a constant column).

    Shape:
        values ``(T, U)``, prop ``(T,)`` -> r ``(U,)``
    """
    v = np.asarray(values, np.float64)
    p = np.asarray(prop, np.float64)
    v = v - v.mean(axis=0)
    p = p - p.mean()
    denom = np.sqrt((v * v).sum(axis=0) * (p @ p))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p @ v) / denom
    return np.where(denom > 0, r, 0.0)


@dataclass
class UnitFinding:
    """A unit that follows a property of the text: ``r`` is Pearson's correlation."""

    unit: str
    prop: str
    r: float


def interesting_units(recording: Recording, properties: dict, per_property: int = 1) -> list:
    """For every property, the unit(s) whose value correlates with it most strongly.

    Every unit (``h`` and, for an LSTM, ``c``, of every recurrent layer) is
    scored by ``|r|`` with every property, and the strongest (property,
    unit) pairs are taken first, each while its property has room: a unit
    is reported at most once, under the strongest of its properties that
    had room left (its best one unless that had already taken
    ``per_property`` units that follow it more closely).
    Sorted by ``|r|``, strongest first.

    Args:
        recording: from :func:`record_states`.
        properties: from :func:`text_properties` (or your own ``{name: (T,)}``).
        per_property: how many units to report for each property.

    No property (a text where nothing varies: ``text_properties`` gives
    ``{}``) or no unit: an empty list.
    """
    check_whole_number("per_property", per_property)
    T = len(recording.ids)
    for name, prop in properties.items():
        if np.shape(prop) != (T,):
            raise ValueError(f"property {name!r} has shape {np.shape(prop)}: it needs one "
                             f"value per token of the recording, shape ({T},)")
    units = recording.units()
    if not units or not properties:
        return []
    names = [name for name, _ in units]
    values = np.stack([v for _, v in units], axis=1)
    props = list(properties)
    r = np.stack([correlations(values, properties[p]) for p in props])  # (P, U)
    # Strongest pairs first: a unit goes to the property it follows best.
    found, used, count = [], set(), dict.fromkeys(props, 0)
    for flat in np.argsort(-np.abs(r), axis=None, kind="stable"):
        i, j = divmod(int(flat), len(names))
        if names[j] in used or count[props[i]] >= per_property:
            continue
        used.add(names[j])
        count[props[i]] += 1
        found.append(UnitFinding(names[j], props[i], float(r[i, j])))
        if len(found) == per_property * len(props):
            break
    return sorted(found, key=lambda f: -abs(f.r))


# -- gradients through time ----------------------------------------------------------------


def hidden_state_gradients(model, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """``d loss_n / d h_t`` for every sequence ``n`` and step ``t``.

    ``loss_n`` is the cross-entropy of sequence ``n``'s last target
    ``ts[n, -1]`` (not averaged over the batch) and ``h_t`` the hidden state
    of the model's top recurrent layer after step ``t``; each sequence
    starts from a zero state, with dropout off. For an LSTM the cell state
    ``c_t`` is a separate variable: this is the gradient through ``h_t``.

    How: one pass records the states of every recurrent layer at every
    step; then for each ``t`` the model is run from those states over the
    steps after ``t`` and the layer's own backward pass gives the gradient
    w.r.t. its initial state (its ``dh``). That costs ``T**2 / 2`` steps,
    which is nothing at the lengths this is meant for.

    Shape:
        xs, ts int ``(N, T)``, N >= 1, T >= 1 -> ``(N, T, H)``
    """
    xs = _check_ids(model, xs, 2, "xs")
    ts = _check_ids(model, ts, 2, "ts")
    if xs.shape != ts.shape:
        raise ValueError(f"xs {xs.shape} and ts {ts.shape} must have the same shape")
    if 0 in xs.shape:
        raise ValueError(f"xs and ts have shape {xs.shape}: the gradient needs at least one "
                         "sequence and one step, (N, T) with N >= 1 and T >= 1")
    rec = recurrent_layers(model)
    if not rec:
        raise ValueError(f"{type(model).__name__} has no recurrent layer")
    top = rec[-1]
    place = [k for k, layer in enumerate(model.layers) if layer is top]
    if not place:
        raise ValueError(f"{type(model).__name__}'s top recurrent layer, a "
                         f"{type(top).__name__}, is inside a part, not in model.layers: the "
                         f"gradient through time is taken up a chain of layers, from the "
                         f"top recurrent layer to the loss")
    above = model.layers[place[0] + 1:]
    N, T = xs.shape
    loss_layer = model.loss_layer
    # Only the last targets are scored; the others are marked ignored, with -1
    # for a loss layer that ignores nothing (ignore_label=None) for this call.
    ignore = -1 if loss_layer.ignore_label is None else loss_layer.ignore_label
    last_only = np.full(ts.shape, ignore, dtype=np.int64)  # signed, whatever ts's ids are
    last_only[:, -1] = ts[:, -1]
    # The loss is the mean over the scored last targets (one equal to ignore_label
    # is not): scaled back by their number, each sequence's own loss.
    scored = max(int((last_only[:, -1] != ignore).sum()), 1)
    with _inspecting(model), _ignoring(loss_layer, ignore):
        states = []  # states[t]: every recurrent layer's state after step t
        for t in range(T):
            scores = model.predict(xp.asarray(xs[:, t:t + 1]))
            states.append(model.get_state())
            if t == T - 1:
                h_last = top.h
        grads = np.empty((N, T, h_last.shape[-1]), np.float64)
        # t = T - 1: the loss reads h directly, through the layers above.
        out = h_last[:, None, :]
        for layer in above:
            out = layer.forward(out)
        _check_chain(model, top, out, scores)
        model.loss_layer.forward(out, xp.asarray(last_only[:, -1:]))
        dout = model.loss_layer.backward(scored)  # per-sequence loss, not the batch mean
        for layer in reversed(above):
            dout = layer.backward(dout)
        grads[:, T - 1] = to_cpu(dout[:, 0])
        # t < T - 1: run the rest of the sequence from the state after t.
        for t in range(T - 1):
            model.set_state(states[t])
            model.forward(xp.asarray(xs[:, t + 1:]), xp.asarray(last_only[:, t + 1:]))
            model.backward(scored)
            if getattr(top, "dh", None) is None:
                raise ValueError(f"{type(top).__name__} keeps no dh after its backward (the "
                                 f"gradient of the loss w.r.t. its initial state), which this "
                                 f"reads: set self.dh in its backward, as rnnlab's recurrent "
                                 f"layers do")
            grads[:, t] = to_cpu(top.dh)
    return grads


def _check_chain(model, top, chained, predicted) -> None:
    """Refuse a model whose ``predict`` does not compute its scores from the
    top recurrent layer's ``h`` through the layers after it in
    ``model.layers`` (a residual connection, a layer used out of its
    order): the gradient taken up that chain would not be the model's."""
    chained, predicted = to_cpu(chained), to_cpu(predicted)
    if np.shape(chained) == np.shape(predicted):
        finite = np.abs(predicted[np.isfinite(predicted)])  # (a NaN weight: NaN scores alike)
        scale = max(float(finite.max(initial=0)), 1.0)
        same = np.allclose(chained, predicted, rtol=1e-4, atol=1e-5 * scale, equal_nan=True)
    else:
        same = False
    if not same:
        raise ValueError(f"{type(model).__name__}.predict does not compute its scores from "
                         f"its top recurrent layer's h ({type(top).__name__}) through the "
                         f"layers after it in model.layers, one after the other (a residual "
                         f"connection? a layer used out of its order?): the gradient through "
                         f"time is taken up that chain of layers, which would not give the "
                         f"model's")


def gradient_through_time(model, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Mean over the batch of ``|| d loss_n / d h_t ||`` for every step ``t``.

    ``loss_n`` is sequence ``n``'s cross-entropy at the last step; see
    :func:`hidden_state_gradients`. ``result[-1]`` is the gradient at the
    last step itself, ``result[0]`` the one that travelled ``T - 1`` steps
    back. Overwrites the model's ``grads``.

    Shape:
        xs, ts int ``(N, T)``, N >= 1, T >= 1 -> ``(T,)``
    """
    g = hidden_state_gradients(model, xs, ts)
    return np.linalg.norm(g, axis=2).mean(axis=0)
