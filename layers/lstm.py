"""The LSTM: one step, and a whole sequence.

The four gates are computed by one affine map of ``x`` and ``h_prev``; along
its ``4H`` axis they sit in PyTorch's order **i, f, g, o** (input gate,
forget gate, cell candidate, output gate)::

    A = x @ Wx + h_prev @ Wh + b            # (N, 4H) = [a_i | a_f | a_g | a_o]
    i = sigmoid(a_i)    f = sigmoid(a_f)    g = tanh(a_g)    o = sigmoid(a_o)
    c_next = f * c_prev + i * g
    h_next = o * tanh(c_next)

so a ``torch.nn.LSTM`` holds the same weights as ``W_ih = Wx.T``,
``W_hh = Wh.T`` and ``b_ih + b_hh = b``, with no reordering.

Backward through the step. ``h_next`` depends on ``c_next``, so the gradient
reaching ``c_next`` is the one from the next step plus the one through
``tanh``; call it ``ds``::

    ds      = dc_next + dh_next * o * (1 - tanh(c_next) ** 2)
    dc_prev = ds * f
    da_i = ds * g * i * (1 - i)             da_f = ds * c_prev * f * (1 - f)
    da_g = ds * i * (1 - g ** 2)            da_o = dh_next * tanh(c_next) * o * (1 - o)
    dA   = [da_i | da_f | da_g | da_o]
    dWx = x.T @ dA      dWh = h_prev.T @ dA      db = sum(dA)
    dx  = dA @ Wx.T     dh_prev = dA @ Wh.T
"""

import numbers

from common.backend import xp
from common.functions import sigmoid, sigmoid_of_negated_
from common.parallel import for_row_blocks, matmul, step_products, steps_at_once
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


def _check_weights(Wx, Wh, b):
    check_weights(("Wx", Wx, "(D, 4H)"), ("Wh", Wh, "(H, 4H)"), ("b", b, "(4H,)"))
    if Wx.shape[1] % 4:
        raise ValueError(f"LSTM Wx must have shape (D, 4H), got {Wx.shape}")
    H = Wx.shape[1] // 4
    if Wh.shape != (H, 4 * H) or b.shape != (4 * H,):
        raise ValueError(
            f"LSTM weights must be Wx (D, 4H), Wh (H, 4H), b (4H,); got Wx {Wx.shape}, "
            f"Wh {Wh.shape}, b {b.shape}"
        )


def _check_static(x_static, N, dtype):
    """The width S of a TimeLSTM's ``x_static`` ``(N, S)``, checked."""
    check_ndim("x_static", x_static, 2, "(N, S)")
    check_float("x_static", x_static, dtype)
    if x_static.shape[0] != N:
        raise ValueError(f"x_static has {x_static.shape[0]} rows but xs has {N}")
    return x_static.shape[1]


