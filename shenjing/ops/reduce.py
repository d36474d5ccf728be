"""Reductions and the softmax family, with `dim` (int, tuple or None) and `keepdim`.

`dim` arrives here already normalized by the Tensor layer: a tuple of non-negative axes,
or None for all axes.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp

__all__ = ["Sum", "Mean", "Prod", "Amax", "Amin", "Var", "Std", "LogSumExp", "Norm2", "NormP",
           "Softmax", "LogSoftmax"]


def _expand(g: xp.ndarray, shape: tuple, axes, keepdim: bool) -> xp.ndarray:
    """Broadcast a reduced gradient back over the reduced axes (a read-only view)."""
    if axes is None:
        return xp.broadcast_to(g.reshape((1,) * len(shape)), shape)
    if not keepdim:
        g = xp.expand_dims(g, axes)
    return xp.broadcast_to(g, shape)


def _count(shape: tuple, axes) -> int:
    if axes is None:
        return int(xp.prod(shape, dtype=xp.int64))
    return int(xp.prod([shape[a] for a in axes], dtype=xp.int64))


class Sum(Function):
    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        ctx.meta = (a.shape, dim, keepdim)
        return xp.sum(a, axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return _expand(g, *ctx.meta)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        ctx.meta = (a.shape, dim, keepdim)
        return xp.mean(a, axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        shape, dim, keepdim = ctx.meta
        n = _count(shape, dim)
        return _expand(g * (1 / max(n, 1)), shape, dim, keepdim)


class Prod(Function):
    """Product; the gradient is the product of all *other* elements (exact with zeros)."""

    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        ctx.save_for_backward(a)
        ctx.meta = (dim, keepdim)
        return xp.prod(a, axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        dim, keepdim = ctx.meta
        axes = tuple(range(a.ndim)) if dim is None else dim
        rest = tuple(i for i in range(a.ndim) if i not in axes)
        moved = xp.transpose(a, rest + axes)
        flat = moved.reshape(moved.shape[: len(rest)] + (-1,))
        ones = xp.ones(flat.shape[:-1] + (1,), dtype=a.dtype)
        left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
        right = xp.cumprod(xp.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = (left * right).reshape(moved.shape)
        others = xp.transpose(others, xp.argsort(rest + axes))
        return others * _expand(g, a.shape, dim, keepdim)


class _Extremum(Function):
    """amax/amin: the gradient is shared evenly among tied extreme elements, as in torch."""

    reduce = staticmethod(xp.max)

    @classmethod
    def _fwd(cls, ctx, a, dim, keepdim):
        if a.size == 0:
            raise ValueError("cannot reduce an empty tensor: it has no maximum or minimum")
        out = cls.reduce(a, axis=dim, keepdims=True)
        ctx.save_for_backward(a, out)
        ctx.meta = (dim, keepdim)
        return out if keepdim else (out.reshape(()) if dim is None else xp.squeeze(out, dim))

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved
        dim, keepdim = ctx.meta
        mask = a == out
        count = mask.sum(axis=dim, keepdims=True).astype(a.dtype)
        # Every array here follows a's memory layout (out and share too), so the one
        # full-size pass runs in memory order and a batch-innermost conv output gets its
        # gradient in its own layout; a pass over mixed layouts is ~10x slower (W5).
        share = xp.empty_like(out, dtype=xp.result_type(g, count))
        xp.divide(_expand(g, out.shape, dim, keepdim), count, out=share)
        return xp.multiply(mask, share, out=xp.empty_like(a, dtype=share.dtype))


class Amax(_Extremum):
    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        return Amax._fwd(ctx, a, dim, keepdim)


class Amin(_Extremum):
    reduce = staticmethod(xp.min)

    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        return Amin._fwd(ctx, a, dim, keepdim)


class Var(Function):
    """Variance with Bessel's `correction` (1 by default, as torch.var)."""

    @staticmethod
    def forward(ctx, a, dim=None, correction=1, keepdim=False):
        centered = a - xp.mean(a, axis=dim, keepdims=True)
        n = _count(a.shape, dim)
        denom = max(n - correction, 0)
        ctx.save_for_backward(centered)
        ctx.meta = (dim, keepdim, denom)
        with xp.errstate(divide="ignore", invalid="ignore"):
            return xp.sum(centered * centered, axis=dim, keepdims=keepdim) / a.dtype.type(denom)

    @staticmethod
    def backward(ctx, g):
        (centered,) = ctx.saved
        dim, keepdim, denom = ctx.meta
        scale = 2 / denom if denom else float("nan")  # no degrees of freedom: nan, as torch
        return _expand(g, centered.shape, dim, keepdim) * centered * scale


