"""The thread count of the BLAS library NumPy uses.

NumPy has no call for it, so this module looks up OpenBLAS's own
``openblas_get_num_threads`` / ``openblas_set_num_threads`` in the library
the process has loaded (NumPy's wheels ship OpenBLAS, with a ``scipy_``
prefix and a ``64_`` suffix on the names). With another BLAS (MKL,
Accelerate) or off Linux the functions are not found and
:func:`get_threads` returns ``None``: callers then leave BLAS alone.
"""

import ctypes

_functions = {}


def _openblas_function(name):
    """``[scipy_]openblas_<name>[64_]`` from the OpenBLAS this process has loaded, or None."""
    if name in _functions:
        return _functions[name]
    found = None
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:
        libs = []
    for path in libs:
        try:
            lib = ctypes.CDLL(path)  # already loaded: this only returns its handle
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                found = getattr(lib, f"{prefix}{name}{suffix}", None)
                if found is not None:
                    break
            if found is not None:
                break
        if found is not None:
            break
    _functions[name] = found
    return found


def get_threads():
    """How many threads OpenBLAS uses for one product, or None if unknown."""
    import numpy  # noqa: F401  (loads OpenBLAS, so that /proc/self/maps lists it)

    fn = _openblas_function("get_num_threads")
    if fn is None:
        return None
    fn.restype = ctypes.c_int
    return int(fn())


def set_threads(n):
    """Make OpenBLAS use ``n`` threads per product; return whether that worked."""
    if get_threads() is None:
        return False
    fn = _openblas_function("set_num_threads")
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int]
    fn(int(n))
    return True