class LSTM:
    """One time step of an LSTM (gate order i, f, g, o; see the module docstring).

    Shape:
        Wx: ``(D, 4H)``, Wh: ``(H, 4H)``, b: ``(4H,)``
        forward: x ``(N, D)``, h_prev ``(N, H)``, c_prev ``(N, H)``
        -> (h_next ``(N, H)``, c_next ``(N, H)``)
        backward: dh_next ``(N, H)``, dc_next ``(N, H)`` (or ``0``: the book's
        TimeLSTM starts its backward loop with ``dc = 0``)
        -> (dx ``(N, D)``, dh_prev ``(N, H)``, dc_prev ``(N, H)``)
    """

    def __init__(self, Wx, Wh, b):
        _check_weights(Wx, Wh, b)
        self.params = [Wx, Wh, b]
        self.grads = [xp.zeros_like(Wx), xp.zeros_like(Wh), xp.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = Wh.shape[0]
        check_ndim("x", x, 2, "(N, D)")
        check_float("x", x, Wx.dtype)
        if x.shape[1] != Wx.shape[0]:
            raise ValueError(f"x has {x.shape[1]} features but Wx expects D = {Wx.shape[0]}")
        check_hidden_state("h_prev", h_prev, H, Wx.dtype, N=x.shape[0])
        check_hidden_state("c_prev", c_prev, H, Wx.dtype, N=x.shape[0])

        A = x @ Wx + h_prev @ Wh + b
        i = sigmoid(A[:, :H])
        f = sigmoid(A[:, H : 2 * H])
        g = xp.tanh(A[:, 2 * H : 3 * H])
        o = sigmoid(A[:, 3 * H :])
        c_next = f * c_prev + i * g
        tanh_c = xp.tanh(c_next)
        h_next = o * tanh_c
        self.cache = (x, h_prev, c_prev, i, f, g, o, tanh_c)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, _ = self.params
        dWx, dWh, db = self.grads
        require_forward(self, self.cache)
        x, h_prev, c_prev, i, f, g, o, tanh_c = self.cache
        check_grad("dh_next", dh_next, tanh_c.shape, Wx.dtype)
        if isinstance(dc_next, numbers.Real) and dc_next == 0:
            # 0: no gradient. Any real zero (np.float64(0) too) becomes the int
            # 0, which leaves float32 gradients float32.
            dc_next = 0
        else:
            check_grad("dc_next", dc_next, tanh_c.shape, Wx.dtype)

        ds = dc_next + dh_next * o * (1 - tanh_c * tanh_c)
        dc_prev = ds * f
        da_i = ds * g * i * (1 - i)
        da_f = ds * c_prev * f * (1 - f)
        da_g = ds * i * (1 - g * g)
        da_o = dh_next * tanh_c * o * (1 - o)
        dA = xp.concatenate([da_i, da_f, da_g, da_o], axis=1)

        xp.matmul(x.T, dA, out=dWx)
        xp.matmul(h_prev.T, dA, out=dWh)
        dA.sum(axis=0, out=db)
        return dA @ Wx.T, dA @ Wh.T, dc_prev


def _local_derivatives(gates, c_prev, tanh_cs, ds_dh, da_ds, dao_dh):
    """Fill ``ds_dh``, ``da_ds`` and ``dao_dh`` (see ``TimeLSTM._backward_loop``)
    of some steps from their ``gates`` ``(t, n, 4, H)``, ``c_prev`` and
    ``tanh_cs`` ``(t, n, H)``."""
    i, f, g, o = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2], gates[:, :, 3]
    # One scratch array for every "1 - x": a temporary per term would be a fresh
    # allocation each (page faults, caches), 2.3x slower at 29 x 128 x 256.
    # The same operations in the same order: the same bits.
    s = xp.empty_like(ds_dh)
    xp.multiply(tanh_cs, tanh_cs, out=s)
    xp.subtract(1, s, out=s)
    xp.multiply(o, s, out=ds_dh)  # o * (1 - tanh_c ** 2)
    xp.subtract(1, i, out=s)
    xp.multiply(xp.multiply(g, i, out=da_ds[:, :, 0]), s, out=da_ds[:, :, 0])  # g i (1 - i)
    xp.subtract(1, f, out=s)
    xp.multiply(xp.multiply(c_prev, f, out=da_ds[:, :, 1]), s, out=da_ds[:, :, 1])
    xp.multiply(g, g, out=s)
    xp.subtract(1, s, out=s)
    xp.multiply(i, s, out=da_ds[:, :, 2])  # i (1 - g ** 2)
    xp.subtract(1, o, out=s)
    xp.multiply(xp.multiply(tanh_cs, o, out=dao_dh), s, out=dao_dh)  # tanh_c o (1 - o)


