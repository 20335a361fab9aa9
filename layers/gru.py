"""The GRU: one step, and a whole sequence.

PyTorch's equations and gate order **r, z, n** (reset gate, update gate, new
state) along the ``3H`` axis::

    ax = x @ Wx + bx                        # (N, 3H) = [ax_r | ax_z | ax_n]
    ah = h_prev @ Wh + bh                   # (N, 3H) = [ah_r | ah_z | ah_n]
    r = sigmoid(ax_r + ah_r)
    z = sigmoid(ax_z + ah_z)
    n = tanh(ax_n + r * ah_n)
    h_next = (1 - z) * n + z * h_prev

The reset gate multiplies ``ah_n = h_prev @ Wh_n + bh_n`` *including* its
bias, so the two biases do not merge into one: ``bx`` and ``bh`` are
``torch.nn.GRU``'s ``b_ih`` and ``b_hh`` exactly (and ``W_ih = Wx.T``,
``W_hh = Wh.T``).

Backward through the step, naming the pre-activations ``a_r``, ``a_z``, ``a_n``::

    da_n = dh_next * (1 - z) * (1 - n ** 2)
    da_z = dh_next * (h_prev - n) * z * (1 - z)
    da_r = da_n * ah_n * r * (1 - r)
    dah_n = da_n * r                        # gradient reaching h_prev @ Wh_n + bh_n
    dax = [da_r | da_z | da_n]              dah = [da_r | da_z | dah_n]
    dWx = x.T @ dax     dbx = sum(dax)      dWh = h_prev.T @ dah     dbh = sum(dah)
    dx  = dax @ Wx.T    dh_prev = dh_next * z + dah @ Wh.T
"""

from common.backend import xp
from common.functions import sigmoid, sigmoid_
from common.parallel import (
    for_row_blocks,
    later,
    matmul,
    matmul_later,
    step_products,
    steps_at_once,
)
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


def _check_weights(Wx, Wh, bx, bh):
    check_weights(("Wx", Wx, "(D, 3H)"), ("Wh", Wh, "(H, 3H)"), ("bx", bx, "(3H,)"),
                  ("bh", bh, "(3H,)"))
    if Wx.shape[1] % 3:
        raise ValueError(f"GRU Wx must have shape (D, 3H), got {Wx.shape}")
    H = Wx.shape[1] // 3
    if Wh.shape != (H, 3 * H) or bx.shape != (3 * H,) or bh.shape != (3 * H,):
        raise ValueError(
            f"GRU weights must be Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,); got "
            f"Wx {Wx.shape}, Wh {Wh.shape}, bx {bx.shape}, bh {bh.shape}"
        )


class GRU:
    """One time step of a GRU (PyTorch's equations, gate order r, z, n).

    Shape:
        Wx: ``(D, 3H)``, Wh: ``(H, 3H)``, bx: ``(3H,)``, bh: ``(3H,)``
        forward: x ``(N, D)``, h_prev ``(N, H)`` -> h_next ``(N, H)``
        backward: dh_next ``(N, H)`` -> (dx ``(N, D)``, dh_prev ``(N, H)``)
    """

    def __init__(self, Wx, Wh, bx, bh):
        _check_weights(Wx, Wh, bx, bh)
        self.params = [Wx, Wh, bx, bh]
        self.grads = [xp.zeros_like(p) for p in self.params]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, bx, bh = self.params
        H = Wh.shape[0]
        check_ndim("x", x, 2, "(N, D)")
        check_ndim("h_prev", h_prev, 2, "(N, H)")
        check_float("x", x, Wx.dtype)
        check_float("h_prev", h_prev, Wx.dtype)
        if x.shape[1] != Wx.shape[0] or h_prev.shape != (x.shape[0], H):
            raise ValueError(
                f"x {x.shape} and h_prev {h_prev.shape} do not fit Wx {Wx.shape}, Wh {Wh.shape}"
            )
        ax = x @ Wx + bx
        ah = h_prev @ Wh + bh
        r = sigmoid(ax[:, :H] + ah[:, :H])
        z = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
        ah_n = ah[:, 2 * H :]
        n = xp.tanh(ax[:, 2 * H :] + r * ah_n)
        h_next = (1 - z) * n + z * h_prev
        self.cache = (x, h_prev, r, z, n, ah_n)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, _, _ = self.params
        dWx, dWh, dbx, dbh = self.grads
        require_forward(self, self.cache)
        x, h_prev, r, z, n, ah_n = self.cache
        check_grad("dh_next", dh_next, z.shape, Wx.dtype)

        da_n = dh_next * (1 - z) * (1 - n * n)
        da_z = dh_next * (h_prev - n) * z * (1 - z)
        da_r = da_n * ah_n * r * (1 - r)
        dah_n = da_n * r
        dax = xp.concatenate([da_r, da_z, da_n], axis=1)
        dah = xp.concatenate([da_r, da_z, dah_n], axis=1)

        xp.matmul(x.T, dax, out=dWx)
        dax.sum(axis=0, out=dbx)
        xp.matmul(h_prev.T, dah, out=dWh)
        dah.sum(axis=0, out=dbh)
        return dax @ Wx.T, dh_next * z + dah @ Wh.T


