"""Softmax followed by the cross-entropy loss, fused.

For logits ``x`` (one row of ``V`` scores) and target ``t``::

    loss = log(sum(exp(x))) - x[t]          # = -log softmax(x)[t]
    dx   = softmax(x) - onehot(t)

Fusing the two keeps the backward pass to one line and avoids ever taking
``log`` of a probability that underflowed to zero.
"""

import numbers

import numpy as np

from common.backend import xp
from common.functions import log_softmax, softmax
from common.parallel import for_row_blocks
from layers._checks import (
    check_ids,
    check_loss_dout,
    check_ndim,
    check_nonempty_batch,
    require_forward,
)


def _check_logits(name, x):
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must hold float logits, got dtype {x.dtype}; convert it with "
                        f".astype(np.float32)")


class SoftmaxWithLoss:
    """Mean cross-entropy of a softmax over ``V`` classes, one step.

    Shape:
        forward: x ``(N, V)`` logits, t int ``(N,)`` -> scalar loss
        backward: dout (scalar, default 1) -> dx ``(N, V)``
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, x, t):
        check_ndim("x", x, 2, "(N, V)")
        check_ndim("t", t, 1, "(N,)")
        check_nonempty_batch("x", x, steps=False)  # the mean of no rows would be NaN
        _check_logits("x", x)
        if t.shape[0] != x.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but t has {t.shape[0]} targets")
        check_ids("t", t, x.shape[1])
        logp = log_softmax(x)
        self.cache = (x, t)
        return float(-logp[xp.arange(t.size), t].mean())

    def backward(self, dout=1):
        require_forward(self, self.cache)
        x, t = self.cache
        check_loss_dout(dout, x.dtype)
        dx = softmax(x)
        dx[xp.arange(t.size), t] -= 1
        dx *= dx.dtype.type(dout / t.size)  # the same bits for 0.3 and np.float64(0.3)
        return dx


# Row sums of exp(x) below this are recomputed with the max shifted out;
# above it every term that matters is a normal float (see TimeSoftmaxWithLoss).
_TINY_SUM = 1e-30
# Rows whose target logit is farther from 0 than this are recomputed too:
# exp(-x[t]) would come near either end of float32's normal numbers.
_MAX_SHIFT = 80.0


class TimeSoftmaxWithLoss:
    """Mean cross-entropy over all ``N * T`` positions, with an ignore label.

    Positions whose target equals ``ignore_label`` add nothing to the loss
    or the gradient and are left out of the mean. If every target is
    ignored the loss is 0. With ``w`` each position's share of the mean
    (``1/n`` over the ``n`` positions that count, else 0)::

        loss = sum over rows of  w * (log(sum(exp(x))) - x[t])
        dx   = w * (softmax(x) - onehot(t)) * dout

    This layer sits on the output of a language model, where the logits are
    the largest array of a training step, so it reads them as few times as
    it can. ``forward`` works through blocks of rows small enough to stay
    in the CPU cache (on several threads, :mod:`common.parallel`), and for
    each block takes ``exp(x)``, sums each row, and scales the row to
    ``w * softmax(x)`` while it is still in cache: the first half of the
    gradient. ``backward`` subtracts ``w`` at the targets and multiplies by
    ``dout`` when it is not 1.

    The loss is taken in shifted log-sum-exp form, so that a logit near 40
    does not cost its last digits (``log(sum(exp(x)))`` alone would round
    at the scale of 40 before ``x[t]`` is taken off). The shift is the
    target's own logit: ``log(sum(exp(x))) - x[t] = log(s * exp(-x[t]))``
    with ``s`` the block's row sum, a product of two numbers each exact to
    float32 round-off and a sum of at least 1, so the loss keeps the
    precision that subtracting the row maximum gives, without another pass
    over the logits to find it. The ``exp`` over the block is taken
    unshifted, which is exact whenever no term overflows and the row sum is
    not tiny; the rare rows where that fails, or where ``exp(-x[t])`` or
    the row's scale ``w / s`` would leave the normal float range, are
    recomputed with the row maximum ``m`` subtracted before the ``exp``, so
    logits of any magnitude are safe.

    The array ``backward`` returns is the layer's buffer: valid until the
    next ``forward`` (copy it to keep it).

    Shape:
        forward: xs ``(N, T, V)`` logits, ts int ``(N, T)`` -> scalar loss
        backward: dout (scalar, default 1) -> dxs ``(N, T, V)``
    """

    def __init__(self, ignore_label=-1):
        if ignore_label is not None and (isinstance(ignore_label, bool)
                                         or not isinstance(ignore_label, numbers.Integral)):
            # True would ignore class 1; "pad" or 1.5 would never match a target.
            raise TypeError(f"ignore_label must be an integer (-1 by default) or None (no "
                            f"label ignored), got {ignore_label!r}")
        self.params, self.grads = [], []
        self.ignore_label = ignore_label
        self._y = None  # (N*T, V) buffer of w * softmax(x), reused between calls
        self.cache = None  # (targets, w, xs.shape) between a forward and its backward

    def forward(self, xs, ts):
        check_ndim("xs", xs, 3, "(N, T, V)")
        check_ndim("ts", ts, 2, "(N, T)")
        check_nonempty_batch("xs", xs)  # else a loss of 0 for no data at all
        _check_logits("xs", xs)
        N, T, V = xs.shape
        if ts.shape != (N, T):
            raise ValueError(f"ts must have shape {(N, T)} to match xs {xs.shape}, got {ts.shape}")
        check_ids("ts", ts, V, ignore_label=self.ignore_label)

        x = xs.reshape(N * T, V)
        t = ts.reshape(N * T)
        valid = t != self.ignore_label
        n_valid = int(valid.sum())
        t_safe = xp.where(valid, t, 0)
        x_t = x[xp.arange(N * T), t_safe]
        # Each row's share of the mean: 1/n, or 0 where the target is ignored
        # (for float16 logits in float32: 1/n of more than 65504 rows is 0 there).
        w_dtype = np.promote_types(x.dtype, np.float32)
        w = valid.astype(w_dtype) / w_dtype.type(max(n_valid, 1))

        if self._y is None or self._y.shape != x.shape or self._y.dtype != x.dtype:
            self._y = xp.empty_like(x)
        y = self._y
        s = xp.empty(N * T, dtype=x.dtype)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            for_row_blocks(self._scaled_softmax, x, y, s, w)
            row_loss = xp.log(s * xp.exp(-x_t))  # log(sum(exp(x - x[t])))
            # The factor _scaled_softmax scaled the row by (the same division,
            # so the same bits): below the normal floats it has lost digits.
            scale_ok = (w / s >= xp.finfo(x.dtype).tiny) | (w == 0)
        # Recomputed with the maximum shifted out: an overflowed or tiny sum,
        # exp(-x[t]) near either end of the float range (|x[t]| above 80), or
        # a sum so near the top of the range (float32 logits above about 80)
        # that w / s is subnormal.
        redo = ~(xp.isfinite(row_loss) & (s > _TINY_SUM) & (xp.abs(x_t) < _MAX_SHIFT)
                 & scale_ok)
        if redo.any():
            row_loss[redo] = self._stable_rows(x[redo], x_t[redo], y, redo, w[redo])

        # log(sum) >= log(exp(0)) = 0; float32 round-off can put it a hair below.
        losses = xp.where(valid, xp.maximum(row_loss, 0), 0)
        self.cache = (t_safe, w, xs.shape)
        return float(losses.sum(dtype=xp.float64)) / max(n_valid, 1)

    @staticmethod
    def _scaled_softmax(x, y, s, w):
        """``s = sum(exp(x))`` and ``y = w * softmax(x)`` for rows of logits ``x``."""
        xp.exp(x, out=y)
        # einsum's row sum is about 3x faster than y.sum(axis=1) here,
        # with float32 round-off (it accumulates in SIMD lanes).
        xp.einsum("ij->i", y, out=s)
        y *= (w / s)[:, None]

    def _stable_rows(self, x_rows, x_t, y, redo, w):
        """Recompute the selected rows with their maxima ``m`` subtracted;
        return each row's loss ``(m - x[t]) + log(sum(exp(x - m)))``."""
        m = x_rows.max(axis=1)
        e_rows = xp.exp(x_rows - m[:, None])
        s_rows = e_rows.sum(axis=1)
        y[redo] = e_rows * (w / s_rows)[:, None]
        return (m - x_t) + xp.log(s_rows)

    def backward(self, dout=1):
        if self.cache is None:
            raise RuntimeError("backward() needs a forward() first, and runs once per forward "
                               "(generating, predicting or evaluating in between replaces the "
                               "values forward left for it: call forward() again)")
        check_loss_dout(dout, self._y.dtype)
        t, w, shape = self.cache
        self.cache = None
        dx = self._y  # w * softmax(x), from forward
        dx[xp.arange(t.size), t] -= w
        if dout != 1:
            dx *= dx.dtype.type(dout)
        return dx.reshape(shape)