class TimeLSTM:
    """An LSTM run over ``T`` steps, with truncated BPTT.

    The same equations as :class:`LSTM`, arranged for speed as in
    :class:`~layers.rnn.TimeRNN`: the input projection ``x @ Wx + b`` of all
    steps is one matrix product before the loop; a step adds ``h @ Wh`` (the
    only sequential product) and applies the gate functions. The local
    derivatives of every step (``i * (1 - i)``, ...) do not depend on the
    upstream gradient, so backward computes them for many steps at once
    (all of them where the cores share the work, else blocks of steps that
    stay in the cache until the loop reads them, see
    :func:`common.parallel.steps_at_once`) and its loop does a few
    multiplies and one product ``dA @ Wh.T`` per step;
    the weight gradients are one product each over all steps. Each time
    loop is written over whole arrays; :mod:`common.parallel` may share a
    long step's product among the cores (``step_products``).

    ``forward(xs, x_static)`` also feeds ``x_static`` ``(N, S)`` to every
    step, read by the first ``S`` rows of ``Wx``: the same as ``forward`` of
    ``[x_static repeated over T | xs]``, with ``x_static``'s product made
    once instead of at every step (a peeky decoder's encoding, see
    :mod:`models.peeky_seq2seq`). After ``backward``, ``dx_static`` holds its
    gradient.

    A forward that starts from zeros (no state set or carried) skips the
    first step's ``h @ Wh``, which is zero, and backward leaves those zero
    rows out of ``dWh``.

    Backward writes each step's gradient ``dA`` over that step's gates,
    which it has read for the last time: a forward's values serve one
    backward (a second raises; call ``forward`` again).

    With ``stateful=True`` the last ``h`` and ``c`` of one ``forward`` are the
    initial state of the next (the gradient still stops at the boundary);
    an unset state is zeros. ``set_state(h, c)`` sets the initial state of
    the next ``forward`` (of that one only when the layer is not stateful);
    ``reset_state()`` forgets it. After ``backward``, ``dh`` and ``dc`` hold
    the gradients w.r.t. the initial ``h`` and ``c``.

    The returned ``hs`` is read-only: backward reads it (copy it to change it).

    Gate order along ``4H``: i, f, g, o, as in ``torch.nn.LSTM``
    (``W_ih = Wx.T``, ``W_hh = Wh.T``, ``b_ih + b_hh = b``).

    Shape:
        Wx: ``(D, 4H)``, Wh: ``(H, 4H)``, b: ``(4H,)``
        forward: xs ``(N, T, D)`` -> hs ``(N, T, H)``; with x_static ``(N, S)``:
        xs ``(N, T, D - S)``
        backward: dhs ``(N, T, H)`` -> dxs ``(N, T, D)`` (``(N, T, D - S)``)
    """

    def __init__(self, Wx, Wh, b, stateful=False):
        _check_weights(Wx, Wh, b)
        self.params = [Wx, Wh, b]
        self.grads = [xp.zeros_like(Wx), xp.zeros_like(Wh), xp.zeros_like(b)]
        self.stateful = stateful
        self.h = None  # last hidden state (N, H), carried when stateful
        self.c = None  # last cell state (N, H), carried when stateful
        self._given_h = self._given_c = None  # given to set_state, until a forward uses them
        self.dh = None  # gradients w.r.t. the initial h and c, after backward
        self.dc = None
        self.dx_static = None  # gradient w.r.t. forward's x_static, after backward
        self.cache = None

    def set_state(self, h, c=None):
        """Use ``h`` (and ``c``; zeros when ``None``), each (N, H), as the
        initial state of the next forward."""
        Wh = self.params[1]
        H = Wh.shape[0]
        check_hidden_state("h", h, H, Wh.dtype)
        if c is not None:
            check_hidden_state("c", c, H, Wh.dtype, N=h.shape[0])
        self.h, self.c = self._given_h, self._given_c = h, c

    def reset_state(self):
        self.h, self.c = self._given_h, self._given_c = None, None

    def forward(self, xs, x_static=None):
        Wx, Wh, b = self.params
        check_ndim("xs", xs, 3, "(N, T, D)")
        check_nonempty_batch("xs", xs)
        check_float("xs", xs, Wx.dtype)
        N, T, D = xs.shape
        H = Wh.shape[0]
        S = 0 if x_static is None else _check_static(x_static, N, Wx.dtype)
        if S + D != Wx.shape[0]:
            static = f" and x_static {S}" if S else ""
            raise ValueError(f"xs has {D} features{static} but Wx expects D = {Wx.shape[0]}")
        zero_start = self.h is None
        h0 = initial_state("hidden", self.h, N, H, Wx.dtype, given=self.h is self._given_h)
        c0 = initial_state("cell", self.c, N, H, Wx.dtype, given=self.c is self._given_c)

        # Time-major inside the layer: each step reads and writes contiguous blocks.
        xs_tm = xs.transpose(1, 0, 2).reshape(T * N, D)
        # All four gates from one exp: tanh(a) = 2 * sigmoid(2a) - 1, so with a
        # slope of 2 on the g columns, sigmoid(slope * A) is [i | f | (g + 1) / 2 | o].
        # The factor -slope (-1 or -2: exact) is folded into copies of the
        # weights, which saves a pass over A at every step, bit for bit.
        neg_slope = xp.repeat(xp.asarray([-1.0, -1.0, -2.0, -1.0], dtype=Wx.dtype), H)
        Wx_scaled = Wx * neg_slope
        gates = matmul(xs_tm, Wx_scaled[S:]).reshape(T, N, 4 * H)  # -slope * (x @ Wx + b)
        gates += b * neg_slope
        if S:
            gates += x_static @ Wx_scaled[:S]  # the same at every step
        cs = xp.empty((T, N, H), dtype=Wx.dtype)
        tanh_cs = xp.empty((T, N, H), dtype=Wx.dtype)
        hs = xp.empty((T, N, H), dtype=Wx.dtype)
        self._forward_loop(gates, Wh * neg_slope, h0, c0, cs, tanh_cs, hs, zero_start)
        self.cache = (xs_tm, x_static, None if zero_start else h0, c0, gates, cs, tanh_cs, hs)
        # Carried to the next forward when stateful; a set state serves one forward.
        self.h, self.c = (hs[-1].copy(), cs[-1].copy()) if self.stateful else (None, None)
        self._given_h = self._given_c = None
        return read_only(hs.transpose(1, 0, 2))  # backward reads hs

    def _forward_loop(self, gates, Wh_scaled, h, c, cs, tanh_cs, hs, zero_start=False):
        """The time loop of ``forward``.

        ``gates`` ``(T, N, 4H)`` holds ``-slope * (x @ Wx + b)`` and is turned
        into the gate values in place; ``Wh_scaled`` is ``-slope * Wh`` (see
        ``forward``); ``h``, ``c`` ``(N, H)`` are the initial state (``h``
        zeros when ``zero_start``); ``cs``, ``tanh_cs``, ``hs`` ``(T, N, H)``
        are filled.
        """
        H = Wh_scaled.shape[0]
        hWh = xp.empty(gates.shape[1:], dtype=gates.dtype)
        ig = xp.empty(h.shape, dtype=gates.dtype)
        with step_products(Wh_scaled, len(h)) as h_Wh:  # h_Wh(h, out): h @ Wh_scaled into out
            for t in range(len(gates)):
                A = gates[t]
                if t or not zero_start:
                    A += h_Wh(h, hWh)
                sigmoid_of_negated_(A)
                i, f, g, o = A[:, :H], A[:, H : 2 * H], A[:, 2 * H : 3 * H], A[:, 3 * H :]
                g *= 2
                g -= 1
                c = xp.multiply(f, c, out=cs[t])
                c += xp.multiply(i, g, out=ig)
                xp.tanh(c, out=tanh_cs[t])
                h = xp.multiply(o, tanh_cs[t], out=hs[t])

    def backward(self, dhs):
        Wx = self.params[0]
        require_forward(self, self.cache, once=True)
        xs_tm, x_static, h0, c0, gates, cs, tanh_cs, hs = self.cache
        T, N, H = hs.shape
        check_grad("dhs", dhs, (N, T, H), Wx.dtype)

        dhs_tm = dhs.transpose(1, 0, 2)
        # [da_i | da_f | da_g | da_o] of each step, written over that step's gates,
        # which the loop reads for the last time just before (a smaller working set).
        das = gates
        self.cache = None  # so backward runs once per forward
        self.dh = xp.empty((N, H), dtype=Wx.dtype)
        self.dc = xp.empty((N, H), dtype=Wx.dtype)
        self._backward_loop(dhs_tm, gates, c0, cs, tanh_cs, das, self.dh, self.dc)

        dxs, self.dx_static = input_and_weight_grads(das, xs_tm, h0, hs, Wx, self.grads,
                                                     x_static)
        return dxs

    def _backward_loop(self, dhs, gates, c0, cs, tanh_cs, das, dh0, dc0):
        """The time loop of ``backward``.

        Reads ``dhs`` and the forward values (each ``(T, n, .)``), fills
        ``das`` ``(T, n, 4H)`` and the initial-state gradients ``dh0``, ``dc0``
        ``(n, H)``. ``das`` may be ``gates`` itself (``backward`` passes it
        so): a step reads its gates before writing its ``dA`` over them.
        """
        Wh = self.params[1]
        T, n, H = cs.shape
        gates = gates.reshape(T, n, 4, H)
        f = gates[:, :, 1]
        # Local derivatives (see the module docstring), computed for k steps at a
        # time, the last block first, just before the loop needs them:
        #   ds = dc + dh * ds_dh;   [da_i, da_f, da_g] = ds * da_ds;   da_o = dh * dao_dh
        k = steps_at_once(T, n * 4 * H)
        ds_dh = xp.empty((k, n, H), dtype=Wh.dtype)
        da_ds = xp.empty((k, n, 3, H), dtype=Wh.dtype)
        dao_dh = xp.empty((k, n, H), dtype=Wh.dtype)

        dh = xp.zeros((n, H), dtype=Wh.dtype)
        dc = xp.zeros((n, H), dtype=Wh.dtype)
        with step_products(Wh.T, n) as dA_WhT:  # dA_WhT(dA, out) writes dA @ Wh.T into out
            for stop in range(T, 0, -k):
                start = max(stop - k, 0)
                m = stop - start
                c_prev = (cs[start - 1 : stop - 1] if start
                          else xp.concatenate([c0[None], cs[: stop - 1]], axis=0))
                for_row_blocks(_local_derivatives, gates[start:stop], c_prev,
                               tanh_cs[start:stop], ds_dh[:m], da_ds[:m], dao_dh[:m])
                for t in range(stop - 1, start - 1, -1):
                    j = t - start
                    dA = das[t].reshape(n, 4, H)
                    # h_t feeds the output at t and the next step: both gradients add.
                    dh += dhs[t]
                    ds = dh * ds_dh[j]
                    ds += dc
                    dc = xp.multiply(ds, f[t], out=dc)  # before dA[:, 1] overwrites f[t]
                    xp.multiply(ds[:, None, :], da_ds[j], out=dA[:, :3])
                    xp.multiply(dh, dao_dh[j], out=dA[:, 3])
                    dA_WhT(das[t], dh)
        dh0[...] = dh
        dc0[...] = dc
