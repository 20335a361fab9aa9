"""Numerically stable elementwise and row-wise functions.

All functions work on arrays of any float dtype and keep that dtype; the
reductions run over the last axis, so an ``(N, T, V)`` array of logits is
treated as ``N * T`` rows of ``V`` scores.
"""

from common.backend import xp


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))`` without overflow.

    ``exp(-x)`` overflows for large negative ``x``; writing the function
    through ``tanh`` (``sigmoid(x) = (1 + tanh(x / 2)) / 2``) is exact and
    never overflows.
    """
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


def log_softmax(x):
    """``log(softmax(x))`` along the last axis, stable for any magnitude.

    Subtracting the row maximum first keeps every ``exp`` at most 1, so
    nothing overflows and the largest term never underflows.
    """
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(x):
    """``exp(x) / sum(exp(x))`` along the last axis, stable for any magnitude."""
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """Mean of ``-log y[..., t]`` over all positions.

    y: probabilities, shape ``(..., V)``; t: integer targets, shape ``(...)``.
    A tiny constant guards ``log(0)`` when a probability underflows.
    """
    y2 = y.reshape(-1, y.shape[-1])
    t1 = t.reshape(-1)
    picked = y2[xp.arange(t1.size), t1]
    return float(-xp.log(picked + 1e-12).mean())
