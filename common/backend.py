"""The array backend: NumPy by default, CuPy when ``RNNLAB_GPU=1``.

This is the one place in rnnlab that decides which array module is used.
Layers write ``from common.backend import xp`` and call ``xp.dot``,
``xp.tanh`` ... so the same code runs on either device; nothing else in the
library imports cupy, and the two are never mixed.

The choice is read once, when this module is first imported; it is the only
global configuration rnnlab reads at import time.
"""

import os

import numpy

from common import config as _config  # the book's switch: config.GPU = True before imports

_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_ENV_VALUE = os.environ.get("RNNLAB_GPU", "")
_ENV_WORD = _ENV_VALUE.strip().lower()
# A misspelt switch ("2", "gpu", "ture") would otherwise mean NumPy without a word.
if _ENV_WORD not in _ON + _OFF:
    raise ValueError(f"RNNLAB_GPU={_ENV_VALUE!r} is neither on nor off: set it to 1 (CuPy) "
                     "or 0 (NumPy, the default), or unset it")
_ENV_GPU = _ENV_WORD in _ON
GPU = _ENV_GPU or bool(_config.GPU)

if GPU:
    _ASKED = f"RNNLAB_GPU={_ENV_VALUE.strip()}" if _ENV_GPU else "common.config.GPU = True"
    try:
        import cupy as xp  # noqa: F401  (re-exported)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError(
            f"{_ASKED} asks for the CuPy backend, but cupy is not installed. "
            "Install it with `pip install 'rnnlab[gpu]'` (or the cupy wheel matching "
            f"your CUDA version), or drop {_ASKED} to run on NumPy."
        ) from exc
else:
    xp = numpy

_config.GPU = GPU  # from now on config.GPU says what was chosen (and refuses a change)

#: The training dtype. Gradient checks pass float64 arrays explicitly.
FLOAT = xp.float32


def to_cpu(x):
    """Return ``x`` as a NumPy array (a no-op on the NumPy backend)."""
    if isinstance(x, numpy.ndarray):
        return x
    if hasattr(x, "get"):  # a cupy array
        return x.get()
    return numpy.asarray(x)


def to_gpu(x):
    """Return ``x`` as an array of the active backend (CuPy when GPU is on)."""
    if not GPU:
        return numpy.asarray(x)
    return xp.asarray(x)  # pragma: no cover - depends on the machine
