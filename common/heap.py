"""Keep the memory one step frees for the next, instead of giving it back to the system.

Why this exists. Every step of training allocates its arrays afresh (the
gates, the cell states, their gradients) and frees them at the end, and
glibc's ``malloc`` hands large freed blocks back to the kernel: a block
above its *mmap threshold* (128 KiB at first, raised to the largest such
block freed, at most 32 MiB) is unmapped, and the top of the heap is cut
back whenever more than its *trim threshold* (twice the other) is free
there. The next step's arrays then land on fresh pages, and the kernel
zeroes each 4 KiB page at its first touch: a page fault, dearer still in a
virtual machine. Half a batch of ``Seq2seq`` (64 pairs of the addition
task, one core) took 36-63 such faults a step (190-220 before
``TimeLSTM`` wrote its gradients over its gates); with the memory kept,
none (``resource.getrusage`` around 300 halves, 2-core AMD EPYC VM: 5.31-5.42
ms a half against 5.42-6.09 ms).

:func:`keep_freed_memory` fixes both thresholds, once per process: blocks
of up to :data:`MMAP_THRESHOLD` come from the heap, and up to
:data:`TRIM_THRESHOLD` of free memory stays there for the next step. It
changes no result, only where the arrays live. The helper process of
:mod:`common.data_parallel`, which runs nothing but halves of batches,
calls it when it starts: a training iteration of ``Seq2seq`` took
6.57-6.71 ms against 6.79-6.86 ms without it (four alternations). The
trainer's own process keeps glibc's thresholds, which follow the largest
block freed: fixed ones made the word-level models' ``fit`` 8-10% slower
(``scripts/time_fit.py``: ``SimpleRnnlm`` 33.0-33.5 against 30.2-30.5 ms
an iteration, its 28 MiB logits mapped afresh; with a 32 MiB threshold as
fast, but the epoch's peak resident memory 147 against 121 MiB), and the
half this process computes gained 1-2%, within the noise. PyTorch in a
process so set ran its character-level LSTM at H = 256 in 32 against 24
ms. It does nothing where the C library is not glibc.
"""

import ctypes
import ctypes.util
import platform

# mallopt()'s parameter numbers (glibc's <malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# The largest arrays of a half of the attention model's batch (H = 256, 29
# steps: its gates) are under 8 MiB; larger blocks are mapped afresh as before.
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
