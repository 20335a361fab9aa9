"""Fully connected layers: ``y = x W + b`` for one step and for all steps."""

from common.backend import xp
from common.parallel import matmul, matmul_later
from layers._checks import (
    check_float,
    check_floating,
    check_grad,
    check_ndim,
    check_nonempty_batch,
    require_forward,
)


def _check_weights(W, b, transpose=False):
    check_floating("W", W)
    check_ndim("W", W, 2, "(M, D)" if transpose else "(D, M)")
    M = W.shape[0] if transpose else W.shape[1]
    check_ndim("b", b, 1, f"({M},)")  # a list has no .shape to compare
    if b.shape != (M,):
        layout = ", read as (M, D) with transpose=True" if transpose else ""
        raise ValueError(f"b must have shape ({M},), one bias per output of W {W.shape}"
                         f"{layout}; got {b.shape}")
    check_float("b", b, W.dtype)


class Affine:
    """``y = x @ W + b``.

    Shape:
        W: ``(D, M)``, b: ``(M,)``
        forward: x ``(N, D)`` -> y ``(N, M)``
        backward: dy ``(N, M)`` -> dx ``(N, D)``
    """

    def __init__(self, W, b):
        _check_weights(W, b)
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
        require_forward(self, self.x)
        check_grad("dy", dy, (self.x.shape[0], W.shape[1]), W.dtype)
        xp.matmul(self.x.T, dy, out=dW)
        dy.sum(axis=0, out=db)
        return dy @ W.T


def joint_weight_bias(W, b):
    """Copy ``W`` ``(D, M)`` and ``b`` ``(M,)`` into one ``(D + 1, M)`` block and
    return views ``(W, b)`` of it (the block's first ``D`` rows and its last).

    A :class:`TimeAffine` given such a pair computes ``x @ W + b`` as one
    matrix product of ``[x, 1]`` with the block, and both gradients with one
    more: the bias then costs no separate pass over the (large) output.
    """
    _check_weights(W, b)  # TimeAffine's own check, said before the copy
    Wb = xp.empty((W.shape[0] + 1, W.shape[1]), dtype=W.dtype)
    Wb[:-1] = W
    Wb[-1] = b
    return Wb[:-1], Wb[-1]


def _address(a):
    return a.data.ptr if hasattr(a.data, "ptr") else a.__array_interface__["data"][0]


def _joint_block(W, b):
    """The ``(D + 1, M)`` block that ``W`` and ``b`` are views of, if they are
    laid out as :func:`joint_weight_bias` makes them; else None."""
    block = W.base
    if block is None or b.base is not block or block.ndim != 2 or W.ndim != 2:
        return None
    D, M = W.shape
    if block.shape != (D + 1, M) or not block.flags.c_contiguous:
        return None
    row = M * block.itemsize
    if (_address(W) != _address(block) or W.strides != block.strides
            or _address(b) != _address(block) + D * row or b.strides != (block.itemsize,)):
        return None
    return block


class TimeAffine:
    """``Affine`` applied at every time step, as one matrix product.

    The ``N * T`` rows of all steps go through a single GEMM: for a language
    model's output layer that product is most of the training time, and one
    large product runs far faster than ``T`` small ones. When ``W`` and
    ``b`` come from :func:`joint_weight_bias`, the bias rides along inside
    that product (and its gradient inside the weight-gradient product).

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
        _check_weights(W, b, transpose)
        self.params = [W, b]
        self.transpose = transpose
        self.Wb = None if transpose else _joint_block(W, b)
        if self.Wb is not None:
            self.dWb = xp.zeros_like(self.Wb)
            self.grads = [self.dWb[:-1], self.dWb[-1]]
        else:
            self.grads = [xp.zeros_like(W), xp.zeros_like(b)]
        self.x = None
        self.y_shape = None  # (N, T, M) of the last forward: the shape backward takes

    def forward(self, x):
        W, b = self.params
        W_DM = W.T if self.transpose else W  # always (D, M) here
        check_ndim("x", x, 3, "(N, T, D)")
        check_nonempty_batch("x", x)
        check_float("x", x, W.dtype)
        N, T, D = x.shape
        if D != W_DM.shape[0]:
            raise ValueError(f"x has {D} features but W expects D = {W_DM.shape[0]}")
        x2 = x.reshape(N * T, D)
        self._check_joint_block()
        if self.Wb is not None:
            # [x, 1] @ [[W], [b]] = x @ W + b, in one product.
            x2_ones = xp.empty((N * T, D + 1), dtype=x.dtype)
            x2_ones[:, :D] = x2
            x2_ones[:, D] = 1
            self.x = x2_ones
            y = matmul(x2_ones, self.Wb)
        else:
            self.x = x2
            y = matmul(x2, W_DM)
            y += b
        self.y_shape = (N, T, W_DM.shape[1])
        return y.reshape(self.y_shape)

    def _check_joint_block(self):
        """A copy of the layer (``copy.deepcopy``, pickle) holds ``W``, ``b``
        and their gradients as arrays of their own, no longer views of the
        joint block: the model's ``params`` and ``grads`` are those arrays,
        so the layer computes with them from then on, as with any ``W``
        and ``b`` (reading the block, it would have read frozen weights)."""
        if self.Wb is not None and (self.params[0].base is not self.Wb
                                    or self.grads[0].base is not self.dWb):
            self.Wb = self.dWb = None

    def backward(self, dy):
        W, _ = self.params
        dW, db = self.grads
        require_forward(self, self.x)
        check_grad("dy", dy, self.y_shape, W.dtype)
        x2 = self.x
        dy2 = dy.reshape(x2.shape[0], -1)
        # dx is needed now, by the layer below; the weight gradients only at the
        # update, so they may wait for an idle core (common.parallel.later).
        if self.Wb is not None:
            dx = matmul(dy2, W.T)
            matmul_later(x2.T, dy2, out=self.dWb)  # dW and db together
        else:
            if self.transpose:
                dx = matmul(dy2, W)
                matmul_later(dy2.T, x2, out=dW)
            else:
                dx = matmul(dy2, W.T)
                matmul_later(x2.T, dy2, out=dW)
            # db = column sums of dy, as a matrix-vector product (BLAS).
            ones = xp.ones((1, dy2.shape[0]), dtype=dy2.dtype)
            matmul_later(ones, dy2, out=db[None])
        N, T = dy.shape[:2]
        return dx.reshape(N, T, -1)
