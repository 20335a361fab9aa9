"""Sampling text from any rnnlab language model."""

import math

import numpy as np

from common.backend import to_cpu, xp


def generate(model, start_ids, length, temperature=1.0, top_k=None, stop_id=None, rng=None):
    """Feed ``start_ids`` to ``model`` and sample ``length`` further ids.

    At each step the last id goes through the model (batch 1, one time
    step) and the next id is drawn from ``softmax(scores / temperature)``,
    restricted to the ``top_k`` most likely ids when ``top_k`` is given
    (exactly ``top_k`` of them, even when scores tie).
    ``temperature=0`` picks the most likely id (greedy). Sampling stops early
    after ``stop_id`` has been produced.

    The model's carried training state and train/eval mode are saved before
    and restored after, so generating in the middle of training changes
    nothing about the training run.

    Args:
        start_ids: a non-empty sequence of ints (the prompt).
        length: how many ids to produce after the prompt.
        temperature: divides the scores; below 1 sharpens, above 1 flattens,
            0 is greedy.
        top_k: sample among the ``top_k`` most likely ids only (None: all).
        stop_id: stop after producing this id (it is included in the result).
        rng: a ``numpy.random.Generator`` or an int seed.

    Returns:
        the list of generated ids (without the prompt).
    """
    start_ids = [int(i) for i in np.atleast_1d(np.asarray(start_ids))]
    V = model.vocab_size
    if not start_ids:
        raise ValueError("start_ids must hold at least one id")
    bad = [i for i in start_ids if not 0 <= i < V]
    if bad:
        raise ValueError(f"start_ids {bad} are outside the vocabulary [0, {V})")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= V:
        raise ValueError(f"top_k must be in [1, {V}], got {top_k}")
    if stop_id is not None and not 0 <= stop_id < V:
        raise ValueError(f"stop_id {stop_id} is outside the vocabulary [0, {V})")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    saved_state = model.get_state()
    saved_mode = [getattr(layer, "train_flg", None) for layer in model.layers]
    model.eval()
    model.reset_state()
    try:
        # The prompt but its last id only warms up the state.
        if len(start_ids) > 1:
            model.predict(xp.asarray([start_ids[:-1]]))
        x = start_ids[-1]
        out = []
        for _ in range(length):
            scores = to_cpu(model.predict(xp.asarray([[x]])))[0, -1].astype(np.float64)
            x = _pick(scores, temperature, top_k, rng)
            out.append(x)
            if stop_id is not None and x == stop_id:
                break
        return out
    finally:
        model.set_state(saved_state)
        for layer, mode in zip(model.layers, saved_mode, strict=True):
            if mode is not None:
                layer.train_flg = mode


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
    # Subtract the max before dividing: no overflow even for a tiny temperature.
    p = np.exp((scores - top) / temperature)  # the top k hold the max too
    # Inverse-CDF sampling (what rng.choice(p=...) does, without its checks).
    cdf = np.cumsum(p)
    i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    if i == p.size:  # u * total rounded up to total: take the last possible id
        i = int(np.flatnonzero(p)[-1])
    return int(ids[i])
