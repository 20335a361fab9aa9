"""Share the work of a training step among the CPU cores.

NumPy runs its elementwise functions (``exp``, ``multiply`` ...) on one
core, and BLAS runs each matrix product on all of them. That leaves cores
idle in two places: elementwise work (the softmax over ``N * T`` rows of
``V`` logits), and the chain of small products of a recurrent layer, which
BLAS cannot spread. Worse, OpenBLAS's worker threads keep spinning for a
while (about 0.1 s) after each product, so work handed to another thread in
that time has to fight them for the core, and on a machine another program
keeps busy they make small products many times slower.

So rnnlab takes the cores over itself, with a small pool of threads (NumPy
releases the GIL inside BLAS calls and inside its loops). This module is the
one seam between the layers and the cores: a layer says *what* may run on
blocks of rows or later, written over whole arrays; this module cuts the
arrays into blocks and hands them to the threads.

* :func:`managed` is a context in which the functions below spread large
  pieces of work over the pool, and BLAS runs single-threaded. Each of them
  enters it for its own call (so layers share their work wherever they are
  called, a hand-written training loop included); the trainer and
  ``eval_perplexity`` hold it for their whole run, so that BLAS is not
  switched at every call.
* :func:`for_row_blocks` calls a function on blocks of rows of its arrays
  (elementwise work, a row-wise softmax); :func:`steps_at_once` says how
  many steps of a time loop to prepare that way at a time.
* :func:`step_products` shares each step's product of a recurrent layer's
  time loop among the cores, by column blocks of the weights (what rnnlab's
  Time layers use: each core then reads only its share of the weights),
  with a helper process (:mod:`common.step_worker`, whose hand-off costs
  microseconds) or a pool thread.
* :func:`for_batch_blocks` runs a whole time loop on blocks of the batch,
  one per core (each core still reads all of the weights at every step,
  and the cores' many small calls contend for the GIL).
* :func:`matmul` computes a large product as blocks of its output.
* :func:`deferred` is a context in which :func:`later` queues work that is
  not needed right away (a weight gradient is only needed at the update)
  for an idle core, while this thread goes on down the critical path (the
  input gradients through the recurrent layers). On leaving the context
  every queued task is done, this thread helping. The rule for such work
  (part of the layer contract): a deferred task may only read arrays that
  nobody writes before the context ends, and only write arrays that nobody
  reads before then.

How work is cut into blocks depends only on the array shapes, the
thread count and :func:`one_core`, never on timing (nor on whether a
helper process runs), and blocks never share output elements, so
results are bit-for-bit deterministic for a given thread count. With one
thread (or on the GPU backend) products go to BLAS whole, a recurrent
layer's loop runs once on the whole batch, and nothing is deferred.

The thread count is the number of CPUs this process may use (at most 8),
or the ``RNNLAB_NUM_THREADS`` environment variable (a positive integer, at
most the CPUs this process may use: more is capped, with a warning),
read on first use: :func:`managed` reads it on entry, so a bad value stops
a run before its first step. A forked child starts without the parent's
pool, queued work and helper processes (``os.register_at_fork``).

Threads. The pool, the helper processes and BLAS's thread count are the
process's; :func:`one_core` holds for the thread that entered it, and the
queue of :func:`deferred` work belongs to one thread at a time. So two
hand-written training loops in two threads at once, each on its own
model, compute what they compute one after the other, bit for bit:
:func:`managed` counts the contexts of all threads together, and a
thread that finds the queue taken does its deferred work itself (see
:func:`deferred`). The trainer still trains one model at a time per
process, its helper process serving one training: it refuses a second
``fit`` in another thread while one runs (:mod:`common.data_parallel`).
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from common import blas, step_worker
from common.backend import xp

# Below this many elements the thread hand-off costs more than it saves.
MIN_PARALLEL_ELEMENTS = 1 << 20
# About 1 MiB of float32 per block: big enough that the per-block Python
# overhead is small, small enough to stay in a core's L2 cache.
BLOCK_ELEMENTS = 1 << 18
# A product of M x K by K x N is cut into at most one block per this many
# multiply-adds (M * N * K): a block then takes a millisecond or more, far
# more than handing it to a thread (~0.1 ms).
BLOCK_MULTIPLY_ADDS = 1 << 24
MAX_BLOCKS = 8
# A recurrent layer's batch is only cut into blocks of at least this many
# rows, whose product of one step has at least this many multiply-adds: the
# two threads' many small NumPy calls per step contend for the GIL, which
# only a long product per step repays (measured, LSTM forward + backward:
# H = 100, 10 rows a block, 18.5 vs 12 ms whole; H = 200, 15.5 ms either
# way; H = 650, 175 vs 200 ms).
MIN_BATCH_ROWS = 4
MIN_STEP_MULTIPLY_ADDS = 1 << 22

_pool = None
_pool_lock = threading.Lock()
_threads = None
# BLAS's thread count is the process's: managed() counts every thread's contexts
# together, under a lock, so that one thread leaving cannot give BLAS its threads
# back while another thread's context is open (its products would then be cut
# otherwise, and give other bits).
_managed_depth = 0
_managed_lock = threading.Lock()
_blas_threads_before = None  # BLAS's own thread count while rnnlab holds the cores


class _ThreadState(threading.local):
    """What each thread's contexts say about its own work."""

    one_core_depth = 0  # inside one_core(): nothing is shared, whoever computes
    managed_depth = 0  # how many of the managed() contexts open now are this thread's
    deferred_depth = 0  # how many deferred() contexts this thread is in
    owns_queue = False  # its later() work goes to _later (see deferred())
    postponed = None  # inside _postponing(): its later() work, done as its deferred() ends
    postpone_base = 0  # the deferred_depth at which _postponing() was entered


