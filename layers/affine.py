"""Fully connected layers: ``y = x W + b`` for one step and for all steps."""

from common.backend import xp
from layers._checks import check_float, check_ndim


class Affine:
    """``y = x @ W + b``.

    Shape:
        W: ``(D, M)``, b: ``(M,)``
        forward: x ``(N, D)`` -> y ``(N, M)``
        backward: dy ``(N, M)`` -> dx ``(N, D)``
    """

    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [xp.zeros_like(W), xp.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        check_ndim("x", x, 2, "(N, D)")
        check_float("x", x, W.dtype)
        if x.shape[1] != W.shape[0]:
            raise ValueError(f"x has {x.shape[1]} features but W expects D = {W.shape[0]}")
        self.x = x
        return x @ W + b

    def backward(self, dy):
        W, _ = self.params
        dW, db = self.grads
        xp.matmul(self.x.T, dy, out=dW)
        dy.sum(axis=0, out=db)
        return dy @ W.T


class TimeAffine:
    """``Affine`` applied at every time step, as one matrix product.

    The ``N * T`` rows of all steps go through a single GEMM: for a language
    model's output layer that product is most of the training time, and one
    large product runs far faster than ``T`` small ones.

    With ``transpose=True`` the layer computes ``x @ W.T + b`` for a ``W`` of
    shape ``(M, D)``: that lets a language model use its embedding matrix
    ``(V, D)`` itself as the output projection (weight tying). The same array
    then appears twice in the model's ``params``, and the optimizer sums its
    two gradients.

    Shape:
        W: ``(D, M)`` (``(M, D)`` when ``transpose``), b: ``(M,)``
        forward: x ``(N, T, D)`` -> y ``(N, T, M)``
        backward: dy ``(N, T, M)`` -> dx ``(N, T, D)``
    """

    def __init__(self, W, b, transpose=False):
        self.params = [W, b]
        self.grads = [xp.zeros_like(W), xp.zeros_like(b)]
        self.transpose = transpose
        self.x = None

    def forward(self, x):
        W, b = self.params
        W_DM = W.T if self.transpose else W  # always (D, M) here
        check_ndim("x", x, 3, "(N, T, D)")
        check_float("x", x, W.dtype)
        N, T, D = x.shape
        if D != W_DM.shape[0]:
            raise ValueError(f"x has {D} features but W expects D = {W_DM.shape[0]}")
        self.x = x
        y = x.reshape(N * T, D) @ W_DM
        y += b
        return y.reshape(N, T, -1)

    def backward(self, dy):
        W, _ = self.params
        dW, db = self.grads
        N, T, D = self.x.shape
        x2 = self.x.reshape(N * T, D)
        dy2 = dy.reshape(N * T, -1)
        if self.transpose:
            xp.matmul(dy2.T, x2, out=dW)
            dx = dy2 @ W
        else:
            xp.matmul(x2.T, dy2, out=dW)
            dx = dy2 @ W.T
        dy2.sum(axis=0, out=db)
        return dx.reshape(N, T, D)
