"""Matrix multiplication with torch.matmul's rules: 1-D operands and batch broadcasting."""

from __future__ import annotations

from ..autograd.engine import Function, _unbroadcast
from ..backend import xp

__all__ = ["MatMul"]


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        na, nb = ctx.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:  # the hot path: one GEMM per gradient
            return (g @ b.T if na else None), (a.T @ g if nb else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1:
            g = xp.expand_dims(g, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        ga = gb = None
        if na:
            ga = _unbroadcast(g @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if nb:
            gb = _unbroadcast(xp.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb
