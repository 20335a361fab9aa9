"""Beam search: keep the ``beam_width`` most likely continuations at each step.

Greedy decoding keeps one sequence and takes the most likely id at each
step; it can miss the most likely *sequence*, whose first id was only the
second best. Beam search keeps ``k`` sequences (beams) and their total log
probabilities. At each step every beam is extended by every id (``k * V``
candidates per question), and the ``k`` candidates with the largest total
log probability become the new beams. With ``k = 1`` this is greedy; with
``k >= V ** (L - 1)`` every sequence of length ``L`` is scored, so the
result is the exact most likely one.

A beam that produced ``stop_id`` is finished: it stays among the
candidates with its total unchanged (extended only by ``stop_id`` again, at
no cost), and competes with the unfinished ones by total log probability
(no length normalisation). Since a total only falls as a beam grows, a
finished best beam stays the best: the search stops once the best beam of
every question is finished.

Everything is batched: ``N`` questions with ``k`` beams each are ``N * k``
rows of one decoder batch. The decoder follows the protocol of
:mod:`models.seq2seq` (``step(ids) -> scores``, ``select(rows)``), already
``begin``-ed for the ``N`` questions.
"""

import numpy as np

from common.backend import to_cpu, xp
from common.util import carrying_state


def _log_softmax64(scores):
    s = to_cpu(scores).astype(np.float64)
    # -inf is an id ruled out (skip_ids); NaN or +inf is a model gone wrong, whose
    # "answers" would be the argmax of garbage.
    if np.isnan(s).any() or np.isposinf(s).any():
        raise FloatingPointError("the model produced non-finite scores (NaN or inf); its "
                                 "weights have diverged")
    s -= s.max(axis=1, keepdims=True)
    s -= np.log(np.exp(s).sum(axis=1, keepdims=True))
    return s


