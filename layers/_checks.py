"""Input validation shared by the layers: one clear error instead of a
traceback from deep inside NumPy; the recurrent layers' initial state; and
the read-only views a layer returns of values its backward reads again."""

import math
import numbers

import numpy as np

from common.backend import xp
from common.util import id_outside


def check_ndim(name, x, ndim, shape_doc):
    if not hasattr(x, "ndim"):
        raise TypeError(f"{name} must be an array of shape {shape_doc}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_doc} ({ndim} dims), got shape {x.shape}")


def check_float(name, x, dtype, of="the layer's weights are"):
    """The input must already have the weights' dtype: a float64 input with
    float32 weights would silently run the whole layer in float64. A layer
    without weights names the array that sets its dtype in ``of``."""
    if x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but {of} {np.dtype(dtype)}; "
            f"convert it with .astype({np.dtype(dtype).name})"
        )


def check_floating(name, x):
    """A weight, or the input that sets a weightless layer's dtype, must be a
    float array: integer arithmetic would truncate every product silently."""
    if not hasattr(x, "dtype"):  # a list, say: it has no .astype to suggest
        raise TypeError(
            f"{name} must be a float array (float32 to train, float64 to check gradients), "
            f"got {type(x).__name__}; make it one with np.asarray({name}, dtype=np.float32)"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name} must be a float array (float32 to train, float64 to check gradients), "
            f"got {x.dtype}; convert it with .astype(np.float32)"
        )


def _rank(shape_doc):
    """The number of axes a shape like ``"(D, 4H)"`` or ``"(H,)"`` names."""
    return len(shape_doc.strip("()").rstrip(",").split(","))


def check_weights(*weights):
    """A layer's weights, each given as ``(name, array, shape_doc)``, the first
    one setting the dtype. Each must be a float array (integer weights would
    truncate every update, or fail inside NumPy with a message about casting)
    with the number of axes ``shape_doc`` shows, and all must share one dtype
    (a float64 bias would silently make a float32 layer's outputs float64)."""
    first_name, first, _ = weights[0]
    for name, w, shape_doc in weights:
        check_floating(name, w)
        check_ndim(name, w, _rank(shape_doc), shape_doc)
        check_float(name, w, first.dtype, of=f"{first_name} is")


def check_grad(name, g, shape, dtype, of="the layer's weights are"):
    """The gradient given to a one-step layer's ``backward`` must have the
    shape of what ``forward`` returned (NumPy would broadcast a wrong one,
    or fail with its own message) and the dtype that set the layer's (a
    float64 gradient would make the layer's float32 gradients float64)."""
    if not hasattr(g, "shape"):
        raise TypeError(f"{name} must be an array of shape {shape}, got {type(g).__name__}")
    if g.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (the forward's output), got {g.shape}")
    check_float(name, g, dtype, of)


def check_nonempty_batch(name, x, steps=True):
    """A Time layer's input ``(N, T, ...)`` needs at least one step of one
    sequence; an empty one would fail later in a reshape or a reduction, with
    a message that names neither the layer nor the input (or give a loss of
    0 or NaN). A one-step layer's ``(N, ...)`` (``steps=False``) needs a row."""
    if not steps:
        if x.shape[0] == 0:
            raise ValueError(f"{name} has shape {x.shape}: a batch needs at least one row "
                             f"(N >= 1)")
        return
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"{name} has shape {x.shape}: a batch needs at least one sequence (N >= 1) "
            f"and one time step (T >= 1)"
        )


def check_loss_dout(dout, dtype=None):
    """A loss is one number, so the gradient its ``backward`` is given (the
    factor its gradient is scaled by) is one finite real number too, and one
    the logits' ``dtype`` can hold (cast, 1e39 would be inf in float32)."""
    if isinstance(dout, np.ndarray) and dout.shape == ():
        dout = dout[()]
    if isinstance(dout, bool) or not isinstance(dout, numbers.Real):
        raise TypeError(f"dout must be one real number (the loss is a scalar; 1 by default), "
                        f"got {type(dout).__name__}")
    if not math.isfinite(dout):
        raise ValueError(f"dout must be finite, got {dout}")
    largest = None if dtype is None else float(np.finfo(dtype).max)
    # (float(): a NumPy float32 dout compared with float64's largest would cast
    # it down, with an overflow warning.)
    if largest is not None and abs(float(dout)) > largest:
        raise ValueError(f"dout {dout} is too large for the {np.dtype(dtype).name} logits (at "
                         f"most {largest:.4g}): scale it down, or use float64")


def require_forward(layer, saved, once=False):
    """``backward`` reads what ``forward`` saved (``saved``, None until then);
    without it the failure would be an AttributeError on None deep inside.
    ``once``: the layer's backward uses it up (writes over it), so runs once
    per forward."""
    if saved is None:
        twice = ", or twice after one" if once else ""
        also = ", and writes over it" if once else ""
        raise RuntimeError(
            f"{type(layer).__name__}.backward() called before forward(){twice}: call forward() "
            f"on the batch first (backward uses what forward saves{also})"
        )


def check_ids(name, ids, vocab_size, ignore_label=None):
    """Word ids must be integers in [0, vocab_size) (or equal ``ignore_label``)."""
    if not hasattr(ids, "dtype"):
        raise TypeError(f"{name} must be an integer array of word ids, got {type(ids).__name__}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name} must hold integer word ids, got dtype {ids.dtype}")
    bad = id_outside(ids, vocab_size, ignore_label)
    if bad is not None:
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


def state_width(layer, name):
    """``(H, dtype)`` of the carried state ``name`` (``'h'`` or ``'c'``) of a
    recurrent layer: rnnlab's recurrent layers hold ``Wh`` ``(H, gates * H)``
    as ``params[1]``; a layer of one's own that carries a state now tells by
    its shape; ``(None, None)`` when neither says."""
    from layers import TimeGRU, TimeLSTM, TimeRNN  # (here: they import this module)

    if isinstance(layer, (TimeRNN, TimeLSTM, TimeGRU)):
        Wh = layer.params[1]
        return Wh.shape[0], Wh.dtype
    value = getattr(layer, name, None)
    if value is not None and getattr(value, "ndim", 0) == 2:
        return value.shape[1], value.dtype
    return None, None


def initial_state(name, s, N, H, dtype, given=False):
    """The state a recurrent Time layer starts a forward from: ``s`` (carried
    from the last forward, or given to ``set_state``: ``given``), else zeros
    ``(N, H)``."""
    if s is None:
        return xp.zeros((N, H), dtype=dtype)
    if s.shape != (N, H):
        if given:  # the user's own array, not one the layer carried
            raise ValueError(
                f"the {name} state given to set_state() has shape {s.shape} but this batch "
                f"needs {(N, H)}: give set_state() one row per sequence of the batch, or call "
                "reset_state() to start from zeros"
            )
        raise ValueError(
            f"the carried {name} state has shape {s.shape} but this batch needs {(N, H)}; "
            "call reset_state() when the batch size changes"
        )
    return s


def read_only(a):
    """A read-only view of ``a`` (no copy), for an output that ``backward``
    reads again: changed in place, it would silently change the gradients;
    written to, the view raises instead. CuPy arrays have no such flag and
    come back as plain views."""
    view = a.view()
    if isinstance(view, np.ndarray):
        view.flags.writeable = False
    return view
