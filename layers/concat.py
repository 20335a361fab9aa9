"""Layers that shape data without parameters: concatenation and repetition.

The peeky decoder feeds the encoder's summary ``h`` ``(N, H)`` to every
step: :class:`TimeRepeat` makes ``(N, T, H)`` of it, and :class:`Concat`
joins it to the step inputs along the feature axis. Their backward passes
are the transposes: a repeated array's gradient is the sum of its copies'
gradients, and a concatenation's gradient is cut back into the pieces.
"""

from common.backend import xp
from layers._checks import check_float, check_ndim


class Concat:
    """Join arrays along the last axis.

    Shape:
        forward: xs_1 ``(..., D_1)``, ..., xs_k ``(..., D_k)`` -> ``(..., D_1 + ... + D_k)``
        backward: dout ``(..., D_1 + ... + D_k)`` -> (dxs_1, ..., dxs_k)
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.sizes = None

    def forward(self, *xs):
        if len(xs) < 2:
            raise ValueError(f"Concat needs at least two arrays, got {len(xs)}")
        first = xs[0]
        for k, x in enumerate(xs[1:], start=1):
            check_ndim(f"input {k}", x, first.ndim, f"{first.shape[:-1] + ('D',)}")
            check_float(f"input {k}", x, first.dtype)
            if x.shape[:-1] != first.shape[:-1]:
                raise ValueError(f"input {k} has shape {x.shape}; all inputs must agree "
                                 f"except in the last axis (input 0: {first.shape})")
        self.sizes = [x.shape[-1] for x in xs]
        return xp.concatenate(xs, axis=-1)

    def backward(self, dout):
        if dout.shape[-1] != sum(self.sizes):
            raise ValueError(f"dout must be {sum(self.sizes)} wide along its last axis (the "
                             f"joined widths {list(self.sizes)}), got shape {dout.shape}")
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

    def forward(self, h, T):
        check_ndim("h", h, 2, "(N, H)")
        if T < 1:
            raise ValueError(f"T must be at least 1, got {T}")
        self.T = T
        return xp.broadcast_to(h[:, None, :], (h.shape[0], T, h.shape[1]))

    def backward(self, dhs):
        if dhs.ndim != 3 or dhs.shape[1] != self.T:
            raise ValueError(f"dhs must have shape (N, {self.T}, H), got {dhs.shape}")
        return dhs.sum(axis=1)