_here = _ThreadState()
# The queue of deferred work belongs to one thread at a time: the first to
# enter deferred() while no other thread holds it (see deferred()).
_queue_owner = None  # that thread's ident
_queue_claim = threading.Lock()
_later = deque()  # queued tasks of the owner's deferred() context
_helpers = []  # pool futures working through _later
_errors = []  # exceptions raised by queued tasks, re-raised on leaving deferred()


def num_threads() -> int:
    """How many threads rnnlab spreads its work over.

    Raises ValueError when ``RNNLAB_NUM_THREADS`` is set to anything but a
    positive integer.
    """
    global _threads
    if _threads is None:
        env = os.environ.get("RNNLAB_NUM_THREADS", "").strip()
        if env:
            try:
                threads = int(env)
            except ValueError:
                threads = 0
            if threads < 1:
                raise ValueError(
                    f"RNNLAB_NUM_THREADS must be a positive integer (the number of threads "
                    f"rnnlab may use), got {env!r}; unset it to use the available CPUs (at most 8)"
                )
            available = _available_cpus()
            if threads > available:
                # More would start a helper spinning on a core per block, fighting
                # for the cores there are (1000 never finished a step).
                warnings.warn(f"RNNLAB_NUM_THREADS={threads} is more than the {available} "
                              f"CPUs this process may use: using {available}", RuntimeWarning,
                              stacklevel=2)
                threads = available
            _threads = threads
        else:
            _threads = max(1, min(8, _available_cpus()))
    return _threads


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _get_pool():
    global _pool
    if _pool is None:
        with _pool_lock:  # two threads' first calls must not make two pools
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=num_threads(),
                                           thread_name_prefix="rnnlab")
    return _pool


def _submit(fn, *args):
    """``fn(*args)`` handed to the pool; a thread that cannot start for lack of
    memory (address space for its stack, ``ulimit -v``) is a ``MemoryError``,
    which the trainers report as being out of memory, not a RuntimeError."""
    try:
        return _get_pool().submit(fn, *args)
    except RuntimeError as error:
        if "can't start new thread" not in str(error):
            raise
        raise MemoryError(f"cannot start a thread ({error})") from error


# NumPy 2 keeps its errstate in a context variable, which a copy of the
# caller's context carries to the pool's threads; NumPy 1.x keeps it per
# thread, and a pool thread computing the caller's block warned of an
# overflow the caller had silenced.
_ERRSTATE_PER_THREAD = np.lib.NumpyVersion(np.__version__) < "2.0.0"


def _as_caller(fn):
    """``fn`` to be called on another thread as if on this one: in a copy of
    this thread's context, and so under its NumPy errstate."""
    run = contextvars.copy_context().run
    if not _ERRSTATE_PER_THREAD:
        return functools.partial(run, fn)
    err, call = np.geterr(), np.geterrcall()  # ('call' mode needs its function too)

    def as_caller(*args):
        with np.errstate(call=call, **err):
            return run(fn, *args)

    return as_caller


class managed:  # lower case: used as `with managed():`, like a function
    """A context in which rnnlab shares large work among the cores itself.

    On entry BLAS is made single-threaded: rnnlab cuts the products that
    are large enough to gain into blocks for its own threads, and BLAS's
    spinning workers would only slow those threads, and, on a machine that
    another program keeps busy, every small product. The outermost exit
    gives BLAS its thread count back. Does nothing with one thread, on the
    GPU backend, or when the BLAS thread count cannot be read and set.
    Nests, cheaply. BLAS's thread count belongs to the process: the
    contexts of all threads count together, and BLAS gets its threads
    back when the last of them ends.

    Every function of this module enters it for its own call, and
    :func:`deferred` for its extent, so a layer called anywhere shares its
    work; the trainer holds it for the whole of ``fit`` so that BLAS is not
    switched back and forth between the calls.
    """

    # A Ctrl-C can land between any two steps of these two methods: the
    # count BLAS had is recorded before BLAS is switched and forgotten only
    # once it is given back, and an __enter__ that does not return undoes
    # its count (its __exit__ never runs).

    def __enter__(self):
        global _managed_depth, _blas_threads_before
        with _managed_lock:
            _managed_depth += 1
            try:
                if _managed_depth == 1 and num_threads() > 1 and xp.__name__ == "numpy":
                    before = blas.get_threads()
                    if _blas_threads_before is None:  # (else BLAS was left at 1: keep it)
                        _blas_threads_before = before
                    if before is not None and not blas.set_threads(1):
                        _blas_threads_before = None
                _here.managed_depth += 1  # (this thread's own, for a child it forks)
            except BaseException:
                _managed_depth -= 1
                _give_blas_back()
                raise
        return self

    def __exit__(self, *exc_info):
        global _managed_depth
        with _managed_lock:
            _managed_depth -= 1
            _here.managed_depth -= 1
            _give_blas_back()
        return False


def _give_blas_back():
    """With no :class:`managed` context open, give BLAS the thread count it had."""
    global _blas_threads_before
    if _managed_depth == 0 and _blas_threads_before is not None:
        blas.set_threads(_blas_threads_before)
        _blas_threads_before = None


@contextmanager
def one_core():
    """A context in which the functions of this module run all their work on
    the calling thread, cut into the same blocks as ever, except the step
    products of a recurrent layer's time loop, which are cut as is fastest
    on one core (see ONE_CORE_NARROW_ROWS).

    For work that is itself one of several running at once on the cores,
    as each half of a mini-batch is under :mod:`common.data_parallel`: its
    results are then the same bits whether this process computes it or a
    helper process does (how work is cut depends on the shapes,
    :func:`num_threads` and this context alone). It holds for the thread
    that entered it: another thread's work is cut as ever.
    """
    here = _here
    here.one_core_depth += 1
    try:
        yield
    finally:
        here.one_core_depth -= 1


