"""Numerical gradient checking by central differences.

Point :func:`check_layer` (or :func:`numerical_gradient`) at any object that
follows the rnnlab layer contract and compare what its ``backward`` returns
with finite differences of a scalar function of its output. Use float64
parameters and inputs: in float32 the differences are too noisy to be exact
(both checks refuse float32 arrays with a TypeError).

Example::

    layer = TimeRNN(Wx, Wh, b)                 # float64 arrays
    errors = check_layer(layer, [xs])          # {'param0': 3e-10, ..., 'input0': 1e-9}
    assert max(errors.values()) < 1e-6
"""

import numpy as np

from common.parallel import _postponing, deferred
from common.util import not_one_number


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function ``f()`` w.r.t. ``x``.

    ``x`` is perturbed in place, one element at a time, and restored; ``f``
    must read ``x`` each time it is called. Returns an array shaped like ``x``.
    ``x`` must be float64 (in float32 the differences are round-off, and an
    integer array cannot take ``x + eps``), ``eps`` a number above 0.
    """
    _require_float64([("x", x)], "numerical_gradient")
    if not np.issubdtype(np.asarray(x).dtype, np.floating):
        raise TypeError(f"numerical_gradient perturbs x by eps, so x must be a float64 array, "
                        f"got dtype {np.asarray(x).dtype}")
    if not (isinstance(eps, (int, float)) and 0 < eps < np.inf):
        raise ValueError(f"eps must be a number above 0 (1e-6 suits float64), got {eps!r}")
    if not x.flags.writeable:
        raise ValueError("numerical_gradient perturbs x in place, but x is read-only: pass "
                         "the array f reads, made writeable")
    grad = np.zeros(x.shape, dtype=np.float64)
    # Index by position, not through a flat view: a transposed (Fortran-ordered)
    # or strided array has no flat view that writes through to it.
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        f_plus = f()
        x[i] = saved - eps
        f_minus = f()
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a, b):
    """``max |a - b| / max(max |a|, max |b|)``: the worst error, relative to
    the scale of the gradient.

    Scaling by the largest entry rather than entry by entry keeps an exactly
    zero or tiny entry (where the difference quotient is all round-off) from
    failing a gradient that is right; a wrong entry of any size still shows.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)
    return float(np.max(np.abs(a - b)) / scale)


def _require_float64(named_arrays, caller):
    """Central differences in float32 measure round-off, not the gradient (a
    correct TimeRNN shows errors near 0.1 at eps=1e-6): refuse them rather than
    report numbers that look like a bug in the layer."""
    for name, a in named_arrays:
        dtype = np.asarray(a).dtype
        if np.issubdtype(dtype, np.floating) and np.finfo(dtype).bits < 64:
            raise TypeError(
                f"{caller} needs float64 parameters and inputs, but {name} is {dtype}: "
                f"central differences in {dtype} are too noisy to compare. Build the layer "
                f"with float64 arrays (e.g. TimeRNN(Wx.astype(np.float64), ...)) and pass "
                f"float64 inputs"
            )


def _require_writeable(named_arrays, caller):
    """The differences perturb each array in place: a read-only one is
    named here, as the caller knows it, not as ``numerical_gradient``'s x."""
    for name, a in named_arrays:
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            raise ValueError(f"{caller} perturbs {name} in place to measure its gradient, but "
                             f"it is read-only (flags.writeable is False): give a writable "
                             f"copy, e.g. x.copy()")


def _random_projection(out, rng):
    """A fixed random weighting that turns an output array into a scalar."""
    return rng.standard_normal(np.shape(out))


