"""Layers that shape data without parameters: concatenation and repetition.

The peeky decoder feeds the encoder's summary ``h`` ``(N, H)`` to every
step: :class:`TimeRepeat` makes ``(N, T, H)`` of it, and :class:`Concat`
joins it to the LSTM's outputs along the feature axis, before the output
layer (the LSTM itself reads ``h`` as ``x_static``, see
:class:`~layers.TimeLSTM`). Their backward passes
are the transposes: a repeated array's gradient is the sum of its copies'
gradients, and a concatenation's gradient is cut back into the pieces.
"""

import numbers

from common.backend import xp
from layers._checks import check_float, check_floating, check_ndim, require_forward


class Concat:
    """Join arrays along the last axis.

    Shape:
        forward: xs_1 ``(..., D_1)``, ..., xs_k ``(..., D_k)`` -> ``(..., D_1 + ... + D_k)``
        backward: dout ``(..., D_1 + ... + D_k)`` -> (dxs_1, ..., dxs_k)
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.sizes = None
        self.cache = None  # the joined shape and dtype, for backward

    def forward(self, *xs):
        if len(xs) < 2:
            raise ValueError(f"Concat needs at least two arrays, got {len(xs)}")
        first = xs[0]
        check_floating("input 0", first)
        if first.ndim < 1:
            raise ValueError(f"input 0 must have at least one axis to join along, got shape "
                             f"{first.shape}")
        shape_doc = "(" + ", ".join([*map(str, first.shape[:-1]), "D"]) + ")"
        for k, x in enumerate(xs[1:], start=1):
            check_ndim(f"input {k}", x, first.ndim, shape_doc)
            check_float(f"input {k}", x, first.dtype, of="input 0 is")
            if x.shape[:-1] != first.shape[:-1]:
                raise ValueError(f"input {k} has shape {x.shape}; all inputs must agree "
                                 f"except in the last axis (input 0: {first.shape})")
        self.sizes = [x.shape[-1] for x in xs]
        out = xp.concatenate(xs, axis=-1)
        self.cache = (out.shape, out.dtype)
        return out

    def backward(self, dout):
        require_forward(self, self.cache)
        shape, dtype = self.cache
        check_ndim("dout", dout, len(shape), str(shape))
        if dout.shape != shape:
            raise ValueError(f"dout must have the joined shape {shape} (widths "
                             f"{list(self.sizes)}), got {dout.shape}")
        check_float("dout", dout, dtype, of="the forward's inputs are")
        bounds = [0]
        for size in self.sizes:
            bounds.append(bounds[-1] + size)
        return tuple(dout[..., a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))


class TimeRepeat:
    """The same vector at each of ``T`` time steps.

    Shape:
        forward: h ``(N, H)``, T (int) -> hs ``(N, T, H)``
        backward: dhs ``(N, T, H)`` -> dh ``(N, H)``
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.T = None
        self.cache = None  # h's shape and dtype, for backward

    def forward(self, h, T):
        check_ndim("h", h, 2, "(N, H)")
        check_floating("h", h)  # it sets the dtype backward's dhs must have
        if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
            raise ValueError(f"T must be a whole number of steps >= 1, got {T!r}")
        self.T = int(T)
        self.cache = (h.shape, h.dtype)
        return xp.broadcast_to(h[:, None, :], (h.shape[0], self.T, h.shape[1]))

    def backward(self, dhs):
        require_forward(self, self.cache)
        (N, H), dtype = self.cache
        check_ndim("dhs", dhs, 3, f"({N}, {self.T}, {H})")
        if dhs.shape != (N, self.T, H):
            raise ValueError(f"dhs must have shape {(N, self.T, H)}, got {dhs.shape}")
        check_float("dhs", dhs, dtype, of="the forward's h is")
        return dhs.sum(axis=1)
