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

from common import parallel
from common.backend import xp
from common.functions import sigmoid, sigmoid_
from common.parallel import for_unit_blocks, later, matmul, matmul_later
from layers._checks import check_float, check_hidden_state, check_ndim, initial_state


def _check_weights(Wx, Wh, bx, bh):
    if Wx.ndim != 2 or Wx.shape[1] % 3:
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
        x, h_prev, r, z, n, ah_n = self.cache

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


class TimeGRU:
    """A GRU run over ``T`` steps, with truncated BPTT.

    The same equations as :class:`GRU`, arranged for speed as in
    :class:`~layers.rnn.TimeRNN`: ``x @ Wx + bx`` of all steps is one matrix
    product before the loop (``bh``'s r and z parts, which sit outside the
    reset gate, are added there too); a step does one product ``h @ Wh`` of
    width ``3H`` and the gate functions. Backward computes the local
    derivatives of all steps at once, loops with a few multiplies and one
    product ``dah @ Wh.T`` per step, then forms the weight gradients as one
    product each over all steps. A unit's gates depend on that unit alone
    (only the product mixes units), so :mod:`common.parallel` may run the
    time loops on blocks of units, one per core, when it manages the cores
    and the steps are long (``for_unit_blocks``).

    With ``stateful=True`` the last hidden state of one ``forward`` is the
    initial state of the next (the gradient still stops at the boundary);
    an unset state is zeros. ``set_state(h)`` sets the initial state of the
    next ``forward`` (of that one only when the layer is not stateful);
    ``reset_state()`` forgets it. After ``backward``, ``dh`` holds the
    gradient w.r.t. the initial state.

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
        self.dh = None  # gradient w.r.t. the initial state, after backward
        self.cache = None

    def set_state(self, h):
        """Use ``h`` (N, H) as the initial hidden state of the next forward."""
        Wh = self.params[1]
        check_hidden_state("h", h, Wh.shape[0], Wh.dtype)
        self.h = h

    def reset_state(self):
        self.h = None

    def forward(self, xs):
        Wx, Wh, bx, bh = self.params
        check_ndim("xs", xs, 3, "(N, T, D)")
        check_float("xs", xs, Wx.dtype)
        N, T, D = xs.shape
        H = Wh.shape[0]
        if D != Wx.shape[0]:
            raise ValueError(f"xs has {D} features but Wx expects D = {Wx.shape[0]}")
        h0 = initial_state("hidden", self.h, N, H, Wx.dtype)

        # Time-major inside the layer: each step reads and writes contiguous blocks.
        xs_tm = xs.transpose(1, 0, 2).reshape(T * N, D)
        gates = matmul(xs_tm, Wx).reshape(T, N, 3 * H)  # becomes [r|z|n] step by step
        gates += bx
        gates[:, :, : 2 * H] += bh[: 2 * H]
        ah_ns = xp.empty((T, N, H), dtype=Wx.dtype)
        hs_tm = xp.empty((T, N, H), dtype=Wx.dtype)
        # A unit's gates depend on that unit alone: the loop may run on blocks
        # of units (the last axis of each array; Wh's columns are viewed as
        # (H, 3, H)), reading the whole previous h at each step.
        for_unit_blocks(self._forward_loop,
                        (gates.reshape(T, N, 3, H), h0, ah_ns, hs_tm, Wh.reshape(H, 3, H),
                         bh.reshape(3, H)),
                        unit_axes=(3, 1, 2, 2, 2, 1), shared=(h0, hs_tm),
                        step_multiply_adds=N * H * 3 * H)
        self.cache = (xs_tm, h0, gates, ah_ns, hs_tm)
        # Carried to the next forward when stateful; a set state serves one forward.
        self.h = hs_tm[-1].copy() if self.stateful else None
        return hs_tm.transpose(1, 0, 2)

    def _forward_loop(self, gates, h_prev, ah_ns, hs_block, Wh, bh, h0, hs_tm):
        """The time loop of ``forward`` for ``n`` of the ``H`` units (a generator).

        ``gates`` ``(T, N, 3, n)`` holds these units' ``x @ Wx + bx`` (plus
        ``bh``'s r and z parts) and becomes their ``[r | z | n]``;
        ``h_prev`` ``(N, n)`` is their initial state; their ``ah_ns``
        (``h_prev @ Wh_n + bh_n``) and ``hs_block``, each ``(T, N, n)``, are
        filled; ``Wh`` ``(H, 3, n)`` and ``bh`` ``(3, n)`` hold their columns.
        ``h0`` ``(N, H)`` and ``hs_tm`` ``(T, N, H)`` are whole: each step
        reads every unit of the previous ``h``, after the step's ``yield``.
        """
        T, N, _, n = gates.shape
        Wh = Wh.reshape(len(Wh), 3 * n)  # a copy of these units' columns, unless it is all
        bh_n = bh[2]
        h = h0
        for t in range(T):
            A = gates[t]
            ah = (h @ Wh).reshape(N, 3, n)
            A[:, :2] += ah[:, :2]
            rz = sigmoid_(A[:, :2])
            r, z = rz[:, 0], rz[:, 1]
            ah_n = xp.add(ah[:, 2], bh_n, out=ah_ns[t])
            a_n = A[:, 2]
            a_n += r * ah_n
            n_t = xp.tanh(a_n, out=a_n)
            # h_next = (1 - z) * n + z * h = n + z * (h - n)
            h_next = hs_block[t]
            xp.subtract(h_prev, n_t, out=h_next)
            h_next *= z
            h_next += n_t
            h_prev = h_next
            yield  # every unit of h_t is written; resumed when every block's is
            h = hs_tm[t]

    def backward(self, dhs):
        Wx, Wh, _, _ = self.params
        dWx, dWh, dbx, dbh = self.grads
        xs_tm, h0, gates, ah_ns, hs_tm = self.cache
        T, N, H = hs_tm.shape
        if dhs.shape != (N, T, H):
            raise ValueError(f"dhs must have shape {(N, T, H)}, got {dhs.shape}")
        check_float("dhs", dhs, Wx.dtype)

        r, z, n = gates[:, :, :H], gates[:, :, H : 2 * H], gates[:, :, 2 * H :]
        h_prev_tm = xp.concatenate([h0[None], hs_tm[:-1]], axis=0)
        # Local derivatives of all steps at once (see the module docstring):
        #   da_n = dh * dan_dh;  da_z = dh * daz_dh;  da_r = da_n * dar_dan
        dan_dh = (1 - z) * (1 - n * n)
        daz_dh = (h_prev_tm - n) * z * (1 - z)
        dar_dan = ah_ns * r * (1 - r)

        dhs_tm = dhs.transpose(1, 0, 2)
        dahs = xp.empty((T, N, 3 * H), dtype=Wx.dtype)  # [da_r | da_z | dah_n] per step
        da_ns = xp.empty((T, N, H), dtype=Wx.dtype)
        self.dh = xp.empty((N, H), dtype=Wx.dtype)
        # As in TimeLSTM.backward: a contiguous Wh.T for long steps, and
        # blocks of units, each forming its dah columns and, from all of dah,
        # its dh_prev columns.
        step_multiply_adds = N * H * 3 * H
        long_steps = step_multiply_adds >= parallel.MIN_UNIT_STEP_MULTIPLY_ADDS
        WhT = xp.ascontiguousarray(Wh.T) if long_steps else Wh.T
        for_unit_blocks(self._backward_loop,
                        (dhs_tm, dan_dh, daz_dh, dar_dan, r, z, dahs.reshape(T, N, 3, H),
                         da_ns, self.dh, WhT),
                        unit_axes=(2,) * 6 + (3, 2, 1, 1), shared=(dahs,),
                        step_multiply_adds=step_multiply_adds)

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

    def _backward_loop(self, dhs_tm, dan_dh, daz_dh, dar_dan, r, z, dahs_block, da_ns, dh0,
                       WhT, dahs):
        """The time loop of ``backward`` for ``n`` of the ``H`` units (a generator).

        Reads these units' ``dhs_tm``, local derivatives and gates ``r``,
        ``z`` (each ``(T, N, n)``); fills their ``dahs_block``
        ``(T, N, 3, n)``, ``da_ns`` ``(T, N, n)`` and initial-state gradient
        ``dh0`` ``(N, n)``. ``WhT`` ``(3H, n)`` holds their columns of
        ``Wh.T``; ``dahs`` ``(T, N, 3H)`` is whole: each step's product reads
        every unit's ``dah``, after the step's ``yield``.
        """
        dh = xp.zeros(dh0.shape, dtype=dh0.dtype)
        for t in range(len(dahs) - 1, -1, -1):
            # h_t feeds the output at t and the next step: both gradients add.
            dh = dhs_tm[t] + dh
            da_n = xp.multiply(dh, dan_dh[t], out=da_ns[t])
            dah = dahs_block[t]
            xp.multiply(da_n, dar_dan[t], out=dah[:, 0])
            xp.multiply(dh, daz_dh[t], out=dah[:, 1])
            xp.multiply(da_n, r[t], out=dah[:, 2])
            dh_direct = dh * z[t]
            yield  # every unit's dah of step t is written; resumed when every block's is
            dh = xp.matmul(dahs[t], WhT)
            dh += dh_direct
        dh0[...] = dh