def check_layer(layer, inputs, forward_kwargs=None, eps=1e-6, seed=0, check_inputs=None):
    """Compare a layer's analytic gradients with central differences.

    The scalar checked is ``L = sum(w * layer.forward(*inputs))`` for a fixed
    random ``w``, so ``dout = w``; for a layer with several outputs (a tuple,
    as the LSTM cell's ``h`` and ``c``), one ``w`` per output, given to
    ``backward`` in their order. Every array in ``layer.params`` and every
    float input listed in ``check_inputs`` (default: all float inputs) is
    checked. Integer inputs (word ids) are passed through unchecked. An
    array listed more than once in ``params`` (tied weights) is checked by
    the sum of its gradients, as the optimizers update it; its error is
    reported at each of its places; so is an input given at several places
    (``TimeAttention`` on ``[hs, hs]``: self-attention), which must then be
    checked at each.

    For a stateful layer, or one whose gradient w.r.t. its initial state is
    wanted, use :func:`check_function` instead.

    Returns a dict ``{'param<i>': err, 'input<j>': err}`` of relative errors.
    Raises TypeError when a parameter or a checked input is float32, and
    ValueError for a stateful layer, or any whose forward gives another
    output the second time (dropout in training mode, a ``set_state`` that
    one forward uses up): the differences would not be of one function; for
    a ``backward`` that rebinds ``self.grads[i]`` instead of writing into it
    (an optimizer, given the arrays the list held, would never see the new
    one), or that adds into it (the optimizers never zero the gradients, so
    they would grow at every step); for a gradient whose shape is not its
    parameter's; and for two inputs that share memory but are not one array.
    """
    if getattr(layer, "stateful", False):
        raise ValueError(f"check_layer cannot check a stateful {type(layer).__name__}: each "
                         f"forward starts from the state the last one left. Build it with "
                         f"stateful=False, or use check_function with the initial state as "
                         f"an input (set_state before each forward)")
    forward_kwargs = forward_kwargs or {}
    if check_inputs is None:
        check_inputs = [
            j for j, x in enumerate(inputs) if np.issubdtype(np.asarray(x).dtype, np.floating)
        ]
    for j in check_inputs:
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) \
                or not 0 <= j < len(inputs):
            raise ValueError(f"check_inputs {check_inputs!r}: each must be the position of an "
                             f"input, 0 .. {len(inputs) - 1}")
    _require_float64([*((f"param{i}", p) for i, p in enumerate(layer.params)),
                      *((f"input{j}", inputs[j]) for j in check_inputs)], "check_layer")
    _require_writeable([*((f"layer.params[{i}]", p) for i, p in enumerate(layer.params)),
                        *((f"inputs[{j}]", inputs[j]) for j in check_inputs)], "check_layer")
    _refuse_overlapping_inputs(inputs, check_inputs)
    name = type(layer).__name__
    if len(layer.grads) != len(layer.params):
        raise ValueError(f"{name} has {len(layer.params)} params but "
                         f"{len(layer.grads)} grads: give each parameter its gradient array")
    rng = np.random.default_rng(seed)
    ys = _outputs(layer.forward(*inputs, **forward_kwargs))
    ws = [_random_projection(y, rng) for y in ys]
    first = _weighted_sum(ws, ys)
    _refuse_non_finite(f"{name}.forward's output", first)

    def loss():
        return _weighted_sum(ws, _outputs(layer.forward(*inputs, **forward_kwargs)))

    second = loss()
    if not _agree(first, second):
        raise ValueError(f"{name}.forward gave another output the second time (the weighted "
                         f"sum {first!r}, then {second!r}): it is not one function of its "
                         f"inputs, so its differences measure nothing. Dropout: check it in "
                         f"evaluation mode (train_flg=False); a state given by set_state: use "
                         f"check_function, with set_state at the start of its loss()")

    def backward():
        # Copies: a backward may scale its dout in place, and ws must stay the
        # weighting that the differences measure.
        return layer.backward(*(w.copy() for w in ws))

    grads_before = list(layer.grads)
    dinputs = backward()
    for i, (g, g_before) in enumerate(zip(layer.grads, grads_before, strict=True)):
        if g is not g_before:
            raise ValueError(f"{type(layer).__name__}.backward rebinds self.grads[{i}] (a new "
                             f"array) instead of writing into it (self.grads[{i}][...] = ...): "
                             f"an optimizer updates by the arrays the list held, so the "
                             f"parameter would never train")
    if not isinstance(dinputs, tuple):
        dinputs = (dinputs,)
    # Copy at once: a layer may return a buffer that its next forward reuses.
    dinputs = [None if d is None else np.array(d, copy=True) for d in dinputs]
    for j in check_inputs:
        if j >= len(dinputs) or dinputs[j] is None:
            raise ValueError(f"{type(layer).__name__}.backward returned no gradient for input "
                             f"{j} ({len(dinputs)} returned): return one for every float input "
                             f"it takes, or pass check_inputs with those it has one for")
    for i, (p, g) in enumerate(zip(layer.params, layer.grads, strict=True)):
        if np.shape(g) != p.shape:
            raise ValueError(f"{type(layer).__name__}.grads[{i}] has shape {np.shape(g)} but "
                             f"params[{i}] has shape {p.shape}: a gradient has its parameter's")
    analytic_params = _tied_sums(layer.params, layer.grads)
    _refuse_accumulating(name, layer, loss, backward)
    loss()
    late = _tied_sums(layer.params, _finished_late(backward, layer.grads))
    if changed := _first_change(analytic_params, late):
        raise ValueError(_early_read_message(f"{name}.backward", f"self.grads[{changed[0]}]"))
    checked = [inputs[j] for j in check_inputs]
    analytic_inputs = dict(zip(check_inputs,
                               _tied_sums(checked, [dinputs[j] for j in check_inputs]),
                               strict=True))

    errors, measured = {}, {}
    for i, p in enumerate(layer.params):
        if id(p) not in measured:  # a tied array: once, its error reported at each place
            measured[id(p)] = relative_error(analytic_params[i],
                                             numerical_gradient(loss, p, eps))
        errors[f"param{i}"] = measured[id(p)]
    for j in check_inputs:
        x = inputs[j]
        if id(x) not in measured:  # an input given twice: once, by the sum
            measured[id(x)] = relative_error(analytic_inputs[j], numerical_gradient(loss, x, eps))
        errors[f"input{j}"] = measured[id(x)]
    return errors


