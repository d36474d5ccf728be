"""Ops that scan, scatter or rearrange along a dimension: cumsum, cumprod, scatter,
scatter_add, index_add, roll, diag and einsum. Each gradient routes values back the way the
forward moved them (no NumPy import here: everything goes through `xp`).
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp

__all__ = ["Cumsum", "Cumprod", "Scatter", "ScatterAdd", "IndexAdd", "Roll", "Diag", "Einsum"]


def _along(index, dim: int) -> tuple:
    """The full fancy index addressing `index`'s entries along `dim` (the other axes by
    position), as np.put_along_axis builds it: for scatter-adds with repeated targets."""
    grids = list(xp.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _flip(a, dim: int):
    return xp.flip(a, axis=dim)


class Cumsum(Function):
    """Running sum along dim; the gradient is the running sum of g taken from the end."""

    @staticmethod
    def forward(ctx, a, dim=0):
        ctx.dim = dim
        return xp.cumsum(a, axis=dim, dtype=a.dtype if a.dtype.kind == "f" else None)

    @staticmethod
    def backward(ctx, g):
        return _flip(xp.cumsum(_flip(g, ctx.dim), axis=ctx.dim), ctx.dim)


class Cumprod(Function):
    """Running product along dim. The gradient of input i is sum over j >= i of
    g_j * prod_{k <= j, k != i} a_k, computed exactly (zeros included) by one pass per
    position: O(n^2) along dim, which is fine for the short axes tutorials scan."""

    @staticmethod
    def forward(ctx, a, dim=0):
        ctx.dim = dim
        ctx.save_for_backward(a)
        return xp.cumprod(a, axis=dim, dtype=a.dtype if a.dtype.kind == "f" else None)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        dim = ctx.dim
        a_m = xp.moveaxis(a, dim, -1)
        g_m = xp.moveaxis(g, dim, -1)
        n = a_m.shape[-1]
        out = xp.zeros_like(a_m)
        for i in range(n):
            others = a_m.copy()
            others[..., i] = 1  # d(prod_{k<=j} a_k)/d a_i = prod with a_i replaced by 1
            partial = xp.cumprod(others, axis=-1)
            out[..., i] = (g_m[..., i:] * partial[..., i:]).sum(axis=-1)
        return xp.moveaxis(out, -1, dim)


class Scatter(Function):
    """out = a with out[index[i][j]][j] = src[i][j] along dim (torch.scatter). With repeated
    targets the last write wins, as NumPy orders it; src's gradient is g gathered back."""

    @staticmethod
    def forward(ctx, a, index, src, dim=0):
        out = a.copy()
        src = xp.broadcast_to(xp.asarray(src, dtype=a.dtype), index.shape) if (
            xp.ndim(src) == 0) else src[tuple(slice(0, n) for n in index.shape)]
        xp.put_along_axis(out, index, src, axis=dim)
        ctx.meta = (index, dim)
        return out

    @staticmethod
    def backward(ctx, g):
        index, dim = ctx.meta
        ga = None
        if ctx.needs_input_grad[0]:
            ga = g.copy()
            xp.put_along_axis(ga, index, xp.zeros((), dtype=g.dtype), axis=dim)
        gs = None
        if ctx.needs_input_grad[2]:
            gs = _into_src_shape(xp.take_along_axis(g, index, axis=dim), ctx.inputs[2])
        return ga, None, gs


def _into_src_shape(picked, src):
    """Pad the gradient of the used corner src[:index.shape] with zeros to src's shape."""
    shape = src.shape
    if picked.shape == tuple(shape):
        return picked
    out = xp.zeros(shape, dtype=picked.dtype)
    out[tuple(slice(0, n) for n in picked.shape)] = picked
    return out


class ScatterAdd(Function):
    """out = a, then out[index[i][j]][j] += src[i][j] along dim (torch.scatter_add)."""

    @staticmethod
    def forward(ctx, a, index, src, dim=0):
        out = a.copy()
        used = src[tuple(slice(0, n) for n in index.shape)]
        xp.add.at(out, _along(index, dim), used)
        ctx.meta = (index, dim)
        return out

    @staticmethod
    def backward(ctx, g):
        index, dim = ctx.meta
        gs = None
        if ctx.needs_input_grad[2]:
            gs = _into_src_shape(xp.take_along_axis(g, index, axis=dim), ctx.inputs[2])
        return g, None, gs


class IndexAdd(Function):
    """out = a, then out.select(dim, index[i]) += alpha * src.select(dim, i)."""

    @staticmethod
    def forward(ctx, a, index, src, dim=0, alpha=1):
        out = a.copy()
        moved = xp.moveaxis(out, dim, 0)  # a view: adding into it writes into out
        xp.add.at(moved, index, xp.moveaxis(src, dim, 0) * alpha)
        ctx.meta = (index, dim, alpha)
        return out

    @staticmethod
    def backward(ctx, g):
        index, dim, alpha = ctx.meta
        gs = xp.take(g, index, axis=dim) * alpha if ctx.needs_input_grad[2] else None
        return g, None, gs


class Roll(Function):
    """Shift elements along dims, wrapping around; the gradient shifts back."""

    @staticmethod
    def forward(ctx, a, shifts=0, dims=None):
        ctx.meta = (shifts, dims)
        return xp.roll(a, shifts, axis=dims)

    @staticmethod
    def backward(ctx, g):
        shifts, dims = ctx.meta
        back = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
        return xp.roll(g, back, axis=dims)


class Diag(Function):
    """1-D input: a square matrix with it on the `diagonal`-th diagonal. 2-D input: that
    diagonal as a vector. Each is the other's gradient."""

    @staticmethod
    def forward(ctx, a, diagonal=0):
        ctx.meta = (a.shape, diagonal)
        if a.ndim == 1:
            return xp.diag(a, diagonal)
        return xp.diagonal(a, diagonal).copy()

    @staticmethod
    def backward(ctx, g):
        shape, k = ctx.meta
        if len(shape) == 1:
            return xp.diagonal(g, k).copy()
        out = xp.zeros(shape, dtype=g.dtype)
        rows = xp.arange(g.shape[0]) + max(-k, 0)
        out[rows, rows + k] = g
        return out


class Einsum(Function):
    """einsum over explicit subscripts ('ij,jk->ik'); the gradient of operand i is the einsum
    of g with the other operands into i's subscripts (letters i alone sums are broadcast
    back). Subscripts are parsed by shenjing/tensor/extra.py, so no ellipsis reaches here."""

    @staticmethod
    def forward(ctx, *operands, inputs=(), output=""):
        ctx.save_for_backward(*operands)
        ctx.subs = (inputs, output)
        return xp.asarray(xp.einsum(",".join(inputs) + "->" + output, *operands))

    @staticmethod
    def backward(ctx, g):
        inputs, output = ctx.subs
        ops = ctx.saved
        grads = []
        for i, subs in enumerate(inputs):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(s, o) for j, (s, o) in enumerate(zip(inputs, ops)) if j != i]
            known = set(output).union(*[set(s) for s, _ in others])
            target = "".join(c for c in subs if c in known)
            spec = ",".join([output] + [s for s, _ in others]) + "->" + target
            gi = xp.einsum(spec, g, *[o for _, o in others])
            if target != subs:  # letters summed only within this operand: broadcast back
                expanded = [ops[i].shape[k] if c not in known else None
                            for k, c in enumerate(subs)]
                gi = xp.expand_dims(gi, tuple(k for k, n in enumerate(expanded) if n))
                gi = xp.broadcast_to(gi, ops[i].shape)
            grads.append(xp.ascontiguousarray(gi))
        return tuple(grads)