def check_count(name: str, value, low: int) -> int:
    """``value`` as an int ``>= low`` (NumPy integers accepted; bools, floats refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def useful_width(beam_width: int, vocab_size: int, sample_size: int) -> int:
    """The narrowest beam that finds what ``beam_width`` beams find.

    ``V ** (L - 1)`` beams hold every sequence of ``L - 1`` ids, so their
    candidates are all the sequences of ``L``: a wider beam only adds rows
    that never win (and costs time and memory in proportion).
    """
    # The exponent is capped so that the power stays cheap: 2 ** 64 beams would not
    # fit in any memory anyway.
    return min(beam_width, vocab_size ** min(max(sample_size - 1, 0), 64))


def beam_search(decoder, start_ids, sample_size: int, beam_width: int,
                stop_id: int | None = None) -> np.ndarray:
    """The most likely continuations of ``N`` questions, found by beam search.

    Args:
        decoder: an object with ``step(ids (M,)) -> scores (M, V)`` and
            ``select(rows)``, whose state holds ``N`` rows; optionally
            ``skip``, a boolean mask ``(V,)`` of ids never to produce, ruled
            out after the scores are made log-probabilities (so the beams
            are ranked by the model's own probabilities, not by those
            renormalised over the other ids), or None.
        start_ids: ``(N,)`` the first input id of each answer.
        sample_size: how many ids to produce.
        beam_width: ``k``, the number of beams per question (1 is greedy).
        stop_id: an id that ends a sequence (None: all run ``sample_size`` steps).

    Returns:
        ids ``(N, sample_size)`` (int64) of the best beam of each question
        (after a ``stop_id``, the rest of the row is ``stop_id``). The decoder
        is left with the state of those best beams (``N`` rows) after all the
        ids it was fed: all but the last id searched. With ``stop_id``, the
        search ends at the step where the best beam of every question is
        finished; the ``stop_id`` filling the rows after it are not fed.
    """
    sample_size = check_count("sample_size", sample_size, 0)
    beam_width = check_count("beam_width", beam_width, 1)
    if stop_id is not None:
        stop_id = check_count("stop_id", stop_id, 0)
    start_ids = to_cpu(start_ids).reshape(-1)
    N, k = start_ids.size, beam_width
    decoder.select(xp.asarray(np.repeat(np.arange(N), k)))  # row n * k + j is beam j of question n
    ids = np.repeat(start_ids, k)
    # Every beam starts as the same empty sequence: only one may be extended,
    # or the first step would fill the beam with copies.
    total = np.full((N, k), -np.inf)
    total[:, 0] = 0.0
    finished = np.zeros((N, k), dtype=bool)
    # Back-pointers: at step t, beam j of question n became beam parents[t, n, j]
    # of step t - 1 followed by the id words[t, n, j]. (Copying every beam's whole
    # sequence at each step made the search quadratic in sample_size.) np.empty:
    # the steps after an early stop are never written, nor their pages touched.
    words = np.empty((sample_size, N, k), dtype=np.int64)
    parents = np.empty((sample_size, N, k), dtype=np.int64)
    steps = 0
    for t in range(sample_size):
        logp = _log_softmax64(decoder.step(xp.asarray(ids)))
        if (skip := getattr(decoder, "skip", None)) is not None:
            logp[:, to_cpu(skip)] = -np.inf
        V = logp.shape[1]
        if stop_id is not None and stop_id >= V:
            raise ValueError(f"stop_id {stop_id} is outside the vocabulary [0, {V})")
        logp = logp.reshape(N, k, V)
        if stop_id is not None and finished.any():
            logp[finished] = -np.inf
            logp[finished, stop_id] = 0.0
        candidates = (total[:, :, None] + logp).reshape(N, k * V)
        best = top_k_stable(candidates, k)
        beam, word = best // V, best % V
        total = np.take_along_axis(candidates, best, axis=1)
        words[t], parents[t] = word, beam
        steps = t + 1
        finished = np.take_along_axis(finished, beam, axis=1)
        decoder.select(xp.asarray((np.arange(N)[:, None] * k + beam).reshape(-1)))
        ids = word.reshape(-1)
        if stop_id is not None:
            finished |= word == stop_id
            # An extension only lowers a total, and a finished beam keeps its own and,
            # as beam 0, wins ties: once the best beam of every question is finished,
            # it stays the best, followed by stop_id alone. (Not at a total of -inf or
            # NaN, every id ruled out: ties among those go to the lowest id, not stop_id.)
            if finished[:, 0].all() and np.isfinite(total[:, 0]).all():
                break
    # Beams are sorted by total: beam 0 is the best of each question. Its ids, last
    # to first, by following the back-pointers (one step of all N questions at a time).
    decoder.select(xp.asarray(np.arange(N) * k))
    out = np.empty((N, sample_size), dtype=np.int64)
    if steps < sample_size:  # stopped early: what the best beams would go on with
        out[:, steps:] = stop_id
    rows, j = np.arange(N), np.zeros(N, dtype=np.int64)
    for t in range(steps - 1, -1, -1):
        out[:, t] = words[t, rows, j]
        j = parents[t, rows, j]
    return out


def top_k_stable(scores, k: int) -> np.ndarray:
    """The positions of the ``k`` largest ``scores`` ``(N, M)`` of each row,
    largest first, ties to the lower position (NaN last): what
    ``np.argsort(-scores, axis=1, kind="stable")[:, :k]`` gives, so that a
    width of 1 picks what argmax picks.

    Without sorting whole rows where they are long (a language model's
    ``k * V`` candidates: at V = 10,000 and k = 50 the sort took most of the
    search): a partition finds each row's ``k``-th largest score, and only
    the scores at least as large, ties at the border included, are sorted.
    """
    N, M = scores.shape
    if M <= 4 * k or M <= 256:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    negated = -scores
    border = np.partition(negated, k - 1, axis=1)[:, k - 1 : k]  # each row's k-th smallest
    # The scores that can be among the k best: those at the border or better.
    # (A NaN border, fewer than k numbers in a row, is left to the whole sort.)
    counts = (negated <= border).sum(axis=1)
    m = int(counts.max())
    if np.isnan(border).any() or m > M // 4:
        return np.argsort(negated, axis=1, kind="stable")[:, :k]
    # The m smallest of each row hold its own counts[i] at or below its border.
    kept = np.argpartition(negated, m - 1, axis=1)[:, :m]
    values = np.take_along_axis(negated, kept, axis=1)
    order = np.lexsort((kept, values), axis=1)[:, :k]  # by value, ties by position
    return np.take_along_axis(kept, order, axis=1)


class _LanguageModelDecoder:
    """The beam-search protocol for a language model (predict / get_state / set_state).

    ``skip``: a boolean mask ``(V,)`` of ids never to produce (None: none).
    """

    def __init__(self, model, skip=None):
        self.model = model
        self.skip = skip

    def step(self, ids):
        return self.model.predict(xp.asarray(ids)[:, None])[:, -1]  # (skip: beam_search)

    def select(self, rows):
        self.model.set_state([None if s is None else s[rows] for s in self.model.get_state()])


def beam_search_lm(model, start_ids, length: int, beam_width: int,
                   stop_id: int | None = None) -> list[int]:
    """The most likely ``length`` ids after the prompt ``start_ids``, by beam search.

    For rnnlab's language models (``predict``, ``get_state``, ``set_state``,
    ``reset_state``, ``evaluating``, ``vocab_size``). The prompt
    warms the state up; then ``beam_width`` beams are kept (see the module
    docstring). The model's carried state and train/eval mode are restored
    afterwards, as :func:`models.generate.generate` does.

    Returns:
        the list of ids of the best sequence (without the prompt), ending at
        the first ``stop_id`` when one was produced.
    """
    prompt = np.atleast_1d(np.asarray(start_ids))
    V = model.vocab_size
    # int() would read 1.7 as the id 1 and '12' as 12.
    if prompt.ndim != 1 or (prompt.size and prompt.dtype.kind not in "iu"):
        raise ValueError(f"start_ids must be a sequence of integer ids, got {start_ids!r:.80}")
    if prompt.size == 0:
        raise ValueError("start_ids must hold at least one id")
    start_ids = [int(i) for i in prompt]
    bad = [i for i in start_ids if not 0 <= i < V]
    if bad:
        raise ValueError(f"start_ids {bad} are outside the vocabulary [0, {V})")
    length = check_count("length", length, 0)
    beam_width = useful_width(check_count("beam_width", beam_width, 1), V, length)
    if stop_id is not None and check_count("stop_id", stop_id, 0) >= V:
        raise ValueError(f"stop_id {stop_id} is outside the vocabulary [0, {V})")

    if hasattr(model, "_forget_forward"):
        model._forget_forward()
    # Dropout off; the state goes on from step to step whatever the layers'
    # stateful flags (else each step would start from zeros, the prompt and
    # the beam's history unread); state, mode and flags restored after.
    with model.evaluating(), carrying_state(model):
        model.reset_state()
        if len(start_ids) > 1:
            model.predict(xp.asarray([start_ids[:-1]]))
        ids = beam_search(_LanguageModelDecoder(model), np.asarray(start_ids[-1:]), length,
                          beam_width, stop_id)[0]
    out = [int(i) for i in ids]
    if stop_id is not None and stop_id in out:
        out = out[: out.index(stop_id) + 1]
    return out
