"""Ops that move data without arithmetic: reshape, permute, expand, repeat, cat, pad, flip,
indexing and gather. Their gradients route values back to where they came from.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp

__all__ = ["Reshape", "Permute", "Expand", "Repeat", "Cat", "Pad", "Flip", "GetItem", "SetItem",
           "Gather"]


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape=None):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims=None):
        ctx.dims = dims
        return xp.transpose(a, dims)

    @staticmethod
    def backward(ctx, g):
        return xp.transpose(g, xp.argsort(ctx.dims))


class Expand(Function):
    """broadcast_to / expand: a read-only view; the gradient is summed back centrally."""

    @staticmethod
    def forward(ctx, a, shape=None):
        return xp.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return g


class Repeat(Function):
    """torch's repeat (NumPy's tile): the gradient sums over the copies."""

    @staticmethod
    def forward(ctx, a, repeats=None):
        ctx.meta = (a.shape, repeats)
        return xp.tile(a, repeats)

    @staticmethod
    def backward(ctx, g):
        shape, repeats = ctx.meta
        shape = (1,) * (len(repeats) - len(shape)) + tuple(shape)
        split = []
        for r, n in zip(repeats, shape):
            split += [r, n]
        g = g.reshape(split).sum(axis=tuple(range(0, 2 * len(shape), 2)))
        return g.reshape(ctx.meta[0])


class Cat(Function):
    """Concatenate any number of tensors along `dim`."""

    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.meta = (dim, xp.cumsum([a.shape[dim] for a in arrays])[:-1])
        return xp.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        dim, cuts = ctx.meta
        return tuple(xp.split(g, cuts, axis=dim))


class Pad(Function):
    """Constant padding; `pad_width` is NumPy's ((before, after), ...) for every axis."""

    @staticmethod
    def forward(ctx, a, pad_width=None, value=0.0):
        ctx.slices = tuple(slice(b, b + n) for (b, _), n in zip(pad_width, a.shape))
        return xp.pad(a, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.slices]


class Flip(Function):
    @staticmethod
    def forward(ctx, a, dims=None):
        ctx.dims = dims
        return xp.flip(a, dims)

    @staticmethod
    def backward(ctx, g):
        return xp.flip(g, ctx.dims)


def _is_basic(index) -> bool:
    """True when an index selects each element at most once (no integer arrays)."""
    items = index if isinstance(index, tuple) else (index,)
    for it in items:
        if isinstance(it, xp.ndarray) and it.dtype != bool:
            return False
        if isinstance(it, (list, tuple)):
            return False
    return True


class GetItem(Function):
    """x[index] with ints, slices, None, Ellipsis, boolean masks and integer arrays.

    Integer-array indices may repeat an element; their gradients accumulate (xp.add.at).
    """

    op_name = "index"

    @staticmethod
    def forward(ctx, a, index=None):
        ctx.meta = (a.shape, a.dtype, index)
        out = a[index]
        return out

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.meta
        gx = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            gx[index] = g
        else:
            xp.add.at(gx, index, g)
        return gx


class SetItem(Function):
    """`a` with `a[index]` replaced by `v` (broadcast, cast to a's dtype), out of place: the
    graph form of `x[index] = v` and `copy_` on a tensor inside the graph. The last write
    wins where an integer index repeats, so v's gradient is taken where it was written."""

    op_name = "setitem"

    @staticmethod
    def forward(ctx, a, v, index=None):
        out = a.copy()
        out[index] = v
        ctx.meta = index
        return out

    @staticmethod
    def backward(ctx, g):
        index = ctx.meta
        ga = None
        if ctx.needs_input_grad[0]:
            ga = g.copy()
            ga[index] = 0
        gv = g[index] if ctx.needs_input_grad[1] else None  # apply sums it to v's shape
        return ga, gv


def along_axis_index(idx: xp.ndarray, axis: int) -> tuple:
    """Full fancy index equivalent to take_along_axis(·, idx, axis)."""
    grids = list(xp.ogrid[tuple(slice(n) for n in idx.shape)])  # a tuple in NumPy 2
    grids[axis] = idx
    return tuple(grids)


class Gather(Function):
    """torch.gather / take_along_dim: out[..., i, ...] = a[..., index[..., i, ...], ...]."""

    @staticmethod
    def forward(ctx, a, index, dim=0):
        ctx.meta = (a.shape, index, dim)
        return xp.take_along_axis(a, index, axis=dim)

    @staticmethod
    def backward(ctx, g):
        shape, index, dim = ctx.meta
        gx = xp.zeros(shape, dtype=g.dtype)
        xp.add.at(gx, along_axis_index(index, dim), g)
        return gx, None
