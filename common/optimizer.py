"""Optimizers: SGD, Momentum, AdaGrad, RMSprop and Adam.

Every optimizer has one method that matters::

    optimizer = Adam(lr=1e-3)
    loss = model.forward(xs, ts)
    model.backward()
    optimizer.update(model.params, model.grads)   # changes model.params in place

``update(params, grads)`` takes two lists of arrays of the same shapes, in
the same order (the layer contract), and changes every array in ``params``
**in place** (``p -= ...``): the arrays are never rebound, so the layers that
own them see the new values. ``grads`` is only read.

Tied weights. If the same array object appears more than once in ``params``
(an embedding matrix reused as the output projection, say), its gradients
are summed and the array is updated once, as if it were listed once with the
summed gradient. Only identity counts: two different arrays over one
memory (``W`` and ``W.T``, the book's way to tie the output layer to the
embedding) are two parameters. SGD steps that memory by both gradients, as
it should; an optimizer with a state per parameter would step it twice,
so it refuses them (tie with one array: ``TimeAffine(W, b,
transpose=True)``).

The update equations follow ``torch.optim`` (with its defaults for the
options not offered here), so a model trained here and one trained with
PyTorch take the same steps up to float round-off. ``lr`` is a plain
attribute: a trainer may change it between steps (learning-rate decay).

State. Per-parameter state (``v`` for Momentum, ``h`` for AdaGrad and
RMSprop, ``m`` and ``v`` for Adam) is created lazily on the first update,
with each parameter's dtype (float32 in training, so no upcasts), and is
indexed by position in the deduplicated parameter list. ``state_dict()``
returns a flat ``{name: value}`` dict of NumPy arrays and Python numbers
(``'lr'``, ``'t'``, the hyperparameters, ``'m.0'``, ``'m.1'`` ...) that can
be written to an ``.npz`` file next to the model's parameters;
``load_state_dict(d)`` restores it so that training continues bit for bit.
An optimizer with state belongs to the parameters it first updated: given
other arrays (another model's), ``update`` raises ``ValueError`` rather
than steer them with that state; make one optimizer per model.
"""

import functools
import math

import numpy as np

from common.backend import to_cpu, xp
from common.parallel import for_row_blocks
from common.serialization import is_index_key
from common.util import finite_number


