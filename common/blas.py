"""The thread count of the BLAS library NumPy uses.

NumPy has no call for it. ``threadpoolctl`` (the small library scikit-learn
uses for exactly this) finds the BLAS the process has loaded (OpenBLAS, MKL
or BLIS, on Linux, macOS and Windows) and calls its own get/set functions.
With no BLAS it knows, :func:`get_threads` returns ``None`` and
:func:`set_threads` ``False``: callers then leave BLAS alone.
"""

from __future__ import annotations

_controller = None


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
    """Make BLAS use ``n`` threads per product; return whether that worked."""
    libraries = _blas_libraries()
    for lib in libraries:
        lib.set_num_threads(int(n))
    return bool(libraries)
