"""Numerically stable elementwise and row-wise functions.

All functions work on arrays of any float dtype and keep that dtype; the
reductions run over the last axis, so an ``(N, T, V)`` array of logits is
treated as ``N * T`` rows of ``V`` scores.
"""

import numpy as np

from common.backend import xp


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))``, for any magnitude.

    Returns a new array of ``x``'s float dtype (float64 for Python numbers
    and integer arrays); see :func:`sigmoid_`.
    """
    x = xp.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return sigmoid_(xp.array(x, dtype=dtype, copy=True))


def sigmoid_(x, slope=None):
    """``sigmoid(slope * x)`` written into the float array ``x``, which is returned.

    Four passes over ``x`` and no temporary: ``x = 1 / (1 + exp(-slope * x))``.
    For large negative ``slope * x`` the ``exp`` overflows to ``inf`` and
    ``1 / (1 + inf)`` gives 0 (the overflow is not reported), off from the
    exact value by less than the smallest normal float: that value is
    subnormal or below. ``slope`` (default 1) may be an array broadcasting against
    ``x``: ``tanh(a) = 2 * sigmoid(2a) - 1``, so one call with a slope of 2 on
    some columns gives an LSTM all four gates from one ``exp``.
    """
    if slope is None:
        xp.negative(x, out=x)
    else:
        xp.multiply(x, -slope, out=x)
    return sigmoid_of_negated_(x)


def sigmoid_of_negated_(x):
    """``sigmoid(-x) = 1 / (1 + exp(x))`` written into the float array ``x``,
    which is returned: :func:`sigmoid_` without its first pass, for a caller
    that has already folded the minus sign (and any slope, a power of two,
    so nothing rounds differently) into the weights that produced ``x``, as
    the LSTM's time loop does.
    """
    with np.errstate(over="ignore"):
        xp.exp(x, out=x)
    x += 1
    # divide, not reciprocal: the same correctly rounded 1 / x, and NumPy's
    # divide runs in SIMD lanes (4.2 against 7.2 us for 64 x 512 float32).
    xp.divide(1, x, out=x)
    return x


def log_softmax(x):
    """``log(softmax(x))`` along the last axis, stable for any magnitude.

    Subtracting the row maximum first keeps every ``exp`` at most 1, so
    nothing overflows and the largest term never underflows.
    """
    shifted = x - x.max(axis=-1, keepdims=True)
    e = xp.exp(shifted)
    # (Summed in float32 at least: float16's own sum passes its largest number,
    # 65504, in a row of that many classes.)
    total = e.sum(axis=-1, keepdims=True, dtype=np.promote_types(e.dtype, np.float32))
    return shifted - xp.log(total).astype(e.dtype, copy=False)


def softmax(x):
    """``exp(x) / sum(exp(x))`` along the last axis, stable for any magnitude."""
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    total = e.sum(axis=-1, keepdims=True, dtype=np.promote_types(e.dtype, np.float32))
    return (e / total).astype(e.dtype, copy=False)  # (as in log_softmax: float16's sum)


def cross_entropy_error(y, t):
    """Mean of ``-log y[..., t]`` over all positions.

    y: probabilities, shape ``(..., V)``; t: integer class ids in ``[0, V)``,
    shape ``(...)`` (the book's one row: y ``(V,)`` and an int). There is no
    ignore label here: every position counts. A tiny constant guards
    ``log(0)`` when a probability underflows.
    """
    y, t = xp.asarray(y), xp.asarray(t)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"t must hold integer class ids, got dtype {t.dtype}")
    if t.shape != y.shape[:-1]:
        raise ValueError(f"t has shape {t.shape} but y has {int(np.prod(y.shape[:-1]))} rows "
                         f"(shape {y.shape}): t needs shape {y.shape[:-1]}, one id per row")
    V = y.shape[-1]
    outside = (t < 0) | (t >= V)
    if outside.any():
        raise ValueError(f"t holds the id {int(t[outside].reshape(-1)[0])}, outside the class "
                         f"range [0, {V}) (cross_entropy_error has no ignore label)")
    y2 = y.reshape(-1, y.shape[-1])
    t1 = t.reshape(-1)
    picked = y2[xp.arange(t1.size), t1]
    # (In float32 at least: in float16, 1e-12 is 0, no guard against log(0).)
    picked = picked.astype(np.promote_types(picked.dtype, np.float32), copy=False)
    return float(-xp.log(picked + 1e-12).mean())
