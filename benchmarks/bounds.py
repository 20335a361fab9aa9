"""Two-core bounds: less time than any NumPy version of an iteration can take here.

A training iteration of a recurrent model must at least make its matrix
products and, at every step of an LSTM, one ``exp`` over the gates and one
``tanh`` of the cells. The bound of an iteration adds up exactly that work,
each piece timed on one core (BLAS single-threaded):

* the products made once (input projections, ``dx``, weight gradients,
  output layers, attention): each the cheaper of ``a @ b`` and the same
  product transposed (``b.T @ a.T``, from contiguous copies), shared
  perfectly among the threads;
* the ``exp`` and ``tanh`` of every step, shared perfectly as well;
* the ``2T`` recurrent products of each recurrent layer (``h @ Wh``,
  ``dA @ Wh.T``), which must follow one another: at one thread's share of
  each, the cheapest of six ways to write it: the whole product divided by
  the thread count, a product by the thread's share of the columns of
  ``Wh`` (of a contiguous ``Wh.T`` backward), which reads only its share of
  the weights, each of these transposed, with the batch as the short
  side (``Wh.T @ h.T``, ``Wh @ dA.T``), and the thread's share of the
  columns, or of the rows of the batch, as several products by narrow
  column blocks of the weights (the cheapest of four widths). OpenBLAS
  packs an operand of 32 rows slowly, so at N = 32 the transposed product
  beats the plain one (one core, H = 256: 92 against 111 us for half the
  gates); narrow blocks of a few rows are faster still (16 rows, all the
  gates of H = 256: 86 us by blocks of 128 columns).

Everything else (the rest of the gate arithmetic, the softmax, the update,
Python, the threads meeting after each step, the transposes a feature-major
loop would need) counts as free. A library that keeps packed weights
between steps (PyTorch's LSTM) is not bound by NumPy's products and can
come closer to, or below, this figure.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import median_time
from common.parallel import managed


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def product_seconds(m: int, k: int, n: int, repeats: int, batch: int | None = None) -> float:
    """Seconds of one core for an ``(m, k) @ (k, n)`` product (``batch`` of them
    at once when given), the cheaper of it and its transpose."""
    rng = np.random.default_rng(0)
    lead = () if batch is None else (batch,)
    a, b = _f32(rng, *lead, m, k), _f32(rng, *lead, k, n)
    aT = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    bT = np.ascontiguousarray(np.swapaxes(b, -1, -2))
    with managed():  # one core: BLAS single-threaded
        return min(median_time(lambda: a @ b, repeats), median_time(lambda: bT @ aT, repeats))


def narrow_blocks_seconds(a, W, repeats: int) -> float:
    """Seconds of one core for ``a @ W`` as products by column blocks of ``W``
    (contiguous copies, made beforehand), the cheapest of four block sizes."""
    K, M = W.shape
    out = np.empty((a.shape[0], M), np.float32)
    best = float("inf")
    for elements in (1 << 13, 1 << 14, 1 << 15, 1 << 16):
        width = max(1, min(M, elements // K))
        bounds_ = [(s, min(s + width, M)) for s in range(0, M, width)]
        blocks = [np.ascontiguousarray(W[:, s:e]) for s, e in bounds_]

        def by_blocks(blocks=blocks, bounds_=bounds_):
            for block, (s, e) in zip(blocks, bounds_, strict=True):
                np.matmul(a, block, out=out[:, s:e])

        with managed():
            best = min(best, median_time(by_blocks, repeats))
    return best


def recurrent_seconds(cell: str, N: int, T: int, D: int, H: int, threads: int,
                      repeats: int, zero_start: bool = False) -> tuple[float, float]:
    """``(shared, serial)`` seconds of a Time LSTM or GRU layer's share of the bound.

    ``shared`` is one core's work that the threads may divide: the input
    projection, ``dx``, ``dWx`` and ``dWh`` products and the ``exp``/``tanh``
    of the ``T`` steps. ``serial`` is the ``2T`` recurrent products at one
    thread's share (see the module docstring). A layer that starts from
    zeros and whose initial state's gradient nobody reads (``zero_start``,
    an encoder) needs neither the first step's product nor the last
    backward one, nor the first step's rows in ``dWh``: ``2(T - 1)``.
    """
    rng = np.random.default_rng(0)
    G = (4 if cell == "lstm" else 3) * H
    h, Wh, dA = _f32(rng, N, H), _f32(rng, H, G), _f32(rng, N, G)
    gates, cells, values = _f32(rng, N, G), _f32(rng, N, H), np.empty((N, G), np.float32)
    WhT, units = np.ascontiguousarray(Wh.T), max(1, H // threads)
    Wh_cols = np.ascontiguousarray(Wh.reshape(H, G // H, H)[:, :, :units]).reshape(H, -1)
    WhT_cols = np.ascontiguousarray(WhT[:, :units])
    Wh_cols_T, WhT_cols_T = np.ascontiguousarray(Wh_cols.T), np.ascontiguousarray(WhT_cols.T)
    hT, dAT = np.ascontiguousarray(h.T), np.ascontiguousarray(dA.T)
    rows = -(-N // threads)  # a thread's share of the batch
    shared = (product_seconds(N * T, D, G, repeats)  # x @ Wx
              + product_seconds(N * T, G, D, repeats)  # dA @ Wx.T
              + product_seconds(D, N * T, G, repeats)  # x.T @ dA
              + (product_seconds(H, N * (T - zero_start), G, repeats)  # h_prev.T @ dA
                 if T > zero_start else 0.0))
    with managed():
        shared += T * (median_time(lambda: np.exp(gates, out=values), repeats)
                       + median_time(lambda: np.tanh(cells, out=values[:, :H]), repeats))
        forward_share = min(
            min(median_time(lambda: h @ Wh, repeats),
                median_time(lambda: WhT @ hT, repeats)) / threads,
            median_time(lambda: h @ Wh_cols, repeats),
            median_time(lambda: Wh_cols_T @ hT, repeats),
            narrow_blocks_seconds(h, Wh_cols, repeats),
            narrow_blocks_seconds(h[:rows], Wh, repeats))
        backward_share = min(
            min(median_time(lambda: dA @ Wh.T, repeats),
                median_time(lambda: dA @ WhT, repeats),
                median_time(lambda: Wh @ dAT, repeats)) / threads,
            median_time(lambda: dA @ WhT_cols, repeats),
            median_time(lambda: WhT_cols_T @ dAT, repeats),
            narrow_blocks_seconds(dA, WhT_cols, repeats),
            narrow_blocks_seconds(dA[:rows], WhT, repeats))
    return shared, (T - zero_start) * (forward_share + backward_share)


def bound_ms(layers: list[tuple], products: list[tuple], threads: int, repeats: int) -> float:
    """The two-core bound of one iteration in milliseconds.

    Args:
        layers: the recurrent layers, each ``(cell, N, T, D, H)``, or
            ``(cell, N, T, D, H, zero_start)`` (see :func:`recurrent_seconds`).
        products: the other products, each ``(m, k, n)`` or ``(m, k, n, batch)``.
        threads: the cores shared among.
    """
    shared = serial = 0.0
    for cell, N, T, D, H, *zero_start in layers:
        s, r = recurrent_seconds(cell, N, T, D, H, threads, repeats, *zero_start)
        shared, serial = shared + s, serial + r
    for shape in products:
        shared += product_seconds(*shape[:3], repeats, *shape[3:])
    return (shared / threads + serial) * 1e3
