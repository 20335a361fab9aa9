"""Sampling text from any rnnlab language model (or searching it, by beam search)."""

import math

import numpy as np

from common.backend import to_cpu, xp
from common.util import carrying_state, check_rng, finite_number
from models.beam_search import beam_search_lm


def generate(model, start_ids, length: int, temperature: float = 1.0, top_k: int | None = None,
             stop_id: int | None = None, rng=None, beam_width: int | None = None) -> list[int]:
    """Feed ``start_ids`` to ``model`` and sample ``length`` further ids.

    At each step the last id goes through the model (batch 1, one time
    step) and the next id is drawn from ``softmax(scores / temperature)``,
    restricted to the ``top_k`` most likely ids when ``top_k`` is given
    (exactly ``top_k`` of them, even when scores tie).
    ``temperature=0`` picks the most likely id (greedy). Sampling stops early
    after ``stop_id`` has been produced. With ``beam_width`` the ids are not
    sampled: beam search (:func:`models.beam_search.beam_search_lm`) returns
    the most likely continuation it finds keeping ``beam_width`` candidates
    at each step (1 is greedy); ``temperature``, ``top_k`` and ``rng`` must
    then be left at their defaults.

    Generation starts from a zero state and carries the recurrent state
    itself from step to step, so the prompt and everything generated so
    far condition each next id whether or not the model's recurrent layers
    are ``stateful``. The model's carried training state and train/eval
    mode are given back afterwards (:meth:`~models.base.Model.evaluating`), so
    generating in the middle of training changes nothing about the run.
    Every argument is checked before anything is computed.

    Args:
        start_ids: a non-empty sequence of ids in ``[0, V)`` (the prompt).
        length: how many ids to produce after the prompt (an int >= 0).
        temperature: a finite number >= 0 that divides the scores; below 1
            sharpens, above 1 flattens, 0 is greedy.
        top_k: sample among the ``top_k`` most likely ids only, an int in
            ``[1, V]`` (None: all).
        stop_id: stop after producing this id (it is included in the result).
        rng: a ``numpy.random.Generator`` or an int seed (>= 0).
        beam_width: search instead of sampling, keeping this many beams (an
            int >= 1; None: sample).

    Returns:
        the list of generated ids (without the prompt).
    """
    V = _language_model_vocab_size(model)
    start_ids = _check_generate_args(start_ids, length, temperature, top_k, stop_id, rng, V)
    if beam_width is not None:
        if not _is_int(beam_width) or beam_width < 1:
            raise ValueError(f"beam_width must be an integer >= 1 or None, got {beam_width!r}")
        if temperature != 1.0 or top_k is not None or rng is not None:
            raise ValueError("beam_width searches for the most likely text; it takes no "
                             "temperature, top_k or rng (leave them at their defaults)")
        return beam_search_lm(model, start_ids, length, beam_width, stop_id=stop_id)
    return list(_sampled(model, start_ids, length, temperature, top_k, stop_id, rng))


def iter_generate(model, start_ids, length: int, temperature: float = 1.0,
                  top_k: int | None = None, stop_id: int | None = None, rng=None):
    """The ids of :func:`generate` (sampling, not beam search), one at a time.

    An iterator that yields each id as soon as it is drawn, so a caller can
    show the text as it grows and keep what came before an interruption;
    with the same arguments it yields exactly the ids that ``generate``
    returns. The arguments are checked when it is called, before anything
    is computed. The model's state and mode are given back when the
    iterator is exhausted or closed (``contextlib.closing``, or dropping
    it); do not use the model for anything else before then.

    Returns:
        an iterator of ints.
    """
    start_ids = _check_generate_args(start_ids, length, temperature, top_k, stop_id, rng,
                                     _language_model_vocab_size(model))
    return _sampled(model, start_ids, length, temperature, top_k, stop_id, rng)


