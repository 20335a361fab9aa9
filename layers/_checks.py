"""Input validation shared by the layers: one clear error instead of a
traceback from deep inside NumPy."""

import numpy as np


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


def check_hidden_state(name, h, H, dtype):
    """A hidden state given to ``set_state`` must be ``(N, H)`` with the weights' dtype."""
    check_ndim(name, h, 2, "(N, H)")
    check_float(name, h, dtype)
    if h.shape[1] != H:
        raise ValueError(f"{name} has {h.shape[1]} units but the layer has H = {H}")