class Optimizer:
    """Base class: tied-weight deduplication, the step count, and state I/O.

    A subclass names its per-parameter state arrays in ``state_names`` and
    its scalar hyperparameters (besides ``lr``) in ``hyper_names``, and
    implements ``_step(lr, p, g, *state)``: the update of one parameter
    ``p`` in place, from its gradient ``g`` and its state arrays in the
    order of ``state_names``, with ``self.t`` already counting the current
    step. ``_step`` may be given a block of rows of the arrays rather than
    the whole (see :meth:`_apply`), so it must be elementwise. (An update
    that is not elementwise overrides ``_apply(params, grads, lr)``, which
    receives the deduplicated lists.)

    Attributes:
        lr: the learning rate; may be changed between steps.
        t: the number of updates made so far.
        state: ``{name: [array per distinct parameter]}``; empty until the
            first update.
    """

    state_names: tuple[str, ...] = ()
    hyper_names: tuple[str, ...] = ()

    def __init__(self, lr):
        self.lr = _check_lr(lr, example=f"{type(self).__name__}(lr=0.01)")
        self.t = 0
        self.state = {}
        # The deduplication index, cached for the last params list seen.
        self._key = None  # tuple of id(p) for that list
        self._params = []  # its distinct arrays, in order of first appearance
        self._sources = []  # for each distinct array, its positions in the list
        self._buffers = []  # for each tied array, a reused buffer for its summed grad

    def __getstate__(self):
        # A copy (deepcopy, pickle) holds copies of the arrays the index points
        # at, with the original list's ids: it would update its own copies, not
        # the arrays it is given. It indexes its next params list afresh.
        state = self.__dict__.copy()
        state.update(_key=None, _params=[], _sources=[], _buffers=[])
        return state

    def update(self, params, grads):
        """Take one optimisation step: change every array in ``params`` in place."""
        # lr may have been set since (a schedule, a user): a NaN would spread to every weight;
        # so may the others (beta2 = 1 divides by 1 - 1 ** t: every weight NaN).
        _check_lr(self.lr)
        for name in self.hyper_names:  # (the ones load_state_dict checks, no others)
            if name in HYPER_CHECKS:
                HYPER_CHECKS[name](name, getattr(self, name))
        params, grads = self._unique(params, grads)
        if not params:  # nothing to step: no state to keep, none bound to an empty list
            return
        if self.state_names and not self.state:
            self.state = {name: [xp.zeros_like(p) for p in params] for name in self.state_names}
        self.t += 1
        # float(): a NumPy float64 lr (e.g. read back from an .npz) would
        # otherwise promote float32 arithmetic to float64.
        self._apply(params, grads, float(self.lr))

    def _apply(self, params, grads, lr):
        """``_step`` on every parameter, in blocks of rows.

        The update reads and writes several arrays the size of the
        parameter; in blocks of about 1 MiB they stay in a core's cache,
        and a large parameter's blocks are shared among the cores
        (:func:`common.parallel.for_row_blocks`): with Adam on its
        512 x 2048 recurrent weights, the character-level LSTM's iteration
        took 120.0-120.6 against 124.6-127.3 ms (``python
        scripts/benchmark.py --only char``, H = 512, two alternations with
        the code before). The update is elementwise, so the blocks give the
        same bits as the whole arrays (tested).
        """
        states = [self.state[name] for name in self.state_names]
        step = functools.partial(self._step, lr)
        for p, g, *state in zip(params, grads, *states, strict=True):
            if p.ndim == 0:
                step(p, g, *state)
            else:
                for_row_blocks(step, p, g, *state)

    def _step(self, lr, p, g, *state):
        raise NotImplementedError

    # -- tied weights ------------------------------------------------------

    def _unique(self, params, grads):
        """Return ``(params, grads)`` with every array listed once.

        The gradients of an array listed several times are summed into a
        buffer owned by the optimizer (allocated once, reused every step);
        the caller's ``grads`` arrays are never written. One gradient array
        listed at each of its places (a layer listed twice) counts once, as
        ``clip_grads`` and ``merge_tied_grads`` count it.
        """
        if len(params) != len(grads):
            raise ValueError(f"update got {len(params)} params but {len(grads)} grads")
        key = tuple(map(id, params))
        if key != self._key:
            self._build_index(params, key)
        unique_grads = []
        for p, sources, buffer in zip(self._params, self._sources, self._buffers, strict=True):
            for j in sources:
                if not hasattr(grads[j], "dtype"):
                    raise TypeError(f"grads[{j}] must be an array like params[{j}], got "
                                    f"{type(grads[j]).__name__}")
                if grads[j].shape != p.shape:
                    raise ValueError(
                        f"grads[{j}] has shape {grads[j].shape}, "
                        f"but params[{j}] has shape {p.shape}"
                    )
                if grads[j].dtype != p.dtype:  # checked before any parameter changes
                    raise TypeError(f"grads[{j}] has dtype {grads[j].dtype}, but params[{j}] "
                                    f"has dtype {p.dtype}; convert it with "
                                    f".astype({p.dtype.name})")
            if not getattr(p.flags, "writeable", True):
                raise ValueError(f"params[{sources[0]}] is read-only (e.g. loaded with "
                                 f"np.load(..., mmap_mode='r')), so it cannot be updated; "
                                 f"give the model a writable copy (np.array(a)) before "
                                 f"training")
            eps = getattr(self, "eps", None)
            if eps is not None and p.dtype.type(eps) == 0:
                raise ValueError(f"eps={eps!r} rounds to 0 in params[{sources[0]}]'s dtype "
                                 f"({p.dtype}), where it would no longer keep the division "
                                 f"away from zero; use eps >= {float(xp.finfo(p.dtype).tiny)!r}")
            if buffer is None:
                unique_grads.append(grads[sources[0]])
                continue
            distinct = list({id(grads[j]): grads[j] for j in sources}.values())
            if len(distinct) == 1:
                unique_grads.append(distinct[0])
                continue
            xp.add(distinct[0], distinct[1], out=buffer)
            for g in distinct[2:]:
                buffer += g
            unique_grads.append(buffer)
        return self._params, unique_grads

    def _build_index(self, params, key):
        # An identity map (id -> position) finds repeats in one pass. The
        # cache keeps references to the arrays, so none of them can be freed
        # and its id reused by another array: an equal key means the same
        # arrays.
        position = {}
        unique, sources = [], []
        for j, p in enumerate(params):
            if getattr(getattr(p, "dtype", None), "kind", None) != "f":
                what = (f"dtype {p.dtype}" if hasattr(p, "dtype")
                        else f"a {type(p).__name__}")
                raise TypeError(f"params[{j}] must be a float array, updated in place, got "
                                f"{what}")
            k = position.setdefault(id(p), len(unique))
            if k == len(unique):
                unique.append(p)
                sources.append([j])
            else:
                sources[k].append(j)
        if self.state_names:
            self._refuse_shared_memory(unique, sources)
        if self.state and self._key is not None:
            # Momentum or Adam state of one model's parameters would steer another's
            # steps, silently when the shapes agree.
            raise ValueError(
                f"this {type(self).__name__} has already updated other parameter arrays and "
                f"keeps state for them; make one optimizer per model "
                f"({type(self).__name__}(lr=...) for each), and pass the same model.params "
                "list at every update"
            )
        if self.state:
            # State loaded (load_state_dict) before the first update must fit.
            self._check_state(self.state, unique)
        self._key = key
        self._params = unique
        self._sources = sources
        self._buffers = [
            xp.empty_like(p) if len(s) > 1 else None for p, s in zip(unique, sources, strict=True)
        ]

    def _refuse_shared_memory(self, unique, sources):
        """Two different arrays over one memory would each have a state, and
        the memory two steps at each update."""
        for a, p in enumerate(unique):
            for b in range(a + 1, len(unique)):
                q = unique[b]
                if (isinstance(p, np.ndarray) and isinstance(q, np.ndarray)
                        and np.may_share_memory(p, q) and np.shares_memory(p, q)):
                    name = type(self).__name__
                    raise ValueError(
                        f"params[{sources[a][0]}] and params[{sources[b][0]}] are two arrays "
                        f"over the same memory (W and W.T, say, as the book ties the output "
                        f"layer to the embedding): {name} keeps a state for each, so that "
                        f"memory would be stepped twice at each update. Tie them as one array "
                        f"listed twice, TimeAffine(W, b, transpose=True), or use SGD, which "
                        f"keeps no state")

    # -- saving and restoring ------------------------------------------------

    def state_dict(self):
        """Return the optimizer's state as a flat dict of NumPy arrays and numbers.

        Keys: ``'lr'``, ``'t'``, each name in ``hyper_names``, and
        ``'<state name>.<i>'`` for the i-th distinct parameter. The arrays are
        copies: later updates do not change a dict already returned.
        """
        d = {"lr": float(self.lr), "t": int(self.t)}
        for name in self.hyper_names:
            d[name] = float(getattr(self, name))
        for name, arrays in self.state.items():
            for i, a in enumerate(arrays):
                d[f"{name}.{i}"] = to_cpu(a).copy()
        return d

    def load_state_dict(self, d):
        """Restore a state saved by :meth:`state_dict` (also read back from an .npz).

        The learning rate, step count and hyperparameters are restored along
        with the state arrays. Raises ``ValueError`` if a key is missing or
        unexpected, or if the arrays do not fit the parameters: at once when
        this optimizer has already seen its parameters, otherwise at the next
        ``update``. Nothing is changed when an error is raised.
        """
        d = dict(d)
        scalar_names = ("lr", "t", *self.hyper_names)
        missing = [k for k in scalar_names if k not in d]
        if missing:
            raise ValueError(f"{type(self).__name__} state dict is missing keys {missing}")
        scalars = {k: _scalar(d.pop(k), k) for k in scalar_names}
        if not math.isfinite(scalars["t"]) or scalars["t"] != int(scalars["t"]) \
                or scalars["t"] < 0:
            raise ValueError(f"'t' must be a non-negative integer, got {scalars['t']}")
        # The constructors' checks, for the values they know (momentum < 1 ...; a
        # hyperparameter of one's own is its optimizer's to check).
        _check_lr(scalars["lr"])
        for name in self.hyper_names:
            if name in HYPER_CHECKS:
                HYPER_CHECKS[name](name, scalars[name])

        # The remaining keys must be '<state name>.<i>' for i = 0 .. n-1.
        indices = {name: set() for name in self.state_names}
        unexpected = []
        for k in d:
            name, _, i = k.rpartition(".")
            # (As state_dict writes them: "v.0", "v.12".)
            if name in indices and is_index_key(i):
                indices[name].add(int(i))
            else:
                unexpected.append(k)
        if unexpected:
            raise ValueError(f"{type(self).__name__} state dict has unexpected keys {unexpected}")
        n = max((max(s) + 1 for s in indices.values() if s), default=0)
        missing = [
            f"{name}.{i}" for name in self.state_names for i in range(n) if i not in indices[name]
        ]
        if missing:
            raise ValueError(f"{type(self).__name__} state dict is missing keys {missing}")
        # Arrays for the same parameter (Adam's m.i and v.i) share its shape.
        first, *others = self.state_names or ("",)
        for i in range(n):
            for name in others:
                a, b = d[f"{first}.{i}"], d[f"{name}.{i}"]
                if np.shape(a) != np.shape(b):
                    raise ValueError(
                        f"{first}.{i} has shape {np.shape(a)} but {name}.{i} has {np.shape(b)}"
                    )

        # Copy: updates work in place and must not write into the caller's dict.
        state = {name: [xp.array(d[f"{name}.{i}"]) for i in range(n)] for name in self.state_names}
        if n == 0:
            state = {}  # nothing saved yet: created lazily, as in a fresh optimizer
        elif self._key is not None:
            self._check_state(state, self._params)
        self.lr = scalars["lr"]
        self.t = int(scalars["t"])
        for name in self.hyper_names:
            setattr(self, name, scalars[name])
        self.state = state

    def _check_state(self, state, params):
        """Raise ValueError unless ``state`` has one array per param, of its shape.

        Casts state arrays to their parameter's dtype, so that the update
        arithmetic stays in the training dtype.
        """
        for name, arrays in state.items():
            if len(arrays) != len(params):
                raise ValueError(
                    f"{type(self).__name__} state has {name!r} for {len(arrays)} parameters, "
                    f"but it is optimising {len(params)} distinct parameters"
                )
            for i, (a, p) in enumerate(zip(arrays, params, strict=True)):
                if a.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__} state {name}.{i} has shape {a.shape}, "
                        f"but parameter {i} has shape {p.shape}"
                    )
                arrays[i] = a.astype(p.dtype, copy=False)

    def __repr__(self):
        hypers = "".join(f", {name}={getattr(self, name)}" for name in self.hyper_names)
        return f"{type(self).__name__}(lr={self.lr}{hypers})"


