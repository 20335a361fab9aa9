"""Input validation shared by the layers: one clear error instead of a
traceback from deep inside NumPy; and the recurrent layers' initial state."""

import numpy as np

from common.backend import xp


def check_ndim(name, x, ndim, shape_doc):
    if not hasattr(x, "ndim"):
        raise TypeError(f"{name} must be an array of shape {shape_doc}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_doc} ({ndim} dims), got shape {x.shape}")


def check_float(name, x, dtype):
    """The input must already have the weights' dtype: a float64 input with
    float32 weights would silently run the whole layer in float64."""
    if x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the layer's weights are {np.dtype(dtype)}; "
            f"convert it with .astype({np.dtype(dtype).name})"
        )


def check_ids(name, ids, vocab_size, ignore_label=None):
    """Word ids must be integers in [0, vocab_size) (or equal ``ignore_label``)."""
    if not hasattr(ids, "dtype"):
        raise TypeError(f"{name} must be an integer array of word ids, got {type(ids).__name__}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name} must hold integer word ids, got dtype {ids.dtype}")
    if ids.size == 0:
        return
    if 0 <= int(ids.min()) and int(ids.max()) < vocab_size:
        return  # the usual case, settled without the ignore_label mask
    valid = ids if ignore_label is None else ids[ids != ignore_label]
    if valid.size == 0:
        return
    lo, hi = int(valid.min()), int(valid.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        allowed = f"[0, {vocab_size})"
        if ignore_label is not None:
            allowed += f" or the ignore_label {ignore_label}"
        raise ValueError(f"{name} holds the id {bad}, outside the vocabulary range {allowed}")


def check_hidden_state(name, h, H, dtype, N=None):
    """A recurrent state (``set_state``, a cell's ``h_prev``) must be ``(N, H)``
    with the weights' dtype; any ``N`` unless given."""
    check_ndim(name, h, 2, "(N, H)")
    check_float(name, h, dtype)
    if h.shape[1] != H:
        raise ValueError(
            f"{name} has shape {h.shape}, {h.shape[1]} units, but the layer has H = {H}"
        )
    if N is not None and h.shape[0] != N:
        raise ValueError(f"{name} must have shape {(N, H)}, got {h.shape}")


def initial_state(name, s, N, H, dtype):
    """The state a recurrent Time layer starts a forward from: ``s`` (carried
    from the last forward, or given to ``set_state``), else zeros ``(N, H)``."""
    if s is None:
        return xp.zeros((N, H), dtype=dtype)
    if s.shape != (N, H):
        raise ValueError(
            f"the carried {name} state has shape {s.shape} but this batch needs {(N, H)}; "
            "call reset_state() when the batch size changes"
        )
    return s
