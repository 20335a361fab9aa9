"""Softmax followed by the cross-entropy loss, fused.

For logits ``x`` (one row of ``V`` scores) and target ``t``::

    loss = log(sum(exp(x))) - x[t]          # = -log softmax(x)[t]
    dx   = softmax(x) - onehot(t)

Fusing the two keeps the backward pass to one line and avoids ever taking
``log`` of a probability that underflowed to zero.
"""

import numpy as np

from common.backend import xp
from common.functions import log_softmax, softmax
from layers._checks import check_ids, check_ndim


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
        if t.shape[0] != x.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but t has {t.shape[0]} targets")
        check_ids("t", t, x.shape[1])
        logp = log_softmax(x)
        self.cache = (x, t)
        return float(-logp[xp.arange(t.size), t].mean())

    def backward(self, dout=1):
        x, t = self.cache
        dx = softmax(x)
        dx[xp.arange(t.size), t] -= 1
        dx *= dout / t.size
        return dx


# Row sums of exp(x) below this are recomputed with the max shifted out;
# above it every term that matters is a normal float (see TimeSoftmaxWithLoss).
_TINY_SUM = 1e-30


class TimeSoftmaxWithLoss:
    """Mean cross-entropy over all ``N * T`` positions, with an ignore label.

    Positions whose target equals ``ignore_label`` add nothing to the loss
    or the gradient and are left out of the mean. If every target is
    ignored the loss is 0.

    This layer sits on the output of a language model, where the logits are
    the largest array of a training step, so it makes as few passes over
    them as it can:

    * ``exp(x)`` is taken without first subtracting the row maximum. That
      is exact whenever no term overflows and the row sum is not tiny; the
      few rows where either fails (a non-finite or tiny sum) are recomputed
      with the maximum shifted out, so any magnitude of logits is safe.
    * the loss needs only ``log(sum exp(x)) - x[t]``; the softmax itself is
      never divided out in forward.
    * ``backward`` scales ``exp(x)`` by ``1 / (n * sum)`` and subtracts at the
      targets, in place in the layer's buffer.

    The array returned by ``backward`` is that buffer: it is valid until the
    next ``forward`` (copy it to keep it), and ``backward`` may be called
    once per ``forward``.

    Shape:
        forward: xs ``(N, T, V)`` logits, ts int ``(N, T)`` -> scalar loss
        backward: dout (scalar, default 1) -> dxs ``(N, T, V)``
    """

    def __init__(self, ignore_label=-1):
        self.params, self.grads = [], []
        self.ignore_label = ignore_label
        self._exp = None  # (N*T, V) buffer reused between calls
        self.cache = None

    def forward(self, xs, ts):
        check_ndim("xs", xs, 3, "(N, T, V)")
        check_ndim("ts", ts, 2, "(N, T)")
        if not np.issubdtype(xs.dtype, np.floating):
            raise TypeError(f"xs must hold float logits, got dtype {xs.dtype}")
        N, T, V = xs.shape
        if ts.shape != (N, T):
            raise ValueError(f"ts must have shape {(N, T)} to match xs {xs.shape}, got {ts.shape}")
        check_ids("ts", ts, V, ignore_label=self.ignore_label)

        x = xs.reshape(N * T, V)
        t = ts.reshape(N * T)
        valid = t != self.ignore_label
        t_safe = xp.where(valid, t, 0)
        rows = xp.arange(N * T)
        x_t = x[rows, t_safe]

        if self._exp is None or self._exp.shape != x.shape or self._exp.dtype != x.dtype:
            self._exp = xp.empty_like(x)
        e = self._exp
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            xp.exp(x, out=e)
            s = e.sum(axis=1)
            log_z = xp.log(s)
        redo = ~(xp.isfinite(s) & (s > _TINY_SUM))
        if redo.any():
            log_z[redo] = self._stable_rows(x[redo], e, s, redo)

        n_valid = int(valid.sum())
        losses = xp.where(valid, log_z - x_t, 0)
        loss = float(losses.sum(dtype=xp.float64)) / max(n_valid, 1)
        self.cache = (s, t_safe, valid, n_valid, xs.shape)
        return loss

    def _stable_rows(self, x_rows, e, s, redo):
        """Recompute the selected rows with the row maximum subtracted."""
        m = x_rows.max(axis=1, keepdims=True)
        e_rows = xp.exp(x_rows - m)
        s_rows = e_rows.sum(axis=1)
        e[redo] = e_rows
        s[redo] = s_rows
        return m[:, 0] + xp.log(s_rows)

    def backward(self, dout=1):
        if self.cache is None:
            raise RuntimeError("backward() needs a forward() first (and runs once per forward)")
        s, t_safe, valid, n_valid, shape = self.cache
        self.cache = None
        dx = self._exp
        if n_valid == 0:
            dx[...] = 0
            return dx.reshape(shape)
        scale = (dout / n_valid) * valid / s  # zero on ignored rows
        dx *= scale.astype(dx.dtype, copy=False)[:, None]
        rows = xp.arange(dx.shape[0])
        dx[rows, t_safe] -= (dout / n_valid) * valid.astype(dx.dtype)
        return dx.reshape(shape)