class Std(Var):
    """sqrt(var) in one op so that zero spread gets gradient 0 (as torch), not sqrt's inf."""

    @staticmethod
    def forward(ctx, a, dim=None, correction=1, keepdim=False):
        out = xp.sqrt(Var.forward(ctx, a, dim, correction, keepdim))
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.out  # where it is 0, every centered value is 0 and so is the gradient
        return Var.backward(ctx, g / (2 * xp.where(out == 0, 1, out)))


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        m = xp.max(a, axis=dim, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.sum(xp.exp(a - m), axis=dim, keepdims=True)) + m
        ctx.save_for_backward(a, out)
        ctx.meta = (dim, keepdim)
        return out if keepdim else (out.reshape(()) if dim is None else xp.squeeze(out, dim))

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved
        dim, keepdim = ctx.meta
        return _expand(g, a.shape, dim, keepdim) * xp.exp(a - out)


class Norm2(Function):
    """Euclidean norm; its gradient at the zero vector is 0 (the subgradient torch picks)."""

    op_name = "norm"

    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        out = xp.sqrt(xp.sum(a * a, axis=dim, keepdims=True))
        ctx.save_for_backward(a, out)
        ctx.meta = (dim, keepdim)
        return out if keepdim else (out.reshape(()) if dim is None else xp.squeeze(out, dim))

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved
        dim, keepdim = ctx.meta
        safe = xp.where(out == 0, 1, out)
        return _expand(g, a.shape, dim, keepdim) * (a / safe)


class NormP(Function):
    """(sum |a| ** p) ** (1 / p) for p other than 1, 2 and inf; 0 gradient at the zero
    vector, as torch (the composition through pow would give inf * 0 = nan there)."""

    op_name = "norm"

    @staticmethod
    def forward(ctx, a, p=3.0, dim=None, keepdim=False):
        absa = xp.abs(a)
        out = xp.sum(absa**p, axis=dim, keepdims=True) ** (1.0 / p)
        ctx.save_for_backward(a, absa, out)
        ctx.meta = (p, dim, keepdim)
        return out if keepdim else (out.reshape(()) if dim is None else xp.squeeze(out, dim))

    @staticmethod
    def backward(ctx, g):
        a, absa, out = ctx.saved
        p, dim, keepdim = ctx.meta
        ratio = absa / xp.where(out == 0, 1, out)
        return _expand(g, a.shape, dim, keepdim) * xp.sign(a) * ratio ** (p - 1)


class Softmax(Function):
    """Softmax along one axis, stable for logits of any magnitude (max subtracted first)."""

    @staticmethod
    def forward(ctx, a, dim=-1):
        e = xp.exp(a - xp.max(a, axis=dim, keepdims=True))
        e /= xp.sum(e, axis=dim, keepdims=True)
        ctx.save_for_backward(e)
        ctx.dim = dim
        return e

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved
        gy = g * y
        return gy - y * xp.sum(gy, axis=ctx.dim, keepdims=True)


class LogSoftmax(Function):
    op_name = "log_softmax"

    @staticmethod
    def forward(ctx, a, dim=-1):
        shifted = a - xp.max(a, axis=dim, keepdims=True)
        out = shifted - xp.log(xp.sum(xp.exp(shifted), axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g - xp.exp(out) * xp.sum(g, axis=ctx.dim, keepdims=True)