def _can_spread():
    """Whether rnnlab may share large work among the cores now."""
    return (_managed_depth > 0 and _blas_threads_before is not None
            and not _here.one_core_depth)


def _busy():
    """Whether deferred work occupies the pool."""
    if _later:
        return True
    for f in _helpers:
        if not f.done():
            return True
    return False


def _run_all(tasks, use_pool):
    """Call every function in ``tasks``; return when all are done.

    With the pool, thread ``j`` of ``k`` (this one is ``j = 0``) calls
    ``tasks[j::k]``: a fixed share rather than taking tasks as they come,
    because waking a pool thread takes ~0.1-0.3 ms, in which this thread
    would otherwise take the whole queue of a short job.
    """
    k = min(num_threads(), len(tasks))
    if not use_pool or k == 1 or _here.one_core_depth:
        for task in tasks:
            task()
        return
    if _busy():
        _run_as_threads_free_up(tasks)
        return

    def share(j):
        for task in tasks[j::k]:
            task()

    # NumPy's errstate set around the call holds in the pool too.
    helpers = [_submit(_as_caller(share), j) for j in range(1, k)]
    try:
        share(0)
    finally:
        # Even if this thread failed, the others write into the outputs: wait for them.
        errors = [f.exception() for f in helpers]
    for error in errors:
        if error is not None:
            raise error


def _run_as_threads_free_up(tasks):
    """Call every function in ``tasks`` while deferred work holds the pool:
    this thread takes them one by one, and a pool thread that comes free
    takes them too. Who computes a block depends on timing; the blocks do
    not, so neither do the bits. (Computing the product whole instead, as
    once, made the bits depend on whether the deferred work had ended.)
    """
    n = len(tasks)
    progress = {"next": 0, "running": 0, "error": None}
    changed = threading.Condition()

    def take():
        while True:
            with changed:
                i = progress["next"]
                if i >= n:
                    return
                progress["next"] = i + 1
                progress["running"] += 1
            try:
                tasks[i]()
            except BaseException as error:  # raised again by the caller
                with changed:
                    progress["error"] = progress["error"] or error
                    progress["next"] = n  # nothing more to start
            finally:
                with changed:
                    progress["running"] -= 1
                    changed.notify_all()

    # Queued behind the deferred work; it finds nothing left when it comes late.
    _submit(_as_caller(take))
    try:
        take()
    finally:
        with changed:
            progress["next"] = n  # (after an interrupt here: start nothing more)
            # Blocks under way elsewhere write into the outputs: wait for them.
            changed.wait_for(lambda: progress["running"] == 0)
    if progress["error"] is not None:
        raise progress["error"]


