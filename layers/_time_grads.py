"""The products a recurrent Time layer forms over all steps at once.

Once its time loop has filled ``das`` ``(T, N, G)``, the gradient of every
step's pre-activation ``a_t = x_t @ Wx + h_{t-1} @ Wh + b``, the rest of a
``TimeRNN`` (``G = H``) or ``TimeLSTM`` (``G = 4H``) backward is the same
three products and one sum over all ``T * N`` rows.
"""

from common.backend import xp
from common.parallel import later, matmul, matmul_later


def input_and_weight_grads(das, xs_tm, h0, hs_tm, Wx, grads, x_static=None):
    """Return ``(dxs, dx_static)``: ``dxs`` ``(N, T, D)``, and ``dx_static``
    ``(N, S)`` when ``x_static`` is given (else None); fill ``grads = [dWx, dWh, db]``.

    ``xs_tm`` ``(T*N, D)`` (``(T*N, D - S)`` with ``x_static``) are the inputs
    and ``hs_tm`` ``(T, N, H)`` the hidden states of the forward (time-major),
    ``h0`` ``(N, H)`` the initial state, or None when it was zeros (its rows
    would add nothing to ``dWh``). ``x_static`` ``(N, S)``: inputs that were
    the same at every step, read by the first ``S`` rows of ``Wx``
    (``TimeLSTM.forward(xs, x_static)``); their gradient is the sum over the
    steps, taken before the products. ``dxs`` is needed now, by the layer
    below; the weight gradients only at the update, so they may wait for an
    idle core (:func:`common.parallel.later`).
    """
    dWx, dWh, db = grads
    T, N, G = das.shape
    S = 0 if x_static is None else x_static.shape[1]
    das2 = das.reshape(T * N, G)
    dxs_tm = matmul(das2, Wx[S:].T).reshape(T, N, -1)
    matmul_later(xs_tm.T, das2, out=dWx[S:])
    if h0 is not None:
        h_prev_tm = xp.concatenate([h0[None], hs_tm[:-1]], axis=0).reshape(T * N, -1)
        matmul_later(h_prev_tm.T, das2, out=dWh)
    elif T > 1:
        matmul_later(hs_tm[:-1].reshape((T - 1) * N, -1).T, das[1:].reshape((T - 1) * N, G),
                     out=dWh)
    else:
        dWh[...] = 0
    later(das2.sum, axis=0, out=db)
    dx_static = None
    if x_static is not None:
        das_sum = das.sum(axis=0)  # (N, G)
        matmul_later(x_static.T, das_sum, out=dWx[:S])
        dx_static = matmul(das_sum, Wx[:S].T)
    return dxs_tm.transpose(1, 0, 2), dx_static