def _check_lr(lr, example=None):
    # A NaN or infinite lr turns every parameter into NaN at the first step.
    if not finite_number(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0{', e.g. ' + example if example else ''}"
                         f", got {lr!r}")
    return lr


def _check_fraction(name, value):
    """A decay rate (momentum, alpha, beta1, beta2): 1 or more makes the state grow
    without bound, and Adam's bias correction divides by 1 - beta ** t."""
    if not (finite_number(value) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_eps(eps):
    if not finite_number(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0 (it keeps the division away from "
                         f"zero: with 0, a weight whose gradient has been 0 so far would "
                         f"become 0/0 = NaN), got {eps!r}")
    return float(eps)


# The hyperparameters' checks by name, for the constructors and load_state_dict.
HYPER_CHECKS = {"momentum": _check_fraction, "alpha": _check_fraction,
                "beta1": _check_fraction, "beta2": _check_fraction,
                "eps": lambda name, value: _check_eps(value)}


def _scalar(value, key):
    # np.load gives 0-d arrays back for the numbers state_dict stored.
    if np.ndim(value) != 0:
        raise ValueError(f"state dict entry {key!r} must be a scalar, got shape {np.shape(value)}")
    kind = np.asarray(value).dtype.kind
    if kind not in "iuf":  # (True, "3": no number state_dict writes)
        raise ValueError(f"state dict entry {key!r} must be a number, got {value!r}")
    return float(value)


class SGD(Optimizer):
    """Stochastic gradient descent: a step down the gradient.

        p <- p - lr * g

    Stateless: ``state_dict()`` holds only ``lr`` and ``t``.
    """

    def __init__(self, lr=0.01):
        super().__init__(lr)

    def _step(self, lr, p, g):
        p -= lr * g


class Momentum(Optimizer):
    """SGD with momentum, in PyTorch's form (``torch.optim.SGD(momentum=mu)``).

        v <- mu * v + g
        p <- p - lr * v

    ``v`` starts at zero. (The book's form, v <- mu*v - lr*g; p <- p + v,
    takes the same steps while lr is constant; this one keeps ``v`` in
    gradient units, so changing lr rescales the whole step at once.)
    """

    state_names = ("v",)
    hyper_names = ("momentum",)

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr)
        self.momentum = _check_fraction("momentum", momentum)

    def _step(self, lr, p, g, v):
        v *= self.momentum
        v += g
        p -= lr * v


class AdaGrad(Optimizer):
    """AdaGrad: each element's step shrinks with its summed squared gradients.

        h <- h + g * g
        p <- p - lr * g / (sqrt(h) + eps)

    ``h`` starts at zero (``torch.optim.Adagrad`` with its defaults).
    """

    state_names = ("h",)
    hyper_names = ("eps",)

    def __init__(self, lr=0.01, eps=1e-10):
        super().__init__(lr)
        self.eps = _check_eps(eps)

    def _step(self, lr, p, g, h):
        h += g * g
        p -= lr * g / (xp.sqrt(h) + self.eps)


class RMSprop(Optimizer):
    """RMSprop: AdaGrad with an exponential moving average instead of a sum.

        h <- alpha * h + (1 - alpha) * g * g
        p <- p - lr * g / (sqrt(h) + eps)

    ``h`` starts at zero (``torch.optim.RMSprop`` with its defaults).
    """

    state_names = ("h",)
    hyper_names = ("alpha", "eps")

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8):
        super().__init__(lr)
        self.alpha = _check_fraction("alpha", alpha)
        self.eps = _check_eps(eps)

    def _step(self, lr, p, g, h):
        alpha = self.alpha
        h *= alpha
        h += (1 - alpha) * (g * g)
        p -= lr * g / (xp.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), in ``torch.optim.Adam``'s form.

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    ``m`` and ``v`` start at zero, so the bias corrections (t is the step
    number, 1 on the first update) undo their pull towards zero early on.
    """

    state_names = ("m", "v")
    hyper_names = ("beta1", "beta2", "eps")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1 = _check_fraction("beta1", beta1)
        self.beta2 = _check_fraction("beta2", beta2)
        self.eps = _check_eps(eps)

    def _step(self, lr, p, g, m, v):
        beta1, beta2, eps, t = self.beta1, self.beta2, self.eps, self.t
        # Fold the corrections into scalars, computed the way PyTorch does,
        # so eps is added to sqrt(v_hat) exactly as there.
        step_size = lr / (1 - beta1**t)
        sqrt_bias2 = (1 - beta2**t) ** 0.5
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        p -= step_size * m / (xp.sqrt(v) / sqrt_bias2 + eps)