def _weighted_sum(ws, ys):
    """``sum(w * y)`` over a layer's outputs: the scalar that check_layer checks."""
    return float(sum(np.sum(w * y) for w, y in zip(ws, ys, strict=True)))


def _refuse_non_finite(what, value):
    """Differences of a NaN or an infinity measure nothing: say so, and where
    to look, rather than report errors of NaN (or call it not one function)."""
    if not np.isfinite(value):
        raise ValueError(f"{what} is not finite ({value!r}): its gradient cannot be checked "
                         f"by differences. Look at the inputs and weights (the log of a "
                         f"negative number? an exp that overflows?), or check it where the "
                         f"output is finite")


def _agree(first, second):
    """Whether two values of one float64 computation agree (to its round-off)."""
    return abs(first - second) <= 1e-12 * max(1.0, abs(first))


def _refuse_overlapping_inputs(inputs, check_inputs):
    """One array given as two inputs has the sum of their gradients, as a
    tied parameter has: both places must be checked for the sum to be whole.
    Two arrays over one memory (``x`` and ``x[:, ::-1]``) cannot be perturbed
    one without the other, and neither gradient alone is what they measure."""
    checked = set(check_inputs)
    arrays = [(j, x) for j, x in enumerate(inputs) if isinstance(x, np.ndarray)]
    for a, (j, x) in enumerate(arrays):
        for k, y in arrays[a + 1:]:
            if j not in checked and k not in checked:
                continue
            if x is y:
                if j not in checked or k not in checked:
                    raise ValueError(f"inputs {j} and {k} are one array, whose gradient is the "
                                     f"sum of both places', but check_inputs lists only one: "
                                     f"list both, or pass a copy at one place")
            elif np.shares_memory(x, y):
                raise ValueError(f"inputs {j} and {k} share memory (views of one array) without "
                                 f"being one array: perturbing one perturbs the other. Pass a "
                                 f"copy at one place, or the same array at both")


def _refuse_accumulating(name, layer, loss, backward):
    """A second backward after the same forward must give the same gradients:
    one that adds into ``self.grads`` gives twice as much, and in training,
    where no optimizer zeroes them, gradients that grow at every step."""
    first = [np.array(g, copy=True) for g in layer.grads]
    loss()
    backward()
    if changed := _first_change(first, layer.grads):
        i, difference = changed
        raise ValueError(f"{name}.backward gave another self.grads[{i}] the second time, "
                         f"after the same forward (relative difference {difference:.2g}): "
                         f"it adds into the array (self.grads[{i}] += ...) instead of "
                         f"overwriting it (self.grads[{i}][...] = ...). The optimizers "
                         f"never zero the gradients, so they would grow at every step")


def _first_change(firsts, seconds):
    """``(position, relative difference)`` of the first gradient that a
    second backward changed beyond round-off (or made NaN); None when none did."""
    for k, (first, second) in enumerate(zip(firsts, seconds, strict=True)):
        if not (difference := relative_error(second, first)) <= 1e-9:
            return k, difference
    return None