def _row_bounds(n_rows, row_size):
    """Consecutive ``(start, stop)`` blocks of about BLOCK_ELEMENTS elements."""
    rows_per_block = max(1, BLOCK_ELEMENTS // max(row_size, 1))
    return [(s, min(s + rows_per_block, n_rows)) for s in range(0, n_rows, rows_per_block)]


def _even_bounds(length, n_blocks):
    """``(start, stop)`` of ``n_blocks`` blocks as equal as can be, covering ``length``."""
    return [(length * k // n_blocks, length * (k + 1) // n_blocks) for k in range(n_blocks)]


def _rows(a, axis, start, stop):
    """Rows ``start:stop`` of ``a`` along ``axis`` (a view)."""
    return a[(slice(None),) * axis + (slice(start, stop),)]


def for_row_blocks(work: Callable[..., object], *arrays, row_size: int | None = None) -> None:
    """Call ``work(*blocks)`` on consecutive blocks of rows of ``arrays``.

    ``work`` is written for whole arrays; each call gets the same rows
    ``start:stop`` (along the first axis) of every array, so it must treat
    the rows independently. Small problems are one call in this thread;
    large ones are cut into blocks of about BLOCK_ELEMENTS elements of the
    first array (``row_size`` elements per row unless given) and shared
    among the threads of a pool that lives as long as the process.
    """
    n_rows = arrays[0].shape[0]
    if row_size is None:
        row_size = arrays[0].size // max(n_rows, 1)
    tasks = [functools.partial(work, *[a[s:e] for a in arrays])
             for s, e in _row_bounds(n_rows, row_size)]
    with managed():
        _run_all(tasks, use_pool=n_rows * row_size >= MIN_PARALLEL_ELEMENTS)


def steps_at_once(n_steps: int, step_elements: int) -> int:
    """How many of a time loop's ``n_steps`` steps to prepare in one
    :func:`for_row_blocks` call (``step_elements`` values a step), just
    before the loop reads them.

    All of them when the cores would share the work (at least
    MIN_PARALLEL_ELEMENTS values, more than one thread, outside
    :func:`one_core`, the pool idle). Otherwise this thread does it all
    anyway, and a block of about BLOCK_ELEMENTS values is better: it is
    still in the core's cache when the loop reads it, where the arrays of
    a whole long sequence are not (LSTM backward, 29 steps of 64 x 1024
    gates, one core: 28-29 against 30-31 ms all at once).
    """
    if (n_steps * step_elements >= MIN_PARALLEL_ELEMENTS and num_threads() > 1
            and not _here.one_core_depth and not _busy()):
        return n_steps
    return max(1, min(n_steps, BLOCK_ELEMENTS // max(step_elements, 1)))


def for_batch_blocks(work: Callable[..., object], arrays, batch_axes,
                     row_multiply_adds: int) -> None:
    """Call ``work(*blocks)`` on blocks of a batch of independent rows.

    ``arrays[k]`` holds the batch along axis ``batch_axes[k]`` (1 for a
    time-major ``(T, N, ...)`` array, 0 for a state ``(N, H)``); each call
    gets the same rows of every array. The rows of a recurrent layer's
    batch never interact, so each block can run the whole time loop on its
    own core: one hand-off per layer call, not per step.
    ``row_multiply_adds`` is what one row costs in one step's product
    (``H * 4H`` for an LSTM). Only when rnnlab can manage the cores (more
    than one thread, BLAS's threads under control) is the batch cut, into at
    most one block per thread, each of at least MIN_BATCH_ROWS rows and
    MIN_STEP_MULTIPLY_ADDS per step; otherwise ``work`` runs here, once, on
    the whole arrays. While deferred work occupies the pool, this thread
    runs the blocks one after the other (the same blocks: the cut never
    depends on timing).
    """
    with managed():
        n_rows = arrays[0].shape[batch_axes[0]]
        # Never on _busy(): the cut changes the bits. While deferred work
        # holds the pool, _run_all runs the same blocks on this thread.
        k = num_threads() if _can_spread() else 1
        k = min(k, n_rows // MIN_BATCH_ROWS, n_rows * row_multiply_adds // MIN_STEP_MULTIPLY_ADDS)
        if k <= 1:
            work(*arrays)
            return
        tasks = [functools.partial(work, *[_rows(a, axis, s, e)
                                           for a, axis in zip(arrays, batch_axes, strict=True)])
                 for s, e in _even_bounds(n_rows, k)]
        _run_all(tasks, use_pool=True)


# A recurrent layer's step product ``a @ W`` (``a`` (N, K), ``W`` (K, M)) of
# at least this many multiply-adds is computed by column blocks of ``W``, one
# per thread, from contiguous copies: each thread then reads only its share
# of the weights, which a cut of the batch does not save, and BLAS packs a
# contiguous block faster than a transposed view (backward's ``Wh.T``). One
# core, N = 32, h @ Wh at H = 128 / 256 / 512: 50 / 268 / 1083 us whole,
# 26 / 108 / 513 us for half the columns (16 rows: 29 / 185 / 732 us). But
# handing a block to another thread and waiting for it costs 50-100 us a step
# (two wake-ups of a sleeping thread, and the GIL), so a short product stays
# whole. One training iteration of the character-level LSTM (N = 32, T = 64,
# benchmarks.char_level), both ways alternating in one process: H = 128
# (2^21 multiply-adds a step) 20.8 ms whole against 29.2 ms split; H = 256
# (2^23) 50.5 against 50.0 ms; H = 512, 134 against 161 ms with the backward
# product whole.
MIN_SPLIT_STEP_MULTIPLY_ADDS = 1 << 22
# A helper process (common.step_worker) hands a block over in a few
# microseconds, so it already gains at H = 128, N = 32 (2^21 multiply-adds):
# TimeLSTM forward + backward 5.8 + 8.6 ms against 6.8 + 9.8 ms whole.
MIN_SPLIT_STEP_MULTIPLY_ADDS_PROCESS = 1 << 21
# From this size a thread's hand-off is a small part of its block, while a
# helper process's copies of the step's input and output are not (a batch of
# 5,000 questions at H = 256: 15 MB a step): threads take over. Below it,
# while deferred work holds the pool (the weight gradients of the layer
# above, during this layer's backward loop), a step's product stays on this
# thread: the other core is busy, and a pool thread woken for a block twice
# a step would only take turns with that work. Before and after, three
# alternations: PeekySeq2seq (N = 128, H = 128) 3.98-4.24 against 4.49-5.43 s
# an epoch (python -m benchmarks.seq2seq_speed --models PeekySeq2seq
# --iters 40); the medium configuration (N = 20, H = 650, 348-363 against
# 351-363 ms an iteration, scripts/time_medium_config.py) and the
# character-level LSTM unchanged.
MAX_SPLIT_STEP_MULTIPLY_ADDS_PROCESS = 1 << 26
MIN_SPLIT_COLUMNS = 16  # per block
# A product by a transposed view (backward's ``Wh.T``) packs its operand
# more slowly than a contiguous copy: at N = 32, H = 256 one core takes 310
# against 195 us. From this many multiply-adds, the copy made once per loop
# is worth it.
MIN_COPY_STEP_MULTIPLY_ADDS = 1 << 21
# Inside one_core() nobody shares a step's product: it is cut for speed on
# one core alone (_one_core_product). A product of a few rows is fastest by
# narrow column blocks of W, each of ONE_CORE_BLOCK_ELEMENTS (128 KiB of
# float32), copied contiguous once per loop: at 16 rows, H = 256, h @ Wh
# takes 86 us by blocks of 128 columns against 129 us by two blocks of 512
# and 181 us whole. One forward + backward of the character-level LSTM on 16
# rows (half a batch of 32, T = 64), ways alternating in one process: H = 256
# 28.5 ms against 33.5 ms as before, H = 128 9.95 against 13.0 ms (GRU 24.1
# against 26.7, 9.0 against 10.5 ms); blocks of 8K, 16K and 64K elements
# were slower than 32K (39.0, 30.9, 33.3 ms at H = 256), and at H = 512 too
# (97.8 ms against 124.1, 114.1 and 116.9 ms; a lone product there is faster
# by wider blocks, but in the loop a floor of 32, 64 or 128 columns did not
# help). At 64 rows (halves of the sequence-to-sequence batches) the block
# width made no difference beyond the noise, and the product is cut as
# without one_core(), except
# backward's transposed W: whole, from one contiguous copy, is faster there
# than by two blocks (dA @ Wh.T at 64 rows, H = 128: 87 against 94 us).
ONE_CORE_NARROW_ROWS = 32
ONE_CORE_BLOCK_ELEMENTS = 1 << 15


def _one_core_product(W, n_rows):
    """``product(a, out)`` writing ``a @ W`` into ``out`` on this thread, ``W``
    cut into column blocks as fits one core (see ONE_CORE_NARROW_ROWS)."""
    K, M = W.shape
    size = n_rows * K * M
    if n_rows <= ONE_CORE_NARROW_ROWS:
        # (At least MIN_SPLIT_COLUMNS wide: a far larger W than measured is
        # not cut into products of a column or two.)
        width = max(MIN_SPLIT_COLUMNS, ONE_CORE_BLOCK_ELEMENTS // K)
    elif _short(size):  # as without one_core()
        return _whole_product(W, size)
    elif not W.flags.c_contiguous:  # backward's transposed W: whole, from one copy
        width = M
    else:  # the blocks of step_products
        width = -(-M // max(1, min(num_threads(), M // MIN_SPLIT_COLUMNS)))
    if width >= M and W.flags.c_contiguous:
        return _whole_product(W, size)
    bounds = [(s, min(s + width, M)) for s in range(0, M, width)]
    blocks = [_contiguous(W[:, s:e]) for s, e in bounds]

    def product(a, out):
        for W_block, (s, e) in zip(blocks, bounds, strict=True):
            xp.matmul(a, W_block, out=out[:, s:e])
        return out

    return product


def _short(size):
    """Whether a step's product of ``size`` multiply-adds is too short to share.

    One threshold, fixed by the platform (whether helper processes can run
    on it at all): not by whether they run now. A helper that dies, rests
    or cannot start (a full or read-only /dev/shm) must not change how the
    product is cut, and so the bits; below MIN_SPLIT_STEP_MULTIPLY_ADDS
    without helper processes this thread computes the blocks itself.
    """
    return size < (MIN_SPLIT_STEP_MULTIPLY_ADDS_PROCESS if step_worker.AVAILABLE
                   else MIN_SPLIT_STEP_MULTIPLY_ADDS)


def _whole_product(W, size):
    """``product(a, out)``: ``a @ W`` in one call, by a contiguous copy of a
    transposed ``W`` when the loop is long enough to repay it."""
    if size >= MIN_COPY_STEP_MULTIPLY_ADDS and not W.flags.c_contiguous:
        W = _contiguous(W)
    return lambda a, out: xp.matmul(a, W, out=out)


def _contiguous(a):
    """A C-contiguous ``a`` (a transposed matrix by the BLAS's own copy, see
    :func:`common.blas.contiguous`)."""
    return blas.contiguous(a) if xp.__name__ == "numpy" else xp.ascontiguousarray(a)


class _Worker:
    """A pool thread computing its column block of each step's product.

    The hand-off is two locks, each held by default: ``go`` released by the
    caller when a step's input is ready, ``done`` by the worker when its
    block is written. Only the product runs on the worker: a thread that
    also made the step's many small NumPy calls would fight the caller for
    the GIL at every call (two threads of 8,000-element multiplies run 3x
    slower than one).

    ``pending`` is cleared by the worker, before it releases ``done``, not
    by the caller after its wait: Ctrl-C can interrupt the caller between
    any two of its steps (just after ``done.acquire()`` succeeded, say),
    never the worker, so ``stop`` waits for ``done`` only while a block is
    really still owed, and cannot wait for one it has had already.
    """

    def __init__(self, W_block, s, e, workers=None):
        self.W, self.s, self.e = W_block, s, e
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.a = self.out = None
        self.error = None
        self.pending = False  # a step handed over whose block the worker has not written
        self.future = None
        # Listed before its thread starts: a Ctrl-C landing just after the
        # start still leaves it to stop() (else the thread waited on go forever,
        # and the process's exit with it).
        if workers is not None:
            workers.append(self)
        self.future = _submit(self._serve)

    def _serve(self):
        while True:
            self.go.acquire()
            if self.a is None:
                return
            try:
                xp.matmul(self.a, self.W, out=self.out[:, self.s:self.e])
            except BaseException as error:  # noqa: B036 - re-raised by the caller
                self.error = error
            self.pending = False  # here, not in finish(): see the class's docstring
            self.done.release()

    def start(self, a, out):
        self.a, self.out = a, out
        self.pending = True
        self.go.release()

    def finish(self):
        """Wait for this step's block; return the error it raised, if any."""
        self.done.acquire()
        error, self.error = self.error, None
        return error

    def stop(self):
        if self.pending:  # the caller was interrupted (Ctrl-C) before the block was written
            self.finish()
        self.a = None
        self.go.release()
        if self.future is not None:
            self.future.result()


# Step products are shared with helper processes (common.step_worker) where
# that is safe (x86-64) and they start; otherwise with pool threads.
# (Where a step's product starts to be cut, _short, depends on the platform's
# step_worker.AVAILABLE, never on this switch, which a failing helper turns off.)
STEP_PROCESSES = step_worker.AVAILABLE
# importlib.reload runs this module again in the same namespace: close the
# helpers it would otherwise orphan (see common.data_parallel).
if globals().get("_processes") and globals().get("_processes_owner") == os.getpid():
    for _process in globals()["_processes"]:
        _process.close()
    del _process
_processes: list = []
_processes_owner = None  # the pid that started them (a forked child must not use them)
_processes_in_use = False
_processes_claim = threading.Lock()
# A helper process only gains while it has a core to itself. When another
# program keeps the cores busy, the helper is descheduled for milliseconds
# at a time and this thread waits for it (with one busy program beside it,
# the LSTM's loop at H = 256 took 38 + 48 ms against 24 + 40 ms with
# threads). After SLOW_HAND_OFFS waits of more than SLOW_HAND_OFF_SECONDS in
# one loop, the helpers rest for PROCESS_REST_SECONDS and threads do the
# work. The results do not change: the blocks are the same.
SLOW_HAND_OFF_SECONDS = 0.001
SLOW_HAND_OFFS = 3
PROCESS_REST_SECONDS = 2.0
_processes_resting_until = 0.0


def _step_processes(count, blocks, n_rows):
    """``count`` helper processes, each begun on its block of a loop, or []
    when they are not to be used now, or cannot start (then never again)."""
    global STEP_PROCESSES, _processes_owner, _processes_in_use
    # Claimed under a lock: loops in two threads at once (a user's threads, or
    # for_batch_blocks) must not both start or begin the same helpers.
    with _processes_claim:
        if (not STEP_PROCESSES or _processes_in_use
                or time.monotonic() < _processes_resting_until):
            return []
        _processes_in_use = True
    if _processes_owner != os.getpid():  # none yet, or inherited by a forked child
        _processes.clear()
        _processes_owner = os.getpid()
    try:
        if not step_worker.fits(blocks, n_rows):
            _processes_in_use = False
            return []
        while len(_processes) < count:
            _processes.append(step_worker.StepWorker())
            if len(_processes) == 1:
                # (A second Ctrl-C at exit must not leave a traceback or a helper.)
                atexit.register(step_worker.quiet_at_exit(_close_processes))
                step_worker.close_in_multiprocessing_child(_close_processes)
        for p, W_block in zip(_processes, blocks, strict=False):
            p.begin(W_block, n_rows)
    except OSError as error:
        _give_up_processes(error)
        return []
    except BaseException:  # Ctrl-C while one started: tried again later, from scratch
        _close_processes()
        _processes_in_use = False
        raise
    return _processes[:count]


def _give_up_processes(error):
    global STEP_PROCESSES, _processes_in_use
    warnings.warn(f"rnnlab: sharing the step products with a helper process failed "
                  f"({error}); using threads from now on (same results)", RuntimeWarning,
                  stacklevel=step_worker.outside_stacklevel())
    STEP_PROCESSES = False
    _processes_in_use = False
    _close_processes()


def _release_processes(processes, busy_machine=False):
    global _processes_in_use, _processes_resting_until
    for p in processes:
        p.end()
    _processes_in_use = False
    if busy_machine:
        _processes_resting_until = time.monotonic() + PROCESS_REST_SECONDS


def _close_processes():
    if _processes_owner == os.getpid():
        for p in _processes:
            p.close()
    _processes.clear()


def _after_fork_in_child():
    """Start a forked child afresh: without the parent's pool (its threads
    do not exist here, yet the executor would count them as idle and wait
    on them forever), queued work, locks possibly held at the fork, and
    helper processes, whose pipes it closes (a copy of the write end would
    keep a helper alive after the parent) without stopping them (the
    parent goes on using them). Of the :class:`managed` contexts open at
    the fork it keeps the forking thread's alone (the others' threads do
    not exist here, and would never leave theirs): with none of its own,
    BLAS gets its thread count back at once, as when the last context
    ends."""
    global _pool, _helpers, _processes_claim, _processes_in_use, _processes_owner
    global _pool_lock, _managed_lock, _queue_claim, _queue_owner
    global _managed_depth, _blas_threads_before
    _managed_depth = max(0, _here.managed_depth)
    if not _managed_depth and _blas_threads_before is not None:
        before, _blas_threads_before = _blas_threads_before, None
        blas.set_threads(before)
    _pool = None
    _later.clear()
    _helpers = []
    _errors.clear()
    _pool_lock, _managed_lock, _queue_claim = threading.Lock(), threading.Lock(), threading.Lock()
    if _queue_owner != threading.get_ident():  # (its thread does not exist here)
        _queue_owner = None
    _processes_claim = threading.Lock()
    _processes_in_use = False
    if _processes_owner is not None and _processes_owner != os.getpid():
        for p in _processes:
            p.forget()
        _processes.clear()
        _processes_owner = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def step_products(W, n_rows: int):
    """A context giving ``product(a, out)``, which writes ``a @ W`` into ``out``.

    For the products of a recurrent layer's time loop (``h @ Wh``, and
    ``dA @ Wh.T`` backward): the same ``W`` at every step, ``a`` of
    ``n_rows`` rows. A short product is plain ``xp.matmul(a, W, out=out)``
    (``W`` copied contiguous when that is faster). A long one is cut into
    column blocks of ``W``, one per thread, copied contiguous once on entry;
    this thread computes the first block of every step and helpers the
    others: helper processes (common.step_worker) while the pool has no
    deferred work to do (a helper process spins, and would take a core from
    that work); while it has, this thread computes every block of a product
    below MAX_SPLIT_STEP_MULTIPLY_ADDS_PROCESS, and pool threads help with
    a larger one (deferred work leaves them a pool thread: at most
    ``num_threads() - 1`` drain the queue). The blocks depend on the
    shapes and the thread count alone; when rnnlab cannot manage the cores
    this thread computes every block itself, with the same results. Inside
    :func:`one_core` this thread computes the product by the blocks that
    are fastest on one core (ONE_CORE_NARROW_ROWS).
    """
    with managed():
        K, M = W.shape
        size = n_rows * K * M
        if _here.one_core_depth:
            yield _one_core_product(W, n_rows)
            return
        if _short(size):
            yield _whole_product(W, size)
            return
        k = max(1, min(num_threads(), M // MIN_SPLIT_COLUMNS))
        bounds = _even_bounds(M, k)
        blocks = [_contiguous(W[:, s:e]) for s, e in bounds]
        (s0, e0), W0 = bounds[0], blocks[0]
        helpers = {"processes": [], "threads": [], "slow": 0,
                   "try_processes": size < MAX_SPLIT_STEP_MULTIPLY_ADDS_PROCESS}

        def here(a, out):
            for W_block, (s, e) in zip(blocks, bounds, strict=True):
                xp.matmul(a, W_block, out=out[:, s:e])
            return out

        def by_processes(a, out):
            processes = helpers["processes"]
            try:
                for p in processes:
                    p.post(a)
                xp.matmul(a, W0, out=out[:, s0:e0])
                waited = time.perf_counter()
                for p, (s, e) in zip(processes, bounds[1:], strict=True):
                    out[:, s:e] = p.wait()
                waited = time.perf_counter() - waited
            except OSError as error:  # a helper died: this thread does its blocks
                helpers["processes"] = []
                _give_up_processes(error)
                return here(a, out)
            if waited > SLOW_HAND_OFF_SECONDS and all(p.warm for p in processes):
                helpers["slow"] += 1
                if helpers["slow"] >= SLOW_HAND_OFFS:  # the machine is busy: back to threads
                    _release_processes(helpers["processes"], busy_machine=True)
                    helpers["processes"] = []
            return out

        def by_threads(a, out):
            workers = helpers["threads"]
            for w in workers:
                w.start(a, out)
            try:
                xp.matmul(a, W0, out=out[:, s0:e0])
            finally:
                # They write into out: wait for them even if this block failed.
                errors = [w.finish() for w in workers]
            for error in errors:
                if error is not None:
                    raise error
            return out

        def product(a, out):
            if helpers["processes"]:
                return by_processes(a, out)
            if size < MAX_SPLIT_STEP_MULTIPLY_ADDS_PROCESS and _busy():
                return here(a, out)  # the other cores are doing deferred work
            if helpers["try_processes"]:  # (no thread has been started in this loop yet)
                helpers["processes"] = _step_processes(k - 1, blocks[1:], n_rows)
                if helpers["processes"]:
                    return by_processes(a, out)
                helpers["try_processes"] = False  # not in this loop
            if size < MIN_SPLIT_STEP_MULTIPLY_ADDS:  # only worth a helper process
                return here(a, out)
            if not helpers["threads"]:
                for W_block, (s, e) in zip(blocks[1:], bounds[1:], strict=True):
                    _Worker(W_block, s, e, helpers["threads"])
            return by_threads(a, out)

        if k == 1 or not _can_spread():
            yield here
            return
        try:
            yield product
        finally:
            if helpers["processes"]:
                _release_processes(helpers["processes"])
            _stop_workers(helpers["threads"])


def _stop_workers(workers):
    for w in workers:
        w.stop()
    workers.clear()


def _product_blocks(a, b, out, max_blocks):
    """The product ``out[...] = a @ b`` as a list of independent block tasks."""
    M, K = a.shape
    N = b.shape[1]
    n_blocks = int(max(1, min(max_blocks, M * N * K // BLOCK_MULTIPLY_ADDS)))
    # Cut the longer side of the output, so that each block is a well-shaped product.
    length = max(M, N)
    n_blocks = min(n_blocks, max(1, length // 16))
    bounds = _even_bounds(length, n_blocks)
    if N >= M:
        return [
            (lambda s=s, e=e: xp.matmul(a, b[:, s:e], out=out[:, s:e])) for s, e in bounds
        ]
    return [(lambda s=s, e=e: xp.matmul(a[s:e], b, out=out[s:e])) for s, e in bounds]


def matmul(a, b, out=None):
    """``a @ b`` for 2-D ``a``, ``b``, large ones computed as blocks on all cores.

    Returns ``out`` (a new array when ``None``). Whether a product is cut,
    and how, depends on the shapes and the thread count alone (whole and
    blocks differ in their last bits); while deferred work occupies the
    pool, this thread computes the blocks itself.
    """
    with managed():
        # The size first: most products of a step are small, and it is the cheapest test.
        # Never on _busy() (timing): that made the same run give other bits.
        if _multiply_adds(a, b) < 2 * BLOCK_MULTIPLY_ADDS or not _can_spread():
            return xp.matmul(a, b, out=out)
        if out is None:
            out = xp.empty((a.shape[0], b.shape[1]), dtype=xp.result_type(a, b))
        # One block per thread: each block packs its own copy of the shared
        # operand, so more blocks cost more than they balance.
        _run_all(_product_blocks(a, b, out, num_threads()), use_pool=True)
        return out


@contextmanager
def deferred():
    """A context in which :func:`later` queues work instead of doing it.

    Queued tasks run on idle pool threads while the body goes on; leaving
    the context does what is left (this thread helping) and waits for all,
    then re-raises the first exception a task raised. The cores are
    :func:`managed` for the whole extent.

    Threads. The queue belongs to one thread at a time: the first to enter
    the context while no other thread holds the queue, until its outermost
    context ends. A second thread that enters it meanwhile (another
    hand-written training loop, whose model's ``backward`` enters it) does
    its :func:`later` work at once, itself, cut into the same blocks as
    queued work: its results are the same bits as when the loops run one
    after the other, and neither thread's leaving waits for, runs or drops
    the other's work. (Their queued tasks used to mix: a thread went on to
    its update with gradients still queued, or dropped the other's.)
    """
    here = _here
    with managed():
        if here.deferred_depth == 0 and _claim_queue():
            try:
                _forget_interrupted()
            except BaseException:
                _release_queue()
                raise
        here.deferred_depth += 1
        try:
            yield
        finally:
            here.deferred_depth -= 1
            try:
                if here.postponed and here.deferred_depth == here.postpone_base:
                    _do_postponed()
            finally:
                if here.deferred_depth == 0 and here.owns_queue:
                    try:
                        _finish_later()
                    finally:
                        _release_queue()


def _claim_queue() -> bool:
    """Make this thread the owner of the queue of deferred work, if no
    thread is; whether it is now."""
    global _queue_owner
    with _queue_claim:
        if _queue_owner is None:
            _queue_owner = threading.get_ident()
            _here.owns_queue = True
    return _here.owns_queue


def _release_queue():
    global _queue_owner
    _here.owns_queue = False
    with _queue_claim:
        _queue_owner = None


def _forget_interrupted():
    """Drop what an interrupted context (Ctrl-C while it finished) left queued.

    Its tasks belong to a step that never completed; left in the queue they
    could overwrite the next step's gradients.
    """
    global _helpers
    _later.clear()
    for f in _helpers:
        f.exception()  # wait for a task still running; its outcome is moot
    _helpers = []
    _errors.clear()


def _drain_later():
    while True:
        try:
            task = _later.popleft()
        except IndexError:
            return
        try:
            task()
        except BaseException as error:  # noqa: B036 - re-raised by _finish_later
            _errors.append(error)


def _finish_later():
    global _helpers
    _drain_later()
    for f in _helpers:
        f.result()
    _helpers = []
    if _errors:
        error = _errors[0]
        _errors.clear()
        raise error


def _defers(large):
    """Whether :func:`later` treats work as deferred now (this thread inside
    :func:`deferred`, with the cores managed, and the work either large or
    behind work already queued): cut as queued work is, and queued if this
    thread owns the queue."""
    return _postponing_now() or (_here.deferred_depth > 0 and _can_spread()
                                 and (large or _busy()))


def _postponing_now() -> bool:
    """Whether :func:`later` keeps its tasks for :func:`_postponing` now: in a
    :func:`deferred` context entered inside it."""
    return _here.postponed is not None and _here.deferred_depth > _here.postpone_base


def finish_deferred() -> None:
    """Finish now the work :func:`later` has queued in this thread's
    :func:`deferred` context (this thread helping), and wait for it.

    For a layer that reads the ``grads`` of a layer inside it (to copy or
    scale them): inside a model's ``backward`` an rnnlab layer may leave
    its weight gradients to an idle core, so they are complete only when
    the model's ``backward`` returns, or after this. (A layer that lists
    the inner layer's arrays as its own ``grads`` needs nothing: the
    gradients are written there.) Outside the context nothing is queued,
    and it returns at once.
    """
    if _here.postponed:
        _do_postponed()
    if _here.deferred_depth > 0 and _here.owns_queue:
        _finish_later()


@contextmanager
def _postponing():
    """Inside a :func:`deferred` context entered in this one, :func:`later`
    keeps every task, however small, until that context ends (or
    :func:`finish_deferred`), fills the ``out`` array it names with NaN
    meanwhile, and then runs the tasks last queued first, each on its
    ``out`` as it was when queued.

    The gradient checks use it to find a layer that reads gradients before
    they are complete (or a deferred task that reads another's output):
    the latest and the most unlike order any core could leave them in, and
    unmistakably unfinished. With one thread, or a small model, nothing is
    deferred in training, and such a layer would pass every check.
    """
    here = _here
    outer = here.postponed, here.postpone_base
    here.postponed, here.postpone_base = [], here.deferred_depth
    try:
        yield
    finally:
        try:
            if here.postponed:  # (left by a context that raised: put the arrays right)
                _do_postponed()
        finally:
            here.postponed, here.postpone_base = outer


def _do_postponed():
    """Run the kept tasks, last first, each on its ``out`` as it was when
    queued; then raise the first exception one of them raised."""
    tasks, _here.postponed = _here.postponed, []
    errors = []
    for task, out, kept in reversed(tasks):
        if out is not None:
            out[...] = kept
        try:
            task()
        except BaseException as error:  # noqa: B036 - raised below, after the others ran
            errors.append(error)
    if errors:
        raise errors[0]


def later(task: Callable[..., object], *args, large: bool = False, **kwargs) -> None:
    """Do ``task(*args, **kwargs)`` now, or, inside :func:`deferred` while
    rnnlab manages the cores, queue it for an idle core (in a thread that
    does not hold the queue, see :func:`deferred`: now).

    Small work (``large=False``) is only queued behind work already queued:
    on its own it would not repay the hand-off to another thread. A queued
    task must only read arrays nobody writes before the context ends, and
    only write arrays nobody reads before then; the array it writes is
    passed as ``out=`` (the gradient checks fill it with NaN until the
    task runs, so that a layer that reads it too early shows).
    """
    _queue([functools.partial(task, *args, **kwargs)], large, kwargs.get("out"))


def _queue(tasks, large, out=None):
    global _helpers
    if _postponing_now():
        kept = None
        if isinstance(out, np.ndarray) and np.issubdtype(out.dtype, np.inexact):
            kept = out.copy()  # (a task may read its own out: given back as it runs)
            out[...] = np.nan
        _here.postponed.extend((task, out if kept is not None else None, kept)
                               for task in tasks)
        return
    if not _defers(large) or not _here.owns_queue:
        for task in tasks:
            task()
        return
    # Each task runs as the caller's would (NumPy's errstate included).
    _later.extend(_as_caller(task) for task in tasks)
    _helpers = [f for f in _helpers if not f.done()]
    if len(_helpers) < num_threads() - 1:
        _helpers.append(_submit(_drain_later))


def matmul_later(a, b, out):
    """``out[...] = a @ b``, queued with :func:`later` (as blocks, if large)."""
    large = _multiply_adds(a, b) >= BLOCK_MULTIPLY_ADDS
    if not _defers(large):
        matmul(a, b, out=out)
        return
    if _postponing_now():  # (whole, as without deferring)
        _queue([functools.partial(matmul, a, b, out=out)], large, out)
        return
    # Several blocks per thread, so that whichever thread is free takes the next.
    _queue(_product_blocks(a, b, out, min(MAX_BLOCKS, 4 * num_threads())), large)


def _multiply_adds(a, b):
    return a.shape[0] * a.shape[1] * b.shape[1]


def thread_count_problem() -> str | None:
    """What is wrong with ``RNNLAB_NUM_THREADS``, or None when nothing is.

    The scripts ask this while checking their flags, so that a bad setting
    is a usage error before any work starts rather than a traceback from
    the first product that would share its work.
    """
    try:
        num_threads()
    except ValueError as exc:
        return str(exc)
    return None
