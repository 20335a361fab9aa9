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
  each, the cheapest of four ways to write it: the whole product divided by
  the thread count, a product by the thread's share of the columns of
  ``Wh`` (of a contiguous ``Wh.T`` backward), which reads only its share of
  the weights, and each of these transposed, with the batch as the short
  side (``Wh.T @ h.T``, ``Wh @ dA.T``). OpenBLAS packs an operand of 32 rows
  slowly, so at N = 32 the transposed product is the fastest (one core,
  H = 256: 92 against 111 us for half the gates).

Everything else (the rest of the gate arithmetic, the softmax, the update,
Python, the threads meeting after each step, the transposes a feature-major
loop would need) counts as free. A library that keeps packed weights
between steps (PyTorch's LSTM) is not bound by NumPy's products and can
come closer to, or below, this figure.

"Shared perfectly" is measured, not assumed: each piece is timed on this
core while a *twin* process on every other core runs the same piece in a
loop, as the threads of a perfect split would. On real cores that changes
nothing. The two virtual CPUs of some machines are the two hardware threads
of one physical core, which share its vector units: on this workplace's
Intel VM two processes multiplying 128 x 256 by 256 x 512 at once take 475
us a product each, 220 us alone, and an ``exp`` over 128 x 1024 takes 125
against 64 us, while plain Python loops run at full speed on both. Timed
alone there, a piece's halves would add up to a bound no code could reach.
(Processes, not threads: a thread would need the GIL between its calls
and slow the timed one for its own reasons.)
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.harness import median_time
from common.parallel import managed

# A piece of work is data, so that a twin process can build the same one:
#   ("product", a_shape, b_shape, b_is_a_transposed_view)   a @ b
#   ("exp", shape), ("tanh", shape)                          into a preallocated array


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _build(piece, seed: int = 0):
    """A function that does ``piece`` once, on arrays of its own."""
    rng = np.random.default_rng(seed)
    if piece[0] == "product":
        _, a_shape, b_shape, transposed = piece
        a = _f32(rng, *a_shape)
        b = (np.swapaxes(_f32(rng, *b_shape[:-2], b_shape[-1], b_shape[-2]), -1, -2)
             if transposed else _f32(rng, *b_shape))
        return lambda: a @ b
    kind, shape = piece
    x, out = _f32(rng, *shape), np.empty(shape, np.float32)
    function = {"exp": np.exp, "tanh": np.tanh}[kind]
    return lambda: function(x, out=out)


def _twin():
    """A twin process (``python -m benchmarks.bounds --twin``): reads one piece
    a line (JSON) and runs it in a loop until the next line, ``stop``."""
    with managed():  # BLAS single-threaded, as for the timed piece
        for line in sys.stdin:
            kind, *shapes = json.loads(line)
            piece = (kind, *(tuple(x) if isinstance(x, list) else x for x in shapes))
            work = _build(piece, seed=1)
            work()
            print("running", flush=True)
            while not select.select([sys.stdin], [], [], 0)[0]:
                work()
            sys.stdin.readline()  # "stop"
            print("stopped", flush=True)


class Twins:
    """``count`` twin processes (see the module docstring); a context manager."""

    def __init__(self, count: int):
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
        self.processes = [
            subprocess.Popen([sys.executable, "-m", "benchmarks.bounds", "--twin"], cwd=root,
                             env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)  # a Ctrl-C is the benchmark's to handle
            for _ in range(count)]

    def _say(self, line, answer):
        for p in self.processes:
            p.stdin.write(line + "\n")
            p.stdin.flush()
        for p in self.processes:
            if p.stdout.readline().strip() != answer:
                raise RuntimeError("a twin process of the bound stopped")

    @contextmanager
    def running(self, piece):
        self._say(json.dumps(piece), "running")
        try:
            yield
        finally:
            self._say("stop", "stopped")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.processes:
            p.stdin.close()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def piece_seconds(piece, repeats: int, twins: Twins | None = None) -> float:
    """Median seconds of ``piece`` on this core (BLAS single-threaded) while
    the ``twins``, if any, run it on the others."""
    work = _build(piece)
    with managed(), (twins.running(piece) if twins else _nothing()):
        return median_time(work, repeats)


@contextmanager
def _nothing():
    yield


def product_seconds(m: int, k: int, n: int, repeats: int, batch: int | None = None,
                    twins: Twins | None = None) -> float:
    """Seconds of one core for an ``(m, k) @ (k, n)`` product (``batch`` of them
    at once when given), the cheaper of it and its transpose, with the
    ``twins`` making it too."""
    lead = () if batch is None else (batch,)
    return min(piece_seconds(("product", (*lead, m, k), (*lead, k, n), False), repeats, twins),
               piece_seconds(("product", (*lead, n, k), (*lead, k, m), False), repeats, twins))


def recurrent_seconds(cell: str, N: int, T: int, D: int, H: int, threads: int,
                      repeats: int, twins: Twins | None = None) -> tuple[float, float]:
    """``(shared, serial)`` seconds of a Time LSTM or GRU layer's share of the bound.

    ``shared`` is one core's work that the threads may divide: the input
    projection, ``dx``, ``dWx`` and ``dWh`` products and the ``exp``/``tanh``
    of the ``T`` steps. ``serial`` is the ``2T`` recurrent products at one
    thread's share (see the module docstring).
    """
    G = (4 if cell == "lstm" else 3) * H
    share = max(1, H // threads) * (G // H)  # a thread's columns of Wh: its units' gates
    units = max(1, H // threads)  # a thread's columns of Wh.T

    def seconds(*piece):
        return piece_seconds(piece, repeats, twins)

    shared = sum(product_seconds(m, k, n, repeats, twins=twins) for m, k, n in (
        (N * T, D, G),  # x @ Wx
        (N * T, G, D),  # dA @ Wx.T
        (D, N * T, G),  # x.T @ dA
        (H, N * T, G)))  # h_prev.T @ dA
    shared += T * (seconds("exp", (N, G)) + seconds("tanh", (N, H)))
    forward_share = min(
        min(seconds("product", (N, H), (H, G), False),  # h @ Wh
            seconds("product", (G, H), (H, N), False)) / threads,  # Wh.T @ h.T
        seconds("product", (N, H), (H, share), False),
        seconds("product", (share, H), (H, N), False))
    backward_share = min(
        min(seconds("product", (N, G), (G, H), True),  # dA @ Wh.T, the view
            seconds("product", (N, G), (G, H), False),  # dA @ a contiguous Wh.T
            seconds("product", (H, G), (G, N), False)) / threads,  # Wh @ dA.T
        seconds("product", (N, G), (G, units), False),
        seconds("product", (units, G), (G, N), False))
    return shared, T * (forward_share + backward_share)


def bound_ms(layers: list[tuple], products: list[tuple], threads: int, repeats: int) -> float:
    """The two-core bound of one iteration in milliseconds.

    Args:
        layers: the recurrent layers, each ``(cell, N, T, D, H)``.
        products: the other products, each ``(m, k, n)`` or ``(m, k, n, batch)``.
        threads: the cores shared among (a twin process on each but this one).
    """
    shared = serial = 0.0
    with Twins(threads - 1) as twins:
        for cell, N, T, D, H in layers:
            s, r = recurrent_seconds(cell, N, T, D, H, threads, repeats, twins)
            shared, serial = shared + s, serial + r
        for shape in products:
            shared += product_seconds(*shape[:3], repeats, *shape[3:], twins=twins)
    return (shared / threads + serial) * 1e3


if __name__ == "__main__" and sys.argv[1:] == ["--twin"]:
    _twin()