def _local_derivatives(gates, h_prev, ah_n, dan_dh, daz_dh, dar_dan):
    """Fill ``dan_dh``, ``daz_dh`` and ``dar_dan`` (see ``TimeGRU._backward_loop``) of
    some steps from their ``gates`` ``(t, N, 3H)``, ``h_prev`` and ``ah_n``
    ``(t, N, H)``."""
    H = h_prev.shape[-1]
    r, z, n = gates[:, :, :H], gates[:, :, H : 2 * H], gates[:, :, 2 * H :]
    # One scratch array, no temporary per term (see layers.lstm._local_derivatives);
    # the same operations in the same order.
    s = xp.empty_like(dan_dh)
    xp.subtract(1, z, out=dan_dh)
    xp.multiply(n, n, out=s)
    xp.subtract(1, s, out=s)
    dan_dh *= s  # (1 - z) (1 - n ** 2)
    xp.subtract(h_prev, n, out=daz_dh)
    daz_dh *= z
    xp.subtract(1, z, out=s)
    daz_dh *= s  # (h_prev - n) z (1 - z)
    xp.multiply(ah_n, r, out=dar_dan)
    xp.subtract(1, r, out=s)
    dar_dan *= s  # ah_n r (1 - r)


class TimeGRU:
    """A GRU run over ``T`` steps, with truncated BPTT.

    The same equations as :class:`GRU`, arranged for speed as in
    :class:`~layers.rnn.TimeRNN`: ``x @ Wx + bx`` of all steps is one matrix
    product before the loop (``bh``'s r and z parts, which sit outside the
    reset gate, are added there too); a step does one product ``h @ Wh`` of
    width ``3H`` and the gate functions. Backward computes the local
    derivatives of many steps at once (as :class:`~layers.lstm.TimeLSTM`
    does), loops with a few multiplies and one product ``dah @ Wh.T`` per
    step, then forms the weight gradients as one
    product each over all steps. :mod:`common.parallel` may share a long
    step's product among the cores (``step_products``).

    With ``stateful=True`` the last hidden state of one ``forward`` is the
    initial state of the next (the gradient still stops at the boundary);
    an unset state is zeros. ``set_state(h)`` sets the initial state of the
    next ``forward`` (of that one only when the layer is not stateful);
    ``reset_state()`` forgets it. After ``backward``, ``dh`` holds the
    gradient w.r.t. the initial state.

    The returned ``hs`` is read-only: backward reads it (copy it to change it).

    Gate order along ``3H``: r, z, n, as in ``torch.nn.GRU``
    (``W_ih = Wx.T``, ``W_hh = Wh.T``, ``b_ih = bx``, ``b_hh = bh``).

    Shape:
        Wx: ``(D, 3H)``, Wh: ``(H, 3H)``, bx: ``(3H,)``, bh: ``(3H,)``
        forward: xs ``(N, T, D)`` -> hs ``(N, T, H)``
        backward: dhs ``(N, T, H)`` -> dxs ``(N, T, D)``
    """

    def __init__(self, Wx, Wh, bx, bh, stateful=False):
        _check_weights(Wx, Wh, bx, bh)
        self.params = [Wx, Wh, bx, bh]
        self.grads = [xp.zeros_like(p) for p in self.params]
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
        Wx, Wh, bx, bh = self.params
        check_ndim("xs", xs, 3, "(N, T, D)")
        check_nonempty_batch("xs", xs)
        check_float("xs", xs, Wx.dtype)
        N, T, D = xs.shape
        H = Wh.shape[0]
        if D != Wx.shape[0]:
            raise ValueError(f"xs has {D} features but Wx expects D = {Wx.shape[0]}")
        h0 = initial_state("hidden", self.h, N, H, Wx.dtype, given=self.h is self._given_h)

        # Time-major inside the layer: each step reads and writes contiguous blocks.
        xs_tm = xs.transpose(1, 0, 2).reshape(T * N, D)
        gates = matmul(xs_tm, Wx).reshape(T, N, 3 * H)  # becomes [r|z|n] step by step
        gates += bx
        gates[:, :, : 2 * H] += bh[: 2 * H]
        ah_ns = xp.empty((T, N, H), dtype=Wx.dtype)
        hs_tm = xp.empty((T, N, H), dtype=Wx.dtype)
        self._forward_loop(gates, h0, ah_ns, hs_tm)
        self.cache = (xs_tm, h0, gates, ah_ns, hs_tm)
        # Carried to the next forward when stateful; a set state serves one forward.
        self.h = hs_tm[-1].copy() if self.stateful else None
        self._given_h = None
        return read_only(hs_tm.transpose(1, 0, 2))  # backward reads hs_tm

    def _forward_loop(self, gates, h, ah_ns, hs_tm):
        """The time loop of ``forward``.

        ``gates`` ``(T, N, 3H)`` holds ``x @ Wx + bx`` (plus ``bh``'s r and z
        parts) and becomes ``[r | z | n]``; ``h`` ``(N, H)`` is the initial
        state; ``ah_ns`` (``h_prev @ Wh_n + bh_n``) and ``hs_tm``, each
        ``(T, N, H)``, are filled.
        """
        Wh, bh = self.params[1], self.params[3]
        H = Wh.shape[0]
        bh_n = bh[2 * H :]
        ah = xp.empty(gates.shape[1:], dtype=Wh.dtype)
        with step_products(Wh, len(h)) as h_Wh:  # h_Wh(h, out) writes h @ Wh into out
            for t in range(len(gates)):
                A = gates[t]
                h_Wh(h, ah)
                A[:, : 2 * H] += ah[:, : 2 * H]
                rz = sigmoid_(A[:, : 2 * H])
                r, z = rz[:, :H], rz[:, H:]
                ah_n = xp.add(ah[:, 2 * H :], bh_n, out=ah_ns[t])
                n = A[:, 2 * H :]
                n += r * ah_n
                xp.tanh(n, out=n)
                # h_next = (1 - z) * n + z * h = n + z * (h - n)
                h_next = hs_tm[t]
                xp.subtract(h, n, out=h_next)
                h_next *= z
                h_next += n
                h = h_next

    def backward(self, dhs):
        Wx, Wh, _, _ = self.params
        dWx, dWh, dbx, dbh = self.grads
        require_forward(self, self.cache)
        xs_tm, h0, gates, ah_ns, hs_tm = self.cache
        T, N, H = hs_tm.shape
        check_grad("dhs", dhs, (N, T, H), Wx.dtype)

        h_prev_tm = xp.concatenate([h0[None], hs_tm[:-1]], axis=0)
        dhs_tm = dhs.transpose(1, 0, 2)
        dahs = xp.empty((T, N, 3 * H), dtype=Wx.dtype)  # [da_r | da_z | dah_n] per step
        da_ns = xp.empty((T, N, H), dtype=Wx.dtype)
        self.dh = xp.empty((N, H), dtype=Wx.dtype)
        self._backward_loop(dhs_tm, gates, h_prev_tm, ah_ns, dahs, da_ns, self.dh)

        # The input side sees da_n where the hidden side sees da_n * r.
        daxs = dahs.copy()
        daxs[:, :, 2 * H :] = da_ns
        daxs2 = daxs.reshape(T * N, 3 * H)
        dahs2 = dahs.reshape(T * N, 3 * H)
        dxs_tm = matmul(daxs2, Wx.T).reshape(T, N, -1)
        # The weight gradients are only needed at the update: they may wait for an idle core.
        matmul_later(xs_tm.T, daxs2, out=dWx)
        matmul_later(h_prev_tm.reshape(T * N, H).T, dahs2, out=dWh)
        later(daxs2.sum, axis=0, out=dbx)
        later(dahs2.sum, axis=0, out=dbh)
        return dxs_tm.transpose(1, 0, 2)

    def _backward_loop(self, dhs_tm, gates, h_prev_tm, ah_ns, dahs, da_ns, dh0):
        """The time loop of ``backward``.

        Reads ``dhs_tm`` and the forward values ``gates``, ``h_prev_tm``,
        ``ah_ns`` (each ``(T, N, .)``); fills ``dahs`` ``(T, N, 3H)``,
        ``da_ns`` ``(T, N, H)`` and the initial-state gradient ``dh0``
        ``(N, H)``.
        """
        Wh = self.params[1]
        T, N, H = ah_ns.shape
        r, z = gates[:, :, :H], gates[:, :, H : 2 * H]
        # Local derivatives (see the module docstring), computed for k steps at a
        # time, the last block first, just before the loop needs them:
        #   da_n = dh * dan_dh;  da_z = dh * daz_dh;  da_r = da_n * dar_dan
        k = steps_at_once(T, N * 3 * H)
        dan_dh, daz_dh, dar_dan = (xp.empty((k, N, H), dtype=Wh.dtype) for _ in range(3))
        dh = xp.zeros(dh0.shape, dtype=dh0.dtype)
        dh_prev = xp.empty(dh0.shape, dtype=dh0.dtype)
        with step_products(Wh.T, len(dh)) as dah_WhT:  # dah_WhT(dah, out): dah @ Wh.T into out
            for stop in range(T, 0, -k):
                start = max(stop - k, 0)
                m = stop - start
                for_row_blocks(_local_derivatives, gates[start:stop], h_prev_tm[start:stop],
                               ah_ns[start:stop], dan_dh[:m], daz_dh[:m], dar_dan[:m])
                for t in range(stop - 1, start - 1, -1):
                    j = t - start
                    # h_t feeds the output at t and the next step: both gradients add.
                    dh = dhs_tm[t] + dh
                    da_n = xp.multiply(dh, dan_dh[j], out=da_ns[t])
                    dah = dahs[t]
                    xp.multiply(da_n, dar_dan[j], out=dah[:, :H])
                    xp.multiply(dh, daz_dh[j], out=dah[:, H : 2 * H])
                    xp.multiply(da_n, r[t], out=dah[:, 2 * H :])
                    dh_direct = dh * z[t]
                    dh = dah_WhT(dah, dh_prev)
                    dh += dh_direct
        dh0[...] = dh
