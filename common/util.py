"""Training helpers: gradient clipping (by global norm, by value),
perplexity (:func:`perplexity`, :func:`eval_perplexity`), id and random
generator checks, and the sequence-to-sequence scoring helpers (:func:`eval_seq2seq`,
:func:`seq2seq_correct`, :func:`seq2seq_accuracy`)."""

import contextlib
import math
import numbers

import numpy as np

from common.backend import to_cpu, to_gpu, xp  # noqa: F401  (to_cpu, to_gpu: the book's names)
from common.batch_worker import (  # noqa: F401  (is_sequence_to_sequence: also here)
    ignore_label_of,
    is_sequence_to_sequence,
)
from common.data_parallel import answer_halves
from common.feeders import rows_array
from common.parallel import managed


def finite_number(value) -> bool:
    """Whether ``value`` is a real number, not a bool, and neither NaN nor
    infinite (NumPy scalars included), nor an integer too large for a float
    (``10**400``): what a rate, a limit or a scale must be."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # math.isfinite converts an int to a float first
        return False


def not_one_number(value) -> str | None:
    """What ``value`` is, in words, unless it is one real number (a loss; a
    0-d array counts); None when it is."""
    if not isinstance(value, bool) and (isinstance(value, numbers.Real)
                                        or getattr(value, "shape", None) == ()):
        return None
    if hasattr(value, "shape"):
        return f"{type(value).__name__} of shape {value.shape}"
    return type(value).__name__


def check_rng(rng, none: str = "None") -> None:
    """Refuse an ``rng`` that is neither a ``numpy.random.Generator`` (or a
    BitGenerator or SeedSequence, which ``default_rng`` takes too), nor an
    integer seed >= 0, nor None (``none`` says what None means to the
    caller), before NumPy fails on it with its own words."""
    if rng is None or isinstance(rng, (np.random.Generator, np.random.BitGenerator,
                                       np.random.SeedSequence)):
        return
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral) or rng < 0:
        raise ValueError(f"rng must be a numpy.random.Generator (or a BitGenerator or "
                         f"SeedSequence), an integer seed >= 0 or {none}, got {rng!r}")


def clip_grads(grads, max_norm):
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``.

    The norm is taken over all arrays together, as if they were one vector,
    so clipping keeps the direction of the full gradient: a norm above
    ``max_norm`` is scaled by ``max_norm / (norm + 1e-6)``, as the book's
    code and PyTorch's ``clip_grad_norm_`` do. Returns the norm before
    clipping (``inf`` or ``nan`` if a gradient is not finite; the grads are
    then left as they are). One array listed twice is one gradient: counted
    and scaled once.
    """
    if not (finite_number(max_norm) and max_norm > 0):
        raise ValueError(f"max_norm must be a number > 0, got {max_norm!r}")
    # Read twice (a generator would be spent by the norm); an array listed
    # twice once (scaled twice, it ended far below max_norm).
    grads = list(grads)
    _check_changeable("clip_grads scales", grads)  # (all before any is scaled)
    grads = list({id(g): g for g in grads}.values())
    total = 0.0
    for g in grads:
        # (float16's squares in float32: their sums pass its largest number, 65504.)
        flat = g.reshape(-1).astype(np.promote_types(g.dtype, np.float32), copy=False)
        with np.errstate(over="ignore"):  # (an overflow is handled below)
            total += float(flat @ flat)  # one BLAS dot, no temporary array
    norm = math.sqrt(total)
    if math.isinf(norm) and all(bool(xp.isfinite(g).all()) for g in grads):
        norm = _scaled_norm(grads)  # finite gradients whose squares overflow float32
    if math.isfinite(norm) and norm > max_norm:
        rate = max_norm / (norm + 1e-6)
        for g in grads:
            # (A float16 rate may round to 0: scaled in float32 at least, cast back.)
            np.multiply(g, np.promote_types(g.dtype, np.float32).type(rate), out=g,
                        casting="unsafe")
    return norm


def _check_changeable(what: str, grads: list) -> None:
    """Refuse gradients a clip cannot change in place, all before any is
    changed: not a float array (an integer one would be truncated), or
    read-only (the clip would stop part way, some gradients changed)."""
    for k, g in enumerate(grads):
        if not hasattr(g, "dtype") or isinstance(g, np.generic):
            raise TypeError(f"{what} gradients in place; they must be arrays, got "
                            f"{type(g).__name__} at position {k}: give the model's grads "
                            f"(np.asarray(...) makes a new array, which the model never reads)")
        if g.dtype.kind != "f":
            raise TypeError(f"{what} gradients in place; they must be float arrays, got dtype "
                            f"{g.dtype}")
        if not getattr(getattr(g, "flags", None), "writeable", True):
            raise ValueError(f"{what} gradients in place, but the one at position {k} is "
                             f"read-only (flags.writeable is False): give arrays it may change")


