"""Bidirectional recurrent layers: one layer reads the sequence left to
right, a second one right to left, and their outputs are joined.

At step ``t`` the output holds what the forward layer has read of
``xs[:, :t+1]`` and what the backward layer has read of ``xs[:, t:]``, so
each position sees the whole sequence. The backward layer runs on the
reversed sequence and its outputs are reversed back, so that both halves of
``hs[:, t]`` belong to step ``t``.
"""

from common.backend import xp
from layers._checks import check_ndim
from layers.lstm import TimeLSTM


def _in_direction(direction, layer, xs):
    """``layer.forward(xs)``, with an error about the input naming the
    direction: the two halves may differ (in D, in dtype), and a message
    such as "xs has 3 features but Wx expects D = 4" alone would not say which."""
    try:
        return layer.forward(xs)
    except (ValueError, TypeError) as e:
        if type(e) not in (ValueError, TypeError):  # a subclass may take other arguments
            raise
        raise type(e)(f"the {direction} direction ({type(layer).__name__}): {e}") from e


class Bidirectional:
    """Make any Time layer (``forward(xs (N, T, D)) -> (N, T, H)``) bidirectional.

    ``forward_layer`` and ``backward_layer`` are two layers of the same kind
    (their own weights); ``params`` and ``grads`` are the forward layer's,
    then the backward layer's. They must be two objects: a layer keeps what
    its forward saved for its backward, and one object would have its
    forward pass's values overwritten by the reversed pass. To tie the two
    directions' weights, build both layers from the same arrays.

    Shape:
        forward: xs ``(N, T, D)`` -> hs ``(N, T, H_f + H_b)`` (forward half first)
        backward: dhs ``(N, T, H_f + H_b)`` -> dxs ``(N, T, D)``
    """

    def __init__(self, forward_layer, backward_layer):
        for direction, layer in (("forward", forward_layer), ("backward", backward_layer)):
            missing = [a for a in ("params", "grads", "forward", "backward")
                       if not hasattr(layer, a)]
            if missing:
                raise TypeError(f"{direction}_layer must be a Time layer (params, grads, "
                                f"forward, backward), such as TimeLSTM(Wx, Wh, b); got "
                                f"{type(layer).__name__}, which has no {', '.join(missing)}")
        if forward_layer is backward_layer:
            kind = type(forward_layer).__name__
            raise ValueError(f"forward_layer and backward_layer are the same {kind} object: "
                             f"its reversed pass would overwrite what the forward pass saved "
                             f"for backward, and the gradients would be wrong. Pass two layer "
                             f"objects (to tie their weights, build two {kind} from the same "
                             f"weight arrays)")
        for layer in (forward_layer, backward_layer):
            if getattr(layer, "stateful", False):
                raise ValueError(f"a bidirectional layer reads the whole sequence: its "
                                 f"{type(layer).__name__} halves cannot be stateful (the "
                                 f"backward half would carry the future); build them with "
                                 f"stateful=False")
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.params = forward_layer.params + backward_layer.params
        self.grads = forward_layer.grads + backward_layer.grads
        self.H_f = None
        self.out_shape = None

    def forward(self, xs):
        check_ndim("xs", xs, 3, "(N, T, D)")
        hs_f = _in_direction("forward", self.forward_layer, xs)
        hs_b = _in_direction("backward", self.backward_layer, xs[:, ::-1])[:, ::-1]
        self.H_f = hs_f.shape[2]
        self.out_shape = (hs_f.shape[0], hs_f.shape[1], hs_f.shape[2] + hs_b.shape[2])
        return xp.concatenate([hs_f, hs_b], axis=2)

    def backward(self, dhs):
        if self.H_f is None:
            raise RuntimeError("backward() needs a forward() first")
        if not hasattr(dhs, "shape"):
            raise TypeError(f"dhs must be an array of shape {self.out_shape}, got "
                            f"{type(dhs).__name__}")
        if dhs.shape != self.out_shape:  # both halves' widths: say the whole shape
            raise ValueError(f"dhs must have shape {self.out_shape} (the forward's output: "
                             f"both directions), got {dhs.shape}")
        H_f = self.H_f
        dxs = self.forward_layer.backward(xp.ascontiguousarray(dhs[:, :, :H_f]))
        dxs_rev = self.backward_layer.backward(xp.ascontiguousarray(dhs[:, ::-1, H_f:]))
        return dxs + dxs_rev[:, ::-1]

    def reset_state(self):
        for layer in (self.forward_layer, self.backward_layer):
            if hasattr(layer, "reset_state"):
                layer.reset_state()


class TimeBiLSTM(Bidirectional):
    """A bidirectional LSTM (the textbook's ``TimeBiLSTM``): two :class:`TimeLSTM`,
    the first with ``Wx1, Wh1, b1`` reading forward, the second with
    ``Wx2, Wh2, b2`` reading backward.

    The two directions may have different hidden sizes ``H1`` and ``H2``
    (like any :class:`Bidirectional`): each half of the output keeps its own
    width. They read the same ``xs``, so ``D`` and the dtype must agree.

    Shape:
        Wx1: ``(D, 4 H1)``, Wh1: ``(H1, 4 H1)``, b1: ``(4 H1,)``; likewise Wx2, Wh2, b2 with H2
        forward: xs ``(N, T, D)`` -> hs ``(N, T, H1 + H2)`` (``2H`` when ``H1 = H2 = H``)
        backward: dhs ``(N, T, H1 + H2)`` -> dxs ``(N, T, D)``
    """

    def __init__(self, Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False):
        if stateful:
            raise ValueError("a bidirectional layer reads the whole sequence: it cannot be "
                             "stateful (its backward half would need the future)")
        # Caught here, a mismatch names the direction; at forward it would not.
        forward_layer = _built("forward", "1", Wx1, Wh1, b1)
        backward_layer = _built("backward", "2", Wx2, Wh2, b2)
        Wx1, Wx2 = forward_layer.params[0], backward_layer.params[0]
        if Wx1.shape[0] != Wx2.shape[0]:
            raise ValueError(f"both directions read the same xs (N, T, D): Wx1 {Wx1.shape} and "
                             f"Wx2 {Wx2.shape} must have the same number of rows D")
        if Wx1.dtype != Wx2.dtype:
            raise TypeError(f"both directions must have one dtype: Wx1 is {Wx1.dtype}, Wx2 is "
                            f"{Wx2.dtype}; build both halves' weights with one dtype")
        super().__init__(forward_layer, backward_layer)


def _built(direction, number, Wx, Wh, b):
    """``TimeLSTM(Wx, Wh, b)``, with an error about its weights naming the
    direction (and its arguments, ``Wx1`` or ``Wx2``): TimeLSTM's own message
    says only "Wx"."""
    try:
        return TimeLSTM(Wx, Wh, b)
    except (ValueError, TypeError) as e:
        if type(e) not in (ValueError, TypeError):
            raise
        raise type(e)(f"the {direction} direction (Wx{number}, Wh{number}, b{number}): "
                      f"{e}") from e