def _finished_late(backward, layer_grads=None):
    """The gradients of ``backward()``, computed with every weight gradient
    an rnnlab layer defers (:func:`common.parallel.later`) done only as the
    outermost :func:`~common.parallel.deferred` context ends, as the slowest
    core could in training; those are NaN until then. A model's ``backward``
    is that context. ``layer_grads``: a layer's ``grads``, read after its
    ``backward``, which stands for a model's; else the list ``backward()``
    returns."""
    with _postponing():
        if layer_grads is None:
            returned = backward()
        else:
            with deferred():
                backward()
            returned = layer_grads
    return [np.array(g, dtype=np.float64, copy=True) for g in returned]


def _early_read_message(who, what):
    return (f"{who} gave another {what} when the layers inside it finished their weight "
            f"gradients late, as they may on several cores inside a model's backward: it "
            f"reads (copies, scales) a layer's grads before they are complete. List that "
            f"layer's arrays as its own grads instead (self.grads = inner.grads), or call "
            f"common.parallel.finish_deferred() before reading them")


def _one_number(value):
    """``loss()``'s value as a float; a TypeError for anything but one number."""
    if what := not_one_number(value):
        raise TypeError(f"loss() must return one number, got {what}")
    return float(value)


def _outputs(out):
    """A layer's outputs as a tuple: one array, or the tuple it returned."""
    return out if isinstance(out, tuple) else (out,)


def _tied_sums(params, grads):
    """A copy of each gradient, where an array listed more than once in
    ``params`` (tied weights) has the sum of its gradients at each place:
    what the optimizers update it by, and what its differences measure."""
    total = {}
    for p, g in zip(params, grads, strict=True):
        total[id(p)] = g.copy() if id(p) not in total else total[id(p)] + g
    return [total[id(p)] for p in params]


def check_function(loss, backward, arrays, eps=1e-6):
    """General form: ``loss()`` returns a float, ``backward()`` returns the
    analytic gradients of that loss w.r.t. ``arrays`` (a list, same order).

    Use it for models (``loss`` resets the state, then returns
    ``model.forward(xs, ts)``; ``backward`` calls ``loss()`` then
    ``model.backward()`` and returns ``model.grads``) and for stateful
    layers whose initial state is an input. ``loss`` must be one function of
    the arrays: a model's carried state, or dropout in training mode, would
    change it from call to call (refused: two calls must agree). So must
    ``backward``: a layer that adds into its ``grads`` instead of overwriting
    them gives twice as much the second time (refused).
    An array listed more than once (tied weights) is checked, as by
    :func:`check_layer`, by the sum of its gradients.
    Returns a list of relative errors, one per array.
    """
    _require_float64(((f"arrays[{k}]", a) for k, a in enumerate(arrays)), "check_function")
    _require_writeable(((f"arrays[{k}]", a) for k, a in enumerate(arrays)), "check_function")
    first = _one_number(loss())
    _refuse_non_finite("loss()", first)
    second = _one_number(loss())
    if not _agree(first, second):
        raise ValueError(f"loss() gave {first!r} then {second!r}: not one function of the "
                         f"arrays, so its differences measure nothing. A stateful model or "
                         f"layer carries its state from call to call: call reset_state() (or "
                         f"set_state) at the start of loss(); dropout: model.eval()")
    grads = backward()
    if grads is None or isinstance(grads, np.ndarray) or not hasattr(grads, "__len__"):
        raise TypeError(f"backward() must return a list of gradients, one for each array, got "
                        f"{type(grads).__name__}")
    analytic = [np.array(g, dtype=np.float64, copy=True) for g in grads]
    if len(analytic) != len(arrays):
        raise ValueError(f"backward returned {len(analytic)} gradients for {len(arrays)} arrays")
    loss()
    if changed := _first_change(analytic, backward()):
        k, difference = changed
        raise ValueError(f"backward() gave another gradient for arrays[{k}] the second "
                         f"time, after the same loss() (relative difference "
                         f"{difference:.2g}): a layer adds into its grads (+=) instead of "
                         f"overwriting them ([...] =). The optimizers never zero the "
                         f"gradients, so they would grow at every step")
    loss()
    if changed := _first_change(analytic, _finished_late(backward)):
        raise ValueError(_early_read_message("backward()", f"gradient for arrays[{changed[0]}]"))
    analytic = _tied_sums(arrays, analytic)
    measured = {}
    for g, a in zip(analytic, arrays, strict=True):
        if id(a) not in measured:
            measured[id(a)] = relative_error(g, numerical_gradient(loss, a, eps))
    return [measured[id(a)] for a in arrays]