def _sampled(model, start_ids, length, temperature, top_k, stop_id, rng):
    """The sampling loop of :func:`generate` on checked arguments, yielding each id."""
    if hasattr(model, "_forget_forward"):  # (beam_search_lm does the same)
        model._forget_forward()
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    with model.evaluating(), carrying_state(model):
        model.reset_state()
        # The prompt but its last id only warms up the state.
        if len(start_ids) > 1:
            model.predict(xp.asarray([start_ids[:-1]]))
        x = start_ids[-1]
        for _ in range(length):
            scores = to_cpu(model.predict(xp.asarray([[x]])))[0, -1].astype(np.float64)
            x = _pick(scores, temperature, top_k, rng)
            yield x
            if stop_id is not None and x == stop_id:
                break


def _language_model_vocab_size(model) -> int:
    """``model``'s vocabulary size V, once it is known to be a language model
    (its ``predict`` scores the next id); a ``TypeError`` that says what to
    call otherwise (a sequence-to-sequence model has its own ``generate``)."""
    if callable(getattr(model, "predict", None)) and hasattr(model, "vocab_size"):
        return model.vocab_size
    name = type(model).__name__
    if callable(getattr(model, "generate", None)) and hasattr(model, "encoder"):
        raise TypeError(f"generate samples from a language model; {name} answers questions: "
                        f"call model.generate(xs, start_id, sample_size) (beam_width=k for "
                        f"beam search)")
    raise TypeError(f"generate samples from a language model (a model whose predict(xs) "
                    f"scores the next id, with a vocab_size), got {name}")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_generate_args(start_ids, length, temperature, top_k, stop_id, rng, V):
    """The prompt as a list of ints; ``ValueError`` naming the first bad argument."""
    ids = np.atleast_1d(np.asarray(start_ids))
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise ValueError(f"start_ids must be a sequence of integer ids, got {start_ids!r:.80}")
    if not ids.size:
        raise ValueError("start_ids must hold at least one id")
    bad = [int(i) for i in ids if not 0 <= i < V]
    if bad:
        raise ValueError(f"start_ids {bad[:10]} are outside the vocabulary [0, {V})")
    if not _is_int(length) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    if not (finite_number(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0 is greedy), "
                         f"got {temperature!r}")
    if top_k is not None and (not _is_int(top_k) or not 1 <= top_k <= V):
        raise ValueError(f"top_k must be an integer in [1, {V}] or None, got {top_k!r}")
    if stop_id is not None and (not _is_int(stop_id) or not 0 <= stop_id < V):
        raise ValueError(f"stop_id must be an id in [0, {V}) or None, got {stop_id!r}")
    check_rng(rng)
    return [int(i) for i in ids]


def _pick(scores, temperature, top_k, rng):
    """One id drawn from the (tempered, top-k restricted) softmax of ``scores``.

    ``top_k`` keeps exactly ``k`` ids (the ``k`` largest scores; among tied
    scores at the border an arbitrary but deterministic subset), and the
    others get probability zero. ``temperature == 0`` is the argmax of the
    scores (a most likely id, whatever ``top_k``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    top = float(scores.max())  # NaN if any score is NaN
    if not math.isfinite(top):
        raise FloatingPointError("the model produced non-finite scores; cannot sample")
    if temperature == 0:
        return int(np.argmax(scores))
    ids = np.arange(scores.size)
    if top_k is not None and top_k < scores.size:
        # argpartition picks exactly k positions, even when scores tie at the
        # k-th value (a ">= k-th score" threshold would admit all the ties).
        ids = np.sort(np.argpartition(scores, -top_k)[-top_k:])
        scores = scores[ids]
    # Subtract the max before dividing: the largest score gives exp(0) = 1 however
    # tiny the temperature. The others may overflow to -inf (1e-320 divides by
    # almost nothing), which is exactly right: exp(-inf) = 0, greedy in the limit.
    with np.errstate(over="ignore"):
        p = np.exp((scores - top) / temperature)  # the top k hold the max too
    # Inverse-CDF sampling (what rng.choice(p=...) does, without its checks).
    cdf = np.cumsum(p)
    i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    if i == p.size:  # u * total rounded up to total: take the last possible id
        i = int(np.flatnonzero(p)[-1])
    return int(ids[i])
