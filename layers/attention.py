"""Dot-product attention of a decoder state over all encoder states.

For the encoder states ``hs`` ``(N, T, H)`` and one decoder state ``h``
``(N, H)``::

    s = hs @ h                    # (N, T): how well each encoder state matches h
    a = softmax(s)                # (N, T): the attention weights, summing to 1
    c = a @ hs                    # (N, H): the context vector, a weighted sum

Backward, with ``dc`` the gradient of the context::

    da  = hs @ dc                                  # (N, T)
    ds  = a * (da - sum(a * da))                   # through the softmax
    dhs = a[:, :, None] * dc[:, None, :]           # from the weighted sum
        + ds[:, :, None] * h[:, None, :]           # from the scores
    dh  = ds @ hs

:class:`AttentionWeight` (``s`` and ``a``) and :class:`WeightSum` (``c``) are
the two halves, :class:`Attention` joins them for one decoder step, and
:class:`TimeAttention` does all decoder steps at once with batched matrix
products; a test ties it to the step-by-step version.
"""

from common.backend import xp
from common.functions import softmax
from layers._checks import (
    check_float,
    check_floating,
    check_grad,
    check_ndim,
    check_nonempty_batch,
    read_only,
    require_forward,
)


def _check_pair(hs, h):
    check_ndim("hs", hs, 3, "(N, T, H)")
    check_ndim("h", h, 2, "(N, H)")
    check_nonempty_batch("hs", hs)  # no state to attend to: a softmax over nothing
    check_floating("hs", hs)
    check_float("h", h, hs.dtype, of="hs is")
    if h.shape != (hs.shape[0], hs.shape[2]):
        raise ValueError(
            f"h must have shape {(hs.shape[0], hs.shape[2])} to match hs {hs.shape}, "
            f"got {h.shape}"
        )


class AttentionWeight:
    """The attention weights ``a = softmax(hs @ h)`` of one decoder step.

    The returned ``a`` is read-only: backward reads it (copy it to change it).

    Shape:
        forward: hs ``(N, T, H)``, h ``(N, H)`` -> a ``(N, T)``
        backward: da ``(N, T)`` -> (dhs ``(N, T, H)``, dh ``(N, H)``)
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, h):
        _check_pair(hs, h)
        s = xp.einsum("nth,nh->nt", hs, h)
        a = softmax(s)
        self.cache = (hs, h, a)
        return read_only(a)  # backward reads a

    def backward(self, da):
        require_forward(self, self.cache)
        hs, h, a = self.cache
        check_grad("da", da, a.shape, hs.dtype, of="the forward's hs is")
        ds = a * (da - (a * da).sum(axis=1, keepdims=True))
        dhs = ds[:, :, None] * h[:, None, :]
        dh = xp.einsum("nt,nth->nh", ds, hs)
        return dhs, dh


class WeightSum:
    """The context ``c = sum_t a[:, t] * hs[:, t]``.

    Shape:
        forward: hs ``(N, T, H)``, a ``(N, T)`` -> c ``(N, H)``
        backward: dc ``(N, H)`` -> (dhs ``(N, T, H)``, da ``(N, T)``)
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, a):
        check_ndim("hs", hs, 3, "(N, T, H)")
        check_ndim("a", a, 2, "(N, T)")
        check_nonempty_batch("hs", hs)
        check_floating("hs", hs)
        check_float("a", a, hs.dtype, of="hs is")
        if a.shape != hs.shape[:2]:
            raise ValueError(f"a must have shape {hs.shape[:2]} to match hs {hs.shape}, "
                             f"got {a.shape}")
        self.cache = (hs, a)
        return xp.einsum("nt,nth->nh", a, hs)

    def backward(self, dc):
        require_forward(self, self.cache)
        hs, a = self.cache
        check_grad("dc", dc, (hs.shape[0], hs.shape[2]), hs.dtype, of="the forward's hs is")
        dhs = a[:, :, None] * dc[:, None, :]
        da = xp.einsum("nth,nh->nt", hs, dc)
        return dhs, da


