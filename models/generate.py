"""Sampling text from any rnnlab language model."""

import numpy as np

from common.backend import to_cpu, xp


def generate(model, start_ids, length, temperature=1.0, top_k=None, stop_id=None, rng=None):
    """Feed ``start_ids`` to ``model`` and sample ``length`` further ids.

    At each step the last id goes through the model (batch 1, one time
    step) and the next id is drawn from ``softmax(scores / temperature)``,
    restricted to the ``top_k`` most likely ids when ``top_k`` is given.
    ``temperature=0`` picks the most likely id (greedy). Sampling stops early
    after ``stop_id`` has been produced.

    The model's carried training state and train/eval mode are saved before
    and restored after, so generating in the middle of training changes
    nothing about the training run.

    Args:
        start_ids: a non-empty sequence of ints (the prompt).
        length: how many ids to produce after the prompt.
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
    """One id drawn from the (tempered, top-k restricted) softmax of ``scores``."""
    if top_k is not None and top_k < scores.size:
        # Everything below the k-th largest score gets probability zero.
        kth = np.partition(scores, -top_k)[-top_k]
        scores = np.where(scores >= kth, scores, -np.inf)
    if temperature == 0:
        return int(np.argmax(scores))
    z = scores / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return int(rng.choice(p.size, p=p))
