"""What rnnlab asks of the BLAS library NumPy uses, beyond its products:
its thread count, and its transposing copy.

NumPy has no call for either. ``threadpoolctl`` (the small library scikit-learn
uses for exactly this) finds the BLAS the process has loaded (OpenBLAS, MKL
or BLIS, on Linux, macOS and Windows) and calls its own get/set functions.
With no BLAS it knows, :func:`get_threads` returns ``None`` and
:func:`set_threads` ``False``: callers then leave BLAS alone.
"""

from __future__ import annotations

import ctypes
import functools
import platform

import numpy as np

_controller = None
_omatcopy = None  # dtype -> the BLAS's ?omatcopy, or None; filled on first use


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded (usually one)."""
    global _controller
    if _controller is None:
        import numpy  # noqa: F401  (loads BLAS, so that threadpoolctl finds it)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller.lib_controllers


def get_threads() -> int | None:
    """How many threads BLAS uses for one product, or None if unknown."""
    libraries = _blas_libraries()
    if not libraries:
        return None
    return max(lib.get_num_threads() for lib in libraries)


def set_threads(n: int) -> bool:
    """Make BLAS use ``n`` threads per product; return whether that worked.

    From any thread. OpenBLAS's count is the process's, and threadpoolctl
    (3.8, and maybe others) lets only the first thread that set it change
    it while that thread lives: from any other, setting silently did
    nothing, so a training in a second thread ran with BLAS's threads
    beside rnnlab's, and other bits. This call takes that control for
    itself and then leaves it to no thread, as threadpoolctl's own
    ``threadpool_limits`` does when it ends; callers that set the count
    from several threads order their calls (:class:`common.parallel.managed`
    holds a lock).
    """
    libraries = _blas_libraries()
    controller = _openblas_controller()
    if controller is not None:
        controller.clear_controlling_thread(force=True)
    try:
        for lib in libraries:
            lib.set_num_threads(int(n))
    finally:
        if controller is not None:
            controller.clear_controlling_thread()
    return bool(libraries)


@functools.cache
def _openblas_controller():
    """threadpoolctl's OpenBLAS controller class where it keeps a controlling
    thread, else None."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:
        return None
    return OpenBLASController if hasattr(OpenBLASController, "clear_controlling_thread") else None


def contiguous(a):
    """``a`` as a C-contiguous array, as ``np.ascontiguousarray(a)`` gives it.

    A recurrent layer's backward multiplies by ``Wh.T`` at every step, and
    a contiguous copy of it, made once, makes each of those products faster
    (N = 64, H = 128: 88 against 114 us). NumPy copies a transposed float32
    matrix element by element, though: 148 us for ``Wh`` of H = 128, 744 us
    for H = 256 here, more than a short loop saves. OpenBLAS has a
    transposing copy of its own, ``somatcopy`` (10 and 82 us), which this
    uses for a transposed float32 or float64 view whose rows (``a.T``'s) are
    contiguous. A copy moves values, so both ways give the same array.
    """
    if a.flags.c_contiguous or a.ndim != 2 or a.size == 0:
        return np.ascontiguousarray(a)
    copy = _omatcopy_of(a.dtype)
    item = a.dtype.itemsize
    # The source a.T must be rows of unit stride, each row a.shape[0] long and
    # the next one after it (no reversed or overlapping views), aligned.
    if (copy is None or not a.flags.aligned or a.strides[0] != item
            or a.strides[1] % item or a.strides[1] < a.shape[0] * item):
        return np.ascontiguousarray(a)
    rows, cols = a.shape  # of the copy; the source a.T is (cols, rows), its row stride lda
    lda = a.strides[1] // item
    out = np.empty((rows, cols), a.dtype)
    copy(101, 112, cols, rows, 1.0, a.ctypes.data, lda, out.ctypes.data, cols)
    return out


def _omatcopy_of(dtype):
    """OpenBLAS's ``cblas_?omatcopy`` for ``dtype`` (float32, float64), or None:
    another BLAS, another processor, a build without it, or one whose copy of
    a small test matrix is not NumPy's."""
    global _omatcopy
    if _omatcopy is None:
        _omatcopy = {}
        for name, letter in (("float32", "s"), ("float64", "d")):
            try:
                _omatcopy[np.dtype(name)] = _find_omatcopy(letter, np.dtype(name))
            except Exception:  # noqa: BLE001 - any trouble: NumPy's copy
                _omatcopy[np.dtype(name)] = None
    return _omatcopy.get(dtype)


def _find_omatcopy(letter, dtype):
    # Integer arguments are passed as 64-bit: right for the 64-bit-integer
    # builds NumPy ships, and on these processors' calling conventions a
    # 32-bit build reads the low half of each, which holds the same value.
    if platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"):
        return None
    libraries = [lib for lib in _blas_libraries() if lib.internal_api == "openblas"]
    if len(libraries) != 1:
        return None
    lib = libraries[0]
    prefix = getattr(lib, "_symbol_prefix", "")
    suffix = getattr(lib, "_symbol_suffix", "")
    function = getattr(lib.dynlib, f"{prefix}cblas_{letter}omatcopy{suffix}", None)
    if function is None:
        return None
    real = ctypes.c_float if letter == "s" else ctypes.c_double
    i64 = ctypes.c_int64
    function.argtypes = [ctypes.c_int, ctypes.c_int, i64, i64, real, ctypes.c_void_p, i64,
                         ctypes.c_void_p, i64]
    function.restype = None
    # Check it on a matrix with a row stride of its own (a column block of a wider one).
    wide = np.arange(7 * 12, dtype=dtype).reshape(7, 12)
    view = wide[:, 2:7].T  # (5, 7), rows of a.T contiguous, lda 12
    out = np.full(view.shape, -1, dtype)
    function(101, 112, 7, 5, 1.0, view.ctypes.data, 12, out.ctypes.data, 7)
    return function if np.array_equal(out, view) else None