def _scaled_norm(grads):
    """The global L2 norm of finite ``grads`` too large to square in their
    dtype (an exploding gradient above about 1.8e19 in float32): each
    divided by the largest magnitude first, ``norm = m * ||g / m||``."""
    m = max(float(xp.abs(g).max()) for g in grads if g.size)
    total = 0.0
    for g in grads:
        flat = g.reshape(-1) / g.dtype.type(m)
        total += float(flat @ flat)
    return m * math.sqrt(total)


def merge_tied_grads(params, grads):
    """Sum, in place, the gradients of an array listed more than once in
    ``params`` (tied weights) into its first place's gradient, and zero its
    other places'. The optimizers' update is the same, and a clip over
    ``grads`` then clips the tied array's whole gradient (its norm, its
    values), as the book's loop does after its ``remove_duplicate`` and
    PyTorch does for its one parameter. The book's own tie, a matrix ``W``
    at one place and its transposed view ``W.T`` at another, is merged the
    same way (the view's gradient transposed), as ``remove_duplicate``
    merges it. Untied arrays are left as they are.
    """
    grads = list(grads)  # (a tuple or a generator too: the arrays are changed in place)
    first, matrices = {}, []
    for j, p in enumerate(params):
        i = first.setdefault(id(p), j)
        if i != j:
            if grads[j] is not grads[i]:  # (one array listed twice: left as it is)
                total = grads[i]
                total += grads[j]
                grads[j][...] = 0
        elif isinstance(p, np.ndarray) and p.ndim == 2:
            matrices.append((j, p))
    # A transposed view has the reversed shape: only those are looked at closely
    # (this runs at every clipped batch).
    shapes = {p.shape for _, p in matrices}
    layouts = {}
    for j, p in matrices:
        if p.shape[::-1] not in shapes:
            continue
        at = p.__array_interface__["data"][0]
        layouts.setdefault((at, p.shape, p.strides), j)
        i = layouts.get((at, p.shape[::-1], p.strides[::-1]))
        if i is not None and not np.shares_memory(grads[i], grads[j]):
            total = grads[i]
            total += grads[j].T
            grads[j][...] = 0


def evaluating(model):
    """``with evaluating(model):`` dropout off inside; on leaving, the
    train/eval mode and the carried recurrent state are what they were.

    ``model.evaluating()`` (:class:`models.base.Model`) where the model has
    it; for another model object the same by hand: the ``train_flg`` of
    its ``layers``, and ``get_state``/``set_state`` where it has them.
    """
    if hasattr(model, "evaluating"):
        return model.evaluating()
    return _evaluating_by_hand(model)


@contextlib.contextmanager
def _evaluating_by_hand(model):
    modes = [(layer, layer.train_flg) for layer in getattr(model, "layers", [])
             if hasattr(layer, "train_flg")]
    carried = model.get_state() if hasattr(model, "get_state") else None
    if hasattr(model, "eval"):
        model.eval()
    else:
        for layer, _ in modes:
            layer.train_flg = False
    try:
        yield model
    finally:
        if carried is not None:
            model.set_state(carried)
        for layer, mode in modes:
            layer.train_flg = mode


@contextlib.contextmanager
def carrying_state(model):
    """``with carrying_state(model):`` every recurrent layer of ``model`` is
    stateful inside (its state goes on from call to call, as a text is read
    in order), whatever it was set to; the flags as they were afterwards.
    The layers are ``model._recurrent_layers()`` where the model has it (an
    rnnlab model), else those of its ``layers`` that have a ``stateful`` flag."""
    if hasattr(model, "_recurrent_layers"):
        layers = [layer for layer in model._recurrent_layers() if hasattr(layer, "stateful")]
    else:
        layers = [layer for layer in getattr(model, "layers", []) if hasattr(layer, "stateful")]
    flags = [layer.stateful for layer in layers]
    for layer in layers:
        layer.stateful = True
    try:
        yield
    finally:
        for layer, flag in zip(layers, flags, strict=True):
            layer.stateful = flag


