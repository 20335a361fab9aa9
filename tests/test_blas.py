"""What rnnlab asks of NumPy's BLAS beyond products (common.blas): its
transposing copy, which must give exactly ``np.ascontiguousarray``."""

import platform

import numpy as np
import pytest

from common import blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("view", [
    lambda W: W.T,  # backward's Wh.T
    lambda W: W[:, 3:11].T,  # a column block of Wh.T ...
    lambda W: W[2:7].T,  # ... and a row block
    lambda W: W,  # contiguous already
    lambda W: W[:, ::2].T,  # no unit stride: NumPy's copy
    lambda W: W[::3],
    lambda W: W[:0].T,  # empty
    lambda W: W.reshape(4, 3, 12)[:, 1],  # not 2-D underneath
    lambda W: W[::-1].T,  # rows in reverse: a negative stride
    lambda W: W[:, ::-1].T,
    lambda W: np.lib.stride_tricks.as_strided(W, (12, 8), (W.itemsize, W.itemsize)),  # overlap
])
def test_contiguous_is_numpys_contiguous_copy(dtype, view):
    W = np.arange(12 * 12, dtype=dtype).reshape(12, 12) * dtype(1.5) - 7
    a = view(W)
    got = blas.contiguous(a)
    assert got.flags.c_contiguous and got.dtype == a.dtype
    np.testing.assert_array_equal(got, np.ascontiguousarray(a))
    assert got.shape == a.shape


def test_contiguous_copies_and_leaves_its_input_alone():
    W = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    before = W.copy()
    got = blas.contiguous(W.T)
    got[...] = 0
    np.testing.assert_array_equal(W, before)
    assert blas.contiguous(W) is W or np.shares_memory(blas.contiguous(W), W)


def test_openblas_transposing_copy_is_found_where_numpy_uses_openblas():
    """On the machines rnnlab is measured on (NumPy's OpenBLAS, x86-64 or
    arm64) the fast copy is the one used; elsewhere NumPy's copy serves."""
    from threadpoolctl import ThreadpoolController

    libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    openblas = [lib for lib in libraries if lib.internal_api == "openblas"]
    machine = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")
    found = blas._omatcopy_of(np.dtype(np.float32)) is not None
    if machine and len(openblas) == 1:
        prefix = getattr(openblas[0], "_symbol_prefix", "")
        suffix = getattr(openblas[0], "_symbol_suffix", "")
        has_symbol = hasattr(openblas[0].dynlib, f"{prefix}cblas_somatcopy{suffix}")
        assert found == has_symbol
    else:
        assert not found


def test_contiguous_of_an_unaligned_array_is_numpys_copy():
    raw = np.zeros(12 * 12 * 4 + 1, np.uint8)[1:]  # one byte off
    W = raw.view(np.float32).reshape(12, 12)
    W[...] = np.arange(144).reshape(12, 12)
    assert not W.flags.aligned
    np.testing.assert_array_equal(blas.contiguous(W.T), np.ascontiguousarray(W.T))
