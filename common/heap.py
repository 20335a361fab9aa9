"""Keep the memory one training step frees for the next, instead of giving it back to the system.

Why this exists. Every step of training allocates its arrays afresh (the
gates, the cell states, their gradients) and frees them at the end, and
glibc's ``malloc`` hands large freed blocks back to the kernel: a block
above its *mmap threshold* (128 KiB at first, raised as such blocks are
freed, at most 32 MiB) is unmapped, and the top of the heap is cut back
whenever more than its *trim threshold* is free there. The next step's
arrays then land on fresh pages, and the kernel zeroes each 4 KiB page at
its first touch: a page fault, dearer still in a virtual machine. Half a
batch of ``Seq2seq`` (64 pairs of the addition task, one core) took 36-63
such faults a step (190-220 before ``TimeLSTM`` wrote its gradients over
its gates), the textbook-style reference of the benchmark some 1,300 a
batch of 128; with the memory kept, none (``resource.getrusage`` around
300 halves, 2-core AMD EPYC VM: 5.31-5.42 ms a half against 5.42-6.09 ms).

:func:`keep_freed_memory` raises both thresholds, once per process: blocks
of up to :data:`MMAP_THRESHOLD` come from the heap, and up to
:data:`TRIM_THRESHOLD` of free memory stays there for the next step. The
cost is that memory: a process keeps up to ``TRIM_THRESHOLD`` bytes it no
longer uses (what its largest step held, at most). It changes no result,
only where the arrays live. The trainers call it when training begins,
and the helper process of :mod:`common.data_parallel` when it starts; it
does nothing where the C library is not glibc.
"""

import ctypes
import ctypes.util
import platform

# mallopt()'s parameter numbers (glibc's <malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Larger blocks are still mapped afresh: the word-level model's 28 MiB logits,
# with a 32 MiB threshold, left its epoch's peak resident memory 26 MiB higher
# (147 against 121 MiB) and no faster. The trim threshold, four times that,
# holds the arrays of a step of the attention model (H = 256), freed at once.
MMAP_THRESHOLD = 16 * 2**20
TRIM_THRESHOLD = 64 * 2**20

_kept = None  # the outcome of the first call in this process


def keep_freed_memory() -> bool:
    """Make ``malloc`` keep freed memory for reuse (see the module docstring);
    whether it now does. Once per process: later calls return the first
    call's outcome."""
    global _kept
    if _kept is None:
        _kept = _set_thresholds()
    return _kept


def _set_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on a value it refuses.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
