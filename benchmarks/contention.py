"""Whether the two cores slow each other down when both multiply at once.

Why this exists. Every way of sharing a recurrent layer's time loop
between the cores (the step product by columns of ``Wh``, the batch by
rows, the weight gradients beside the loop) has both cores multiplying
at the same time. The two-core bound (:mod:`benchmarks.bounds`) times each
piece on one core alone and divides; that is only a bound if one core's
product runs as fast with the other core multiplying too. On a virtual
machine the two CPUs need not be independent, and how independent they are
can change while it runs: on the 2-core AMD EPYC of these rounds, a
32 x 256 by 256 x 512 product (a step's half at H = 256) took 109 us alone
and 147-149 us with a twin beside it (a one-off timer of the same two
processes), and 106-111 against 106-116 us twenty minutes later (this
module), the machine otherwise idle both times.
This is one source of the run-to-run noise of the two-core figures (the
benchmark's character-level rows moved by up to half from run to run).

Run as ``python -m benchmarks.contention``: for each product shape it
prints the time of one single-threaded process alone, and of each of two
such processes running at once (medians of ``--repeats`` calls).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from benchmarks.command_line import ends_on_interrupt, signals_held
from common.cli import outputs_may_close, results_status
from common.parallel import thread_count_problem

# (rows, K, M): a step's half product at the character level (H = 256 and
# 512, N = 32), at the seq2seq sizes (N = 128), and two shapes for scale.
SHAPES = [(32, 256, 512), (32, 512, 1024), (128, 256, 512), (128, 128, 512), (64, 64, 128),
          (256, 256, 256), (1024, 1024, 1024)]

_TIMER = """
import statistics, sys, time
import numpy as np
n, k, m, repeats = (int(v) for v in sys.argv[1:5])
rng = np.random.default_rng(0)
a = rng.standard_normal((n, k)).astype(np.float32)
w = rng.standard_normal((k, m)).astype(np.float32)
out = np.empty((n, m), np.float32)
calls = max(5, int(2e8 // (n * k * m)))
for _ in range(calls):
    np.matmul(a, w, out=out)
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(calls):
        np.matmul(a, w, out=out)
    times.append((time.perf_counter() - t0) / calls)
print(statistics.median(times) * 1e6)
"""


def _start(shape, repeats):
    """A timing process of ``shape``, single-threaded.

    It runs in a session of its own: Ctrl-C at a terminal and ``timeout``'s
    signal reach a whole process group, and would end the timer (mid-import,
    with a traceback of its own) before this process could; this process
    ends its timers itself (:func:`_timers`)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    args = [sys.executable, "-c", _TIMER, *(str(v) for v in shape), str(repeats)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parent, start_new_session=True)


@contextmanager
def _timers():
    """``with _timers() as start:`` ``start(shape, repeats)`` starts a timing
    process (:func:`_start`); every one still running when the block ends
    (Ctrl-C, SIGTERM, an error) is ended, so that none is left busy."""
    started = []

    def start(shape, repeats):
        with signals_held():  # so that a process started is always one recorded
            started.append(_start(shape, repeats))
        return started[-1]

    try:
        yield start
    finally:
        for process in started:
            process.kill()  # (nothing, for one that has ended and been read)
            process.wait()
            process.stdout.close()


def _us(process) -> float:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the timing process failed (exit {process.returncode})")
    return float(out)


def measure(shape, repeats: int) -> tuple[float, float, float]:
    """``(alone, first of two, second of two)``: us per product of ``shape``."""
    with _timers() as start:
        alone = _us(start(shape, repeats))
        pair = [start(shape, repeats), start(shape, repeats)]
        return alone, _us(pair[0]), _us(pair[1])


def main(argv: list[str] | None = None) -> list[tuple]:
    """Check the flags (a usage error exits with 2), then time and print;
    return the rows ``(shape, alone, first of two, second of two)``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contention",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per figure (median)")
    args = parser.parse_args(argv)
    if problem := thread_count_problem():  # (unused here, but refused as by every script)
        parser.error(problem)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"{os.cpu_count()} CPUs; one single-threaded process alone, then two at once")
    print(f"{'product':<24}{'weights':>10}{'alone us':>11}{'two at once us':>18}{'slower':>8}")
    rows = []
    for shape in SHAPES:
        alone, first, second = measure(shape, args.repeats)
        n, k, m = shape
        kib = k * m * 4 / 1024
        print(f"{f'{n} x {k} @ {k} x {m}':<24}{kib:>7.0f} KiB{alone:>11.1f}"
              f"{first:>9.1f} {second:>8.1f}{max(first, second) / alone:>7.2f}x", flush=True)
        rows.append((shape, alone, first, second))
    return rows


@ends_on_interrupt
def command(argv: list[str] | None = None) -> int:
    """:func:`main` as a command: its exit status, 0; 130 or 143 when
    interrupted (its timing processes ended, one line). A reader of stdout
    that stops reading (``| head``), or a full disk under it, does not end
    it in a traceback (``common.cli.outputs_may_close``)."""
    with outputs_may_close():
        main(argv)
        return results_status(0)


if __name__ == "__main__":
    sys.exit(command())
