"""Inverted dropout, for any shape (usually ``(N, T, D)`` between layers).

In training each unit is kept with probability ``1 - p`` and the kept units
are scaled by ``1 / (1 - p)``, so the expected output equals the input and
evaluation needs no rescaling: at evaluation time the layer is the identity::

    mask = (u >= p) / (1 - p),  u ~ Uniform[0, 1)     (training)
    y = x * mask                dx = dy * mask
    y = x                       dx = dy               (evaluation)
"""

import numpy as np

from common.backend import to_gpu, xp
from common.util import check_rng, finite_number
from layers._checks import check_floating, check_grad, require_forward


class TimeDropout:
    """Inverted dropout with ratio ``dropout_ratio``.

    ``train_flg`` switches between training (True, the default) and
    evaluation (False, the identity); models set it on all their dropout
    layers. Masks come from a NumPy ``Generator``: pass ``rng`` as a
    Generator or a seed for reproducible masks. ``set_mask(keep)`` fixes the
    kept units for the following training forwards (tests use it);
    ``set_mask(None)`` goes back to random masks.

    Shape:
        forward: xs ``(*)`` -> ys, same shape and dtype
        backward: dys ``(*)`` -> dxs, same shape
    """

    def __init__(self, dropout_ratio=0.5, rng=None):
        if not (finite_number(dropout_ratio) and 0.0 <= dropout_ratio < 1.0):
            raise ValueError(f"dropout_ratio must be a number in [0, 1), got {dropout_ratio!r}")
        check_rng(rng, none="None (fresh randomness)")
        self.dropout_ratio = dropout_ratio
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.train_flg = True
        self.params, self.grads = [], []
        self.fixed_keep = None  # boolean mask set by set_mask, or None for random masks
        self.mask = None  # the scaled mask of the last training forward
        self.xs_shape = None  # of the last forward, training or evaluation
        self.xs_dtype = None

    def set_mask(self, keep):
        """Keep exactly the units where ``keep`` is true (until ``set_mask(None)``)."""
        self.fixed_keep = None if keep is None else xp.asarray(keep).astype(bool)

    def forward(self, xs):
        check_floating("xs", xs)
        self.xs_shape, self.xs_dtype = xs.shape, xs.dtype
        if not self.train_flg:
            self.mask = None
            return xs
        if self.fixed_keep is not None:
            if self.fixed_keep.shape != xs.shape:
                raise ValueError(
                    f"the fixed mask has shape {self.fixed_keep.shape} but xs has {xs.shape}"
                )
            keep = self.fixed_keep
        else:
            # Draw in float32 for float32 inputs: no float64 array of the input's size.
            draw = np.float32 if xs.dtype == np.float32 else np.float64
            keep = to_gpu(self.rng.random(xs.shape, dtype=draw) >= self.dropout_ratio)
        scale = xs.dtype.type(1.0 / (1.0 - self.dropout_ratio))
        self.mask = keep.astype(xs.dtype) * scale
        return xs * self.mask

    def backward(self, dys):
        # Without a forward there is no mask, and returning dys would pass the
        # gradient through as if this were evaluation.
        require_forward(self, self.xs_shape)
        # Checked in evaluation mode too: a wrong gradient is wrong there as well,
        # and would fail further down, or not at all.
        check_grad("dys", dys, self.xs_shape, self.xs_dtype, of="the forward's xs is")
        if self.mask is None:  # evaluation mode: the identity
            return dys
        return dys * self.mask
