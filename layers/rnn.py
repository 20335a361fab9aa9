"""The vanilla (Elman) recurrent layer: one step, and a whole sequence.

    h_next = tanh(h_prev @ Wh + x @ Wx + b)

Backward through the step, with ``a`` the pre-activation::

    da      = dh_next * (1 - h_next ** 2)       # tanh'(a) written with its output
    dWx     = x.T @ da        dWh = h_prev.T @ da        db = sum(da)
    dx      = da @ Wx.T       dh_prev = da @ Wh.T

To try another nonlinearity, subclass and override ``activation`` and
``activation_grad`` (the derivative expressed through the output ``h``);
both the cell and the time layer use them.
"""

from common.backend import xp
from common.parallel import matmul, step_products
from layers._checks import (
    check_float,
    check_grad,
    check_hidden_state,
    check_ndim,
    check_nonempty_batch,
    check_weights,
    initial_state,
    read_only,
    require_forward,
)
from layers._time_grads import input_and_weight_grads


class _Activation:
    """The nonlinearity shared by :class:`RNN` and :class:`TimeRNN`."""

    def activation(self, a):
        """``h = tanh(a)``; may overwrite ``a``."""
        return xp.tanh(a, out=a)

    def activation_grad(self, h):
        """``dh/da`` written with the output: ``tanh'(a) = 1 - h**2``."""
        return 1 - h * h


def _check_weights(Wx, Wh, b):
    check_weights(("Wx", Wx, "(D, H)"), ("Wh", Wh, "(H, H)"), ("b", b, "(H,)"))
    D, H = Wx.shape
    if Wh.shape != (H, H) or b.shape != (H,):
        raise ValueError(
            f"RNN weights must be Wx (D, H), Wh (H, H), b (H,); got Wx {Wx.shape}, "
            f"Wh {Wh.shape}, b {b.shape}"
        )


