"""The products a recurrent Time layer forms over all steps at once.

Once its time loop has filled ``das`` ``(T, N, G)``, the gradient of every
step's pre-activation ``a_t = x_t @ Wx + h_{t-1} @ Wh + b``, the rest of a
``TimeRNN`` (``G = H``) or ``TimeLSTM`` (``G = 4H``) backward is the same
three products and one sum over all ``T * N`` rows.
"""

from common.backend import xp
from common.parallel import later, matmul, matmul_later


def input_and_weight_grads(das, xs_tm, h0, hs_tm, Wx, grads):
    """Return ``dxs`` ``(N, T, D)``; fill ``grads = [dWx, dWh, db]``.

    ``xs_tm`` ``(T*N, D)`` are the inputs and ``hs_tm`` ``(T, N, H)`` the
    hidden states of the forward (time-major), ``h0`` ``(N, H)`` the initial
    state. ``dxs`` is needed now, by the layer below; the weight gradients
    only at the update, so they may wait for an idle core
    (:func:`common.parallel.later`).
    """
    dWx, dWh, db = grads
    T, N, G = das.shape
    das2 = das.reshape(T * N, G)
    h_prev_tm = xp.concatenate([h0[None], hs_tm[:-1]], axis=0).reshape(T * N, -1)
    dxs_tm = matmul(das2, Wx.T).reshape(T, N, -1)
    matmul_later(xs_tm.T, das2, out=dWx)
    matmul_later(h_prev_tm.T, das2, out=dWh)
    later(das2.sum, axis=0, out=db)
    return dxs_tm.transpose(1, 0, 2)