class Attention:
    """Attention for one decoder step: the weights, then the weighted sum.

    ``attention_weight`` holds the last step's weights ``a`` ``(N, T)``,
    read-only: backward reads them (copy them to change them).

    Shape:
        forward: hs ``(N, T, H)``, h ``(N, H)`` -> c ``(N, H)``
        backward: dc ``(N, H)`` -> (dhs ``(N, T, H)``, dh ``(N, H)``)
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.attention_weight_layer = AttentionWeight()
        self.weight_sum_layer = WeightSum()
        self.attention_weight = None

    def forward(self, hs, h):
        a = self.attention_weight_layer.forward(hs, h)
        self.attention_weight = a
        return self.weight_sum_layer.forward(hs, a)

    def backward(self, dc):
        require_forward(self, self.attention_weight)
        dhs0, da = self.weight_sum_layer.backward(dc)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


class TimeAttention:
    """:class:`Attention` for every decoder step, as batched matrix products.

    With all decoder states ``hs_dec`` ``(N, T_dec, H)`` at once, the scores
    of every step are one product ``hs_dec @ hs_enc^T`` and the contexts one
    more, ``A @ hs_enc``; backward is four such products (see the module
    docstring, with a row of ``A`` per decoder step).

    After ``forward``, ``attention_weights`` is a list of ``T_dec`` arrays
    ``(N, T_enc)``, one per decoder step (the textbook's attribute); they
    are read-only views of what backward reads (copy them to change them).

    Shape:
        forward: hs_enc ``(N, T_enc, H)``, hs_dec ``(N, T_dec, H)`` -> cs ``(N, T_dec, H)``
        backward: dcs ``(N, T_dec, H)`` -> (dhs_enc ``(N, T_enc, H)``, dhs_dec ``(N, T_dec, H)``)
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.attention_weights = []
        self.cache = None

    def forward(self, hs_enc, hs_dec):
        check_ndim("hs_enc", hs_enc, 3, "(N, T_enc, H)")
        check_ndim("hs_dec", hs_dec, 3, "(N, T_dec, H)")
        check_nonempty_batch("hs_enc", hs_enc)
        check_nonempty_batch("hs_dec", hs_dec)
        # The layer has no weights: hs_enc sets the dtype, and hs_dec and dcs must match it.
        check_floating("hs_enc", hs_enc)
        check_float("hs_dec", hs_dec, hs_enc.dtype, of="hs_enc is")
        if hs_dec.shape[0] != hs_enc.shape[0] or hs_dec.shape[2] != hs_enc.shape[2]:
            raise ValueError(
                f"hs_dec {hs_dec.shape} and hs_enc {hs_enc.shape} must agree in N and H"
            )
        A = softmax(xp.matmul(hs_dec, hs_enc.transpose(0, 2, 1)))  # (N, T_dec, T_enc)
        self.cache = (hs_enc, hs_dec, A)
        A_view = read_only(A)  # backward reads A: its rows are handed out read-only
        self.attention_weights = [A_view[:, t] for t in range(A.shape[1])]
        return xp.matmul(A, hs_enc)

    def backward(self, dcs):
        require_forward(self, self.cache)
        hs_enc, hs_dec, A = self.cache
        check_grad("dcs", dcs, hs_dec.shape, hs_enc.dtype, of="the forward's hs_enc is")
        dA = xp.matmul(dcs, hs_enc.transpose(0, 2, 1))
        dS = A * (dA - (A * dA).sum(axis=2, keepdims=True))
        dhs_enc = xp.matmul(A.transpose(0, 2, 1), dcs)
        dhs_enc += xp.matmul(dS.transpose(0, 2, 1), hs_dec)
        dhs_dec = xp.matmul(dS, hs_enc)
        return dhs_enc, dhs_dec