class RNN(_Activation):
    """One time step of a tanh RNN.

    The returned ``h_next`` is read-only: backward reads it (copy it to change it).

    Shape:
        Wx: ``(D, H)``, Wh: ``(H, H)``, b: ``(H,)``
        forward: x ``(N, D)``, h_prev ``(N, H)`` -> h_next ``(N, H)``
        backward: dh_next ``(N, H)`` -> (dx ``(N, D)``, dh_prev ``(N, H)``)
    """

    def __init__(self, Wx, Wh, b):
        _check_weights(Wx, Wh, b)
        self.params = [Wx, Wh, b]
        self.grads = [xp.zeros_like(Wx), xp.zeros_like(Wh), xp.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        check_ndim("x", x, 2, "(N, D)")
        check_ndim("h_prev", h_prev, 2, "(N, H)")
        check_float("x", x, Wx.dtype)
        check_float("h_prev", h_prev, Wx.dtype)
        if x.shape[1] != Wx.shape[0] or h_prev.shape != (x.shape[0], Wh.shape[0]):
            raise ValueError(
                f"x {x.shape} and h_prev {h_prev.shape} do not fit Wx {Wx.shape}, Wh {Wh.shape}"
            )
        h_next = self.activation(h_prev @ Wh + x @ Wx + b)
        self.cache = (x, h_prev, h_next)
        return read_only(h_next)  # backward reads h_next: no in-place change to it

    def backward(self, dh_next):
        Wx, Wh, _ = self.params
        dWx, dWh, db = self.grads
        require_forward(self, self.cache)
        x, h_prev, h_next = self.cache
        check_grad("dh_next", dh_next, h_next.shape, Wx.dtype)
        da = dh_next * self.activation_grad(h_next)
        xp.matmul(x.T, da, out=dWx)
        xp.matmul(h_prev.T, da, out=dWh)
        da.sum(axis=0, out=db)
        return da @ Wx.T, da @ Wh.T


class TimeRNN(_Activation):
    """A tanh RNN run over ``T`` steps, with truncated BPTT.

    Only the recurrence ``h_prev @ Wh`` is inherently sequential. The input
    projection ``x @ Wx + b`` of all steps is one matrix product before the
    loop, and the weight gradients are one product each over all steps after
    the backward loop; the per-step loop does one small product and one
    ``tanh`` (forward) or one product and one multiply (backward).

    With ``stateful=True`` the last hidden state of one ``forward`` is the
    initial state of the next (the gradient still stops at the boundary);
    an unset state is zeros. ``set_state(h)`` sets the initial state of the
    next ``forward`` (of that one only when the layer is not stateful);
    ``reset_state()`` forgets it. After ``backward``, ``dh`` holds the
    gradient w.r.t. the initial state.

    The returned ``hs`` is read-only: backward reads it (copy it to change it).

    Shape:
        Wx: ``(D, H)``, Wh: ``(H, H)``, b: ``(H,)``
        forward: xs ``(N, T, D)`` -> hs ``(N, T, H)``
        backward: dhs ``(N, T, H)`` -> dxs ``(N, T, D)``
    """

    def __init__(self, Wx, Wh, b, stateful=False):
        _check_weights(Wx, Wh, b)
        self.params = [Wx, Wh, b]
        self.grads = [xp.zeros_like(Wx), xp.zeros_like(Wh), xp.zeros_like(b)]
        self.stateful = stateful
        self.h = None  # last hidden state (N, H), carried when stateful
        self._given_h = None  # the h given to set_state, until a forward uses it
        self.dh = None  # gradient w.r.t. the initial state, after backward
        self.cache = None

    def set_state(self, h):
        """Use ``h`` (N, H) as the initial hidden state of the next forward."""
        Wh = self.params[1]
        check_hidden_state("h", h, Wh.shape[0], Wh.dtype)
        self.h = self._given_h = h

    def reset_state(self):
        self.h = self._given_h = None

    def forward(self, xs):
        Wx, Wh, b = self.params
        check_ndim("xs", xs, 3, "(N, T, D)")
        check_nonempty_batch("xs", xs)
        check_float("xs", xs, Wx.dtype)
        N, T, D = xs.shape
        H = Wh.shape[0]
        if D != Wx.shape[0]:
            raise ValueError(f"xs has {D} features but Wx expects D = {Wx.shape[0]}")

        h0 = initial_state("hidden", self.h, N, H, Wx.dtype, given=self.h is self._given_h)
        # Time-major inside the layer: each step then reads and writes one
        # contiguous (N, H) block.
        xs_tm = xs.transpose(1, 0, 2).reshape(T * N, D)
        a_tm = matmul(xs_tm, Wx).reshape(T, N, H)
        a_tm += b
        hs_tm = xp.empty((T, N, H), dtype=Wx.dtype)
        self._forward_loop(a_tm, h0, hs_tm)
        self.cache = (xs_tm, h0, hs_tm)
        # Carried to the next forward when stateful; a set state serves one forward.
        self.h = hs_tm[-1].copy() if self.stateful else None
        self._given_h = None
        return read_only(hs_tm.transpose(1, 0, 2))  # backward reads hs_tm

    def _forward_loop(self, a_tm, h, hs_tm):
        """The time loop of ``forward``: ``a_tm`` ``(T, N, H)`` holds
        ``x @ Wx + b`` and becomes the pre-activations; ``h`` ``(N, H)`` is
        the initial state; ``hs_tm`` ``(T, N, H)`` is filled."""
        Wh = self.params[1]
        hWh = xp.empty(h.shape, dtype=Wh.dtype)
        with step_products(Wh, len(h)) as h_Wh:  # h_Wh(h, out) writes h @ Wh into out
            for t in range(len(a_tm)):
                a_t = a_tm[t]
                a_t += h_Wh(h, hWh)
                h = self.activation(a_t)
                hs_tm[t] = h

    def backward(self, dhs):
        Wx, Wh, _ = self.params
        require_forward(self, self.cache)
        xs_tm, h0, hs_tm = self.cache
        T, N, H = hs_tm.shape
        check_grad("dhs", dhs, (N, T, H), Wx.dtype)

        dhs_tm = dhs.transpose(1, 0, 2)
        dh_da = self.activation_grad(hs_tm)  # (T, N, H), all steps at once
        das = xp.empty_like(hs_tm)
        self.dh = xp.empty((N, H), dtype=hs_tm.dtype)
        self._backward_loop(dhs_tm, dh_da, das, self.dh)
        dxs, _ = input_and_weight_grads(das, xs_tm, h0, hs_tm, Wx, self.grads)
        return dxs

    def _backward_loop(self, dhs_tm, dh_da, das, dh0):
        """The time loop of ``backward``: reads ``dhs_tm`` and ``dh_da``
        ``(T, N, H)``, fills ``das`` ``(T, N, H)`` and the initial-state
        gradient ``dh0`` ``(N, H)``."""
        Wh = self.params[1]
        dh = xp.zeros(dh0.shape, dtype=dh0.dtype)
        with step_products(Wh.T, len(dh)) as da_WhT:  # da_WhT(da, out) writes da @ Wh.T into out
            for t in range(len(das) - 1, -1, -1):
                # h_t feeds the output at t and the next step: both gradients add.
                xp.multiply(dhs_tm[t] + dh, dh_da[t], out=das[t])
                dh = da_WhT(das[t], xp.empty_like(dh))
        dh0[...] = dh