def perplexity(mean_loss: float) -> float:
    """``exp(mean_loss)``, the perplexity of a mean loss in nats; ``inf`` where
    that overflows (a model far from trained), not ``OverflowError``."""
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf


def eval_perplexity(model, corpus, batch_size=10, time_size=35):
    """Perplexity ``exp(mean loss)`` of ``model`` on every token of ``corpus``.

    The model's state is reset first and dropout is off while evaluating
    (:func:`evaluating`: ``model.evaluating()``); afterwards the model's
    train/eval mode and its carried recurrent state are what they were, so
    training can go on where it stopped; a ``backward`` after it is refused
    (it would run on the last evaluated batch, not on the last ``forward``
    of training). The ``L = len(corpus) - 1`` prediction targets are cut
    into ``batch_size`` lanes of ``ceil(L / batch_size)`` positions, each
    read in order with its state carried (:func:`carrying_state`, also for
    layers set to ``stateful = False``), so ``time_size`` changes nothing
    but round-off; the tail of the last lanes is padding, which counts for
    nothing. The mean
    is over the targets the loss scores, as in training: every target,
    unless the loss layer's ``ignore_label`` is an id of the corpus (a
    padding id), whose targets are left out.

    Args:
        corpus: 1-D int array of ids.
    Returns:
        the perplexity (a float).
    Raises:
        TypeError: for a sequence-to-sequence model (it answers questions:
            :func:`seq2seq_accuracy`, or ``Trainer``'s ``val_data``).
    """
    for name, value in (("batch_size", batch_size), ("time_size", time_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"eval_perplexity: {name} must be a positive integer, got "
                             f"{value!r}")
    corpus = np.asarray(corpus)
    if corpus.ndim != 1 or corpus.size < 2:
        raise ValueError("eval_perplexity needs a 1-D corpus of at least 2 ids")
    if not np.issubdtype(corpus.dtype, np.integer):
        raise TypeError(f"eval_perplexity: corpus must hold integer word ids, got dtype "
                        f"{corpus.dtype}")
    if is_sequence_to_sequence(model):
        raise TypeError(f"eval_perplexity scores a language model on one corpus; "
                        f"{type(model).__name__} answers questions: score it with "
                        f"seq2seq_accuracy(model, questions, answers), or give "
                        f"Trainer.fit val_data=(questions, answers)")
    for needed in ("loss_layer", "reset_state"):
        if not hasattr(model, needed):
            raise TypeError(f"eval_perplexity needs a language model with a loss_layer (a "
                            f"TimeSoftmaxWithLoss: it sets its ignore_label for the padding) "
                            f"and reset_state(); {type(model).__name__} has no {needed}")
    # Ids only: an ignore_label (-1) in the corpus would be neither scored nor a word.
    check_id_range("corpus", corpus, getattr(model, "vocab_size", None))
    loss_layer = model.loss_layer
    ignore = loss_layer.ignore_label
    L = corpus.size - 1
    scored = L if ignore is None else int((corpus[1:] != ignore).sum())
    if not scored:
        raise ValueError(f"eval_perplexity: every target of the corpus is the loss's "
                         f"ignore_label {ignore}, so there is nothing to score")
    N = min(batch_size, L)
    lane = -(-L // N)  # ceil
    # The padding's label: one the loss leaves out, and no id. (A loss that scores
    # every target, ignore_label None, is given -1 while it evaluates.)
    pad = -1 if ignore is None else ignore
    # Signed ids (a uint8 corpus cannot hold the label -1 of the padding).
    xs = np.zeros(N * lane, dtype=np.int64)
    ts = np.full(N * lane, pad, dtype=np.int64)
    xs[:L], ts[:L] = corpus[:-1], corpus[1:]
    xs, ts = xs.reshape(N, lane), ts.reshape(N, lane)

    total = 0.0
    loss_layer.ignore_label = pad
    try:
        with evaluating(model), carrying_state(model), managed():
            model.reset_state()
            for start in range(0, lane, time_size):
                batch_x = xp.asarray(xs[:, start:start + time_size])
                batch_t = xp.asarray(ts[:, start:start + time_size])
                n = int((batch_t != pad).sum())
                if n:
                    total += model.forward(batch_x, batch_t) * n
    finally:
        loss_layer.ignore_label = ignore
        if hasattr(model, "_forget_forward"):
            model._forget_forward()
    return perplexity(total / scored)


def id_outside(ids, vocab_size, ignore_label=None):
    """An id of the integer array ``ids`` outside ``[0, vocab_size)`` (the
    lowest if one is negative, else the highest; ``vocab_size`` None: only
    negative ids count), leaving out ``ignore_label``; None when all are inside.

    The usual case, every id inside, costs one ``min`` and one ``max``.
    """
    if ids.size == 0:
        return None
    lo, hi = int(ids.min()), int(ids.max())
    if 0 <= lo and (vocab_size is None or hi < vocab_size):
        return None
    if ignore_label is not None:
        ids = ids[ids != ignore_label]
        if ids.size == 0:
            return None
        lo, hi = int(ids.min()), int(ids.max())
    if lo < 0:
        return lo
    return hi if vocab_size is not None and hi >= vocab_size else None


def check_id_range(name, ids, vocab_size, ignore_label=None):
    """Refuse ids outside the vocabulary now, not at the batch that holds
    them (perhaps hours into the run). Integer arrays only: the layers
    refuse other dtypes at the first batch."""
    if not np.issubdtype(ids.dtype, np.integer):
        return
    bad = id_outside(ids, vocab_size, ignore_label)
    if bad is not None:
        allowed = "(ids >= 0)" if vocab_size is None else f"range [0, {vocab_size})"
        raise ValueError(f"{name} holds the id {bad}, outside the "
                         f"vocabulary {allowed} of the model: was it encoded with the "
                         f"training corpus's word_to_id, and is the model's vocab_size "
                         f"len(word_to_id)?")


def clip_grads_value(grads, max_value):
    """Clip every gradient element to ``[-max_value, max_value]``, in place.

    Elementwise clipping, as Karpathy's min-char-rnn does (``np.clip(d, -5,
    5)``); unlike :func:`clip_grads` it changes the gradient's direction.
    Can be combined with the global-norm clip (the norm first).
    """
    if not (finite_number(max_value) and max_value > 0):
        raise ValueError(f"max_value must be a number > 0, got {max_value!r}")
    grads = list(grads)  # (read twice: checked, then clipped)
    _check_changeable("clip_grads_value clips", grads)  # (all before any is clipped)
    bounds = []
    for g in grads:
        # (A np.float64 bound would clip in float64; one past the dtype's range, inf.)
        bound = g.dtype.type(min(max_value, float(np.finfo(g.dtype).max)))
        if bound == 0:  # it rounds to 0 in this dtype: every gradient would be zeroed
            raise ValueError(f"max_value {max_value!r} rounds to 0 in {g.dtype}: it would clip "
                             f"every gradient to 0")
        bounds.append(bound)
    for g, bound in zip(grads, bounds, strict=True):
        xp.clip(g, -bound, bound, out=g)


# -- sequence to sequence (the textbook's chapter 7) ----------------------------------------


def eval_seq2seq(model, question, correct, id_to_char, verbose: bool = False,
                 is_reverse: bool = False, *, verbos: bool | None = None) -> int:
    """1 if ``model`` answers one question exactly right, else 0 (the textbook's helper).

    ``question`` ``(1, T_enc)`` ids; ``correct`` ``(1, T_dec + 1)`` ids whose
    first id starts the answer. With ``verbose`` (the book's spelling
    ``verbos`` works too) the question, the right answer and the model's,
    marked ``O`` (right) or ``X`` (wrong), are printed; the question is
    printed reversed back when ``is_reverse``. A target equal to the loss's
    ``ignore_label`` is not scored, as in :func:`seq2seq_correct` (printed
    ``*``).
    """
    if verbos is not None:
        verbose = verbos
    question, correct = np.asarray(question), np.asarray(correct)
    if question.ndim > 2 or correct.ndim > 2 or (question.ndim == 2 and len(question) != 1) \
            or (correct.ndim == 2 and len(correct) != 1):
        raise ValueError(f"eval_seq2seq scores one question: question (1, T_enc) and correct "
                         f"(1, T_dec + 1), got {question.shape} and {correct.shape}; "
                         f"seq2seq_accuracy scores many at once")
    _check_integer_ids(question=question, correct=correct)
    correct = correct.reshape(-1)
    if correct.size < 2:
        raise ValueError(f"correct needs a start id and at least one answer id, got "
                         f"{correct.size} id(s)")
    if callable(getattr(model, "check_pairs", None)):  # ids outside the vocabulary, as
        model.check_pairs(question.reshape(1, -1), correct[None])  # seq2seq_correct refuses
    guess_ids = np.asarray(model.generate(question, int(correct[0]), correct.size - 1)).reshape(-1)
    scored = correct[1:] != ignore_label_of(model)  # all True when the label is None

    def char(i):
        try:
            if i < 0:  # a list would read id -1 as its last character
                raise IndexError
            return id_to_char[i]
        except (KeyError, IndexError):
            raise ValueError(f"id {i} has no character in id_to_char ({len(id_to_char)} "
                             f"entries): give the id_to_char the data was encoded with") from None

    def text(ids, scored=None):
        return "".join(char(int(i)) if scored is None or scored[k] else "*"
                       for k, i in enumerate(ids))

    right, guess = text(correct[1:], scored), text(guess_ids)
    hit = bool(np.all(guess_ids[scored] == correct[1:][scored]))
    if verbose:
        q = text(np.asarray(question).reshape(-1))
        print("Q", q[::-1] if is_reverse else q)
        print("T", right)
        print(("O " if hit else "X ") + guess)
        print("---")
    return int(hit)


def check_whole_number(name: str, value, low: int = 1, example: int | None = None) -> None:
    """Refuse (``ValueError``) a ``value`` that is not an integer ``>= low``
    (NumPy integers are; bools, floats and strings are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        e_g = f", e.g. {example}" if example is not None else ""
        raise ValueError(f"{name} must be a whole number >= {low}{e_g}, got {value!r}")


def _check_integer_ids(**arrays):
    """Refuse arrays of ids that are not integers (a float id would be cut)."""
    for name, ids in arrays.items():
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{name} must hold integer ids, got dtype {ids.dtype}")


def seq2seq_correct(model, questions, answers, batch_size: int = 1000,
                    beam_width: int = 1) -> np.ndarray:
    """Whether the model answers each question exactly right: a bool array ``(N,)``.

    All questions of a batch are answered at once (``model.generate`` on
    ``(batch_size, T_enc)``), not one per call, with ``beam_width`` beams
    (1: greedy). ``answers`` ``(N, T_dec + 1)`` start with the id that
    starts each answer. A target equal to the loss's ``ignore_label`` is
    not scored, as the loss does not score it: any answer there counts as
    right. Pairs the model could not train on (an id outside its
    vocabulary, its ``check_pairs``) are refused, not scored as wrong.
    """
    questions, answers = rows_array("questions", questions), rows_array("answers", answers)
    if questions.ndim != 2 or answers.ndim != 2 or len(questions) != len(answers):
        raise ValueError(f"questions (N, T_enc) and answers (N, T_dec + 1) must be 2-D with the "
                         f"same N, got {questions.shape} and {answers.shape}")
    if answers.shape[1] < 2:
        raise ValueError(f"answers need a start id and at least one answer id (2 columns or "
                         f"more), got shape {answers.shape}")
    _check_integer_ids(questions=questions, answers=answers)
    check_whole_number("batch_size", batch_size, example=1000)
    if len(questions) and callable(getattr(model, "check_pairs", None)):
        try:
            model.check_pairs(questions, answers)
        except (TypeError, ValueError) as exc:  # (it names forward's xs and ts)
            raise type(exc)(f"questions and answers do not fit {type(model).__name__}"
                            f".forward(xs, ts): {exc}") from None
    ignore = ignore_label_of(model)
    out = np.zeros(len(questions), dtype=bool)
    rows = min(batch_size, len(questions))
    # Half of each batch answered by a helper process where that pays
    # (common.data_parallel), as the trainer computes its batches.
    with answer_halves(model, rows, questions.shape[1], answers.shape[1] - 1) as answer:
        for a in range(0, len(questions), batch_size):
            q, t = questions[a:a + batch_size], answers[a:a + batch_size]
            guess = answer(xp.asarray(q), xp.asarray(t[:, 0]), beam_width)
            hit = to_cpu(guess) == t[:, 1:]
            if ignore is not None:
                hit |= t[:, 1:] == ignore
            out[a:a + batch_size] = hit.all(axis=1)
    return out


def seq2seq_accuracy(model, questions, answers, batch_size: int = 1000,
                     beam_width: int = 1) -> float:
    """The fraction of questions answered exactly right (see :func:`seq2seq_correct`).

    Raises ValueError when there are no questions (a fraction of nothing).
    """
    if len(questions) == 0:
        raise ValueError("no questions to score: questions has 0 rows")
    return float(seq2seq_correct(model, questions, answers, batch_size, beam_width).mean())
