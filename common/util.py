"""Training helpers: gradient clipping (by global norm, by value) and
perplexity evaluation."""

import math
import numbers

import numpy as np

from common.backend import xp
from common.parallel import managed


def clip_grads(grads, max_norm):
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``.

    The norm is taken over all arrays together, as if they were one vector,
    so clipping keeps the direction of the full gradient. Returns the norm
    before clipping (``inf`` or ``nan`` if a gradient is not finite; the
    grads are then left as they are).
    """
    total = 0.0
    for g in grads:
        flat = g.reshape(-1)
        total += float(flat @ flat)  # one BLAS dot, no temporary array
    norm = math.sqrt(total)
    if math.isfinite(norm) and norm > max_norm:
        rate = max_norm / (norm + 1e-6)
        for g in grads:
            g *= g.dtype.type(rate)
    return norm


def eval_perplexity(model, corpus, batch_size=10, time_size=35):
    """Perplexity ``exp(mean loss)`` of ``model`` on every token of ``corpus``.

    The model's state is reset first and dropout is off while evaluating;
    afterwards the model's train/eval mode and its carried recurrent state
    are what they were, so training can go on where it stopped. The ``L =
    len(corpus) - 1`` prediction targets are cut into ``batch_size`` lanes
    of ``ceil(L / batch_size)`` positions; the tail of the last lanes is
    padded with the loss layer's ignore label, so every target is counted
    exactly once and padding counts for nothing.

    Args:
        corpus: 1-D int array of ids.
    Returns:
        the perplexity (a float).
    """
    for name, value in (("batch_size", batch_size), ("time_size", time_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"eval_perplexity: {name} must be a positive integer, got "
                             f"{value!r}")
    corpus = np.asarray(corpus)
    if corpus.ndim != 1 or corpus.size < 2:
        raise ValueError("eval_perplexity needs a 1-D corpus of at least 2 ids")
    L = corpus.size - 1
    N = min(batch_size, L)
    lane = -(-L // N)  # ceil
    ignore = model.loss_layer.ignore_label
    xs = np.zeros(N * lane, dtype=corpus.dtype)
    ts = np.full(N * lane, ignore, dtype=corpus.dtype)
    xs[:L], ts[:L] = corpus[:-1], corpus[1:]
    xs, ts = xs.reshape(N, lane), ts.reshape(N, lane)

    modes = [getattr(layer, "train_flg", None) for layer in model.layers]
    carried = model.get_state() if hasattr(model, "get_state") else None
    model.eval()
    model.reset_state()
    total = 0.0
    try:
        with managed():
            for start in range(0, lane, time_size):
                batch_x = xp.asarray(xs[:, start:start + time_size])
                batch_t = xp.asarray(ts[:, start:start + time_size])
                n = int((batch_t != ignore).sum())
                if n:
                    total += model.forward(batch_x, batch_t) * n
    finally:
        for layer, mode in zip(model.layers, modes, strict=True):
            if mode is not None:
                layer.train_flg = mode
        if carried is not None:
            model.set_state(carried)
    return math.exp(total / L)


def clip_grads_value(grads, max_value):
    """Clip every gradient element to ``[-max_value, max_value]``, in place.

    Elementwise clipping, as Karpathy's min-char-rnn does (``np.clip(d, -5,
    5)``); unlike :func:`clip_grads` it changes the gradient's direction.
    Can be combined with the global-norm clip (the norm first).
    """
    if not (isinstance(max_value, (int, float)) and math.isfinite(max_value) and max_value > 0):
        raise ValueError(f"max_value must be a number > 0, got {max_value!r}")
    for g in grads:
        xp.clip(g, -max_value, max_value, out=g)
