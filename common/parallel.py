"""Run a NumPy function over blocks of rows on several threads.

NumPy's elementwise functions (``exp``, ``multiply`` ...) run on one core,
while the matrix products around them use every core through BLAS. For the
largest elementwise work of a training step (the softmax over ``N * T``
rows of ``V`` logits) this module splits the rows into blocks small enough
to stay in the CPU cache and hands them to a few threads; NumPy releases
the GIL inside its loops, so the blocks run in parallel.

Each row is computed by exactly the same operations whatever the thread
count or timing, so results are bit-for-bit deterministic.

The thread count is the number of CPUs this process may use (at most 8),
or the ``RNNLAB_NUM_THREADS`` environment variable, read on first use.
"""

import os
from concurrent.futures import ThreadPoolExecutor

# Below this many elements the thread hand-off costs more than it saves.
MIN_PARALLEL_ELEMENTS = 1 << 20
# About 1 MiB of float32 per block: big enough that the per-block Python
# overhead is small, small enough to stay in a core's L2 cache.
BLOCK_ELEMENTS = 1 << 18

_pool = None
_threads = None


def num_threads():
    """How many threads :func:`for_row_blocks` uses."""
    global _threads
    if _threads is None:
        env = os.environ.get("RNNLAB_NUM_THREADS")
        if env:
            _threads = max(1, int(env))
        else:
            try:
                available = len(os.sched_getaffinity(0))
            except AttributeError:  # not on Linux
                available = os.cpu_count() or 1
            _threads = max(1, min(8, available))
    return _threads


def for_row_blocks(n_rows, row_size, work):
    """Call ``work(start, stop)`` for consecutive blocks of ``n_rows`` rows.

    ``work`` must only touch rows ``start:stop`` of its arrays. Small
    problems run in the calling thread; large ones are shared among the
    threads of a pool that lives as long as the process.
    """
    global _pool
    rows_per_block = max(1, BLOCK_ELEMENTS // max(row_size, 1))
    bounds = [(s, min(s + rows_per_block, n_rows)) for s in range(0, n_rows, rows_per_block)]
    threads = num_threads()
    if threads == 1 or n_rows * row_size < MIN_PARALLEL_ELEMENTS or len(bounds) == 1:
        for start, stop in bounds:
            work(start, stop)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rnnlab")
    # One task per thread, each taking every threads-th block: few hand-offs.
    def run(k):
        for start, stop in bounds[k::threads]:
            work(start, stop)

    for future in [_pool.submit(run, k) for k in range(threads)]:
        future.result()
