"""Tensor shape ops (reshape, permute, split, index, ...) and the functions that join or
pick tensors: matmul, where, cat, stack, pad, one_hot."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..autograd.engine import Tensor, tensor_methods
from ..dtypes import int64
from ..ops.elementwise import Where
from ..ops.linalg import MatMul
from ..ops.movement import Cat, Expand, Flip, Gather, GetItem, Pad, Permute, Repeat, Reshape
from .args import as_operand, const, index_arg, norm_dim, norm_dims, raw, shape_arg

__all__ = ["matmul", "where", "cat", "concat", "concatenate", "stack", "pad", "one_hot"]


@tensor_methods(functions=(
    "reshape", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "broadcast_to",
    "split", "chunk", "flip", "gather", "take_along_dim", "t", "narrow", "unbind",
    "index_select"))
class _Shape:
    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        shape = shape_arg(shape)
        try:
            return Reshape.apply(self, shape=shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(self.shape)} "
                             f"({self.numel()} elements) into shape {shape}") from None

    view = reshape

    def view_as(self, other):
        return self.reshape(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        s = norm_dim(start_dim, self.ndim, "flatten")
        e = norm_dim(end_dim, self.ndim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        return self.reshape(shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])

    def unflatten(self, dim: int, sizes):
        d = norm_dim(dim, self.ndim, "unflatten")
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dims = norm_dims(dim, self.ndim, "squeeze") or ()
        return self.reshape(tuple(n for i, n in enumerate(self.shape)
                                  if not (i in dims and n == 1)))

    def unsqueeze(self, dim: int):
        d = norm_dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def permute(self, *dims):
        dims = shape_arg(dims)
        axes = tuple(norm_dim(d, self.ndim, "permute") for d in dims) if self.ndim else dims
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of the "
                             f"{self.ndim} dimensions of a tensor of shape {tuple(self.shape)}")
        return Permute.apply(self, dims=axes)

    def transpose(self, dim0: int, dim1: int):
        a, b = norm_dim(dim0, self.ndim, "transpose"), norm_dim(dim1, self.ndim, "transpose")
        dims = list(range(self.ndim))
        dims[a], dims[b] = dims[b], dims[a]
        return Permute.apply(self, dims=tuple(dims))

    swapaxes = transpose

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def expand(self, *shape):
        shape = shape_arg(shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: target shape {shape} has fewer dimensions than the "
                             f"tensor's shape {tuple(self.shape)}")
        full = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        return self.broadcast_to(full)

    def broadcast_to(self, *shape):
        shape = shape_arg(shape)
        try:
            np.broadcast_shapes(self.shape, shape)
            if np.broadcast_shapes(self.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {tuple(self.shape)} cannot be "
                             f"broadcast to shape {shape}") from None
        return Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.broadcast_to(other.shape)

    def repeat(self, *repeats):
        repeats = shape_arg(repeats)
        if len(repeats) < self.ndim:
            raise ValueError(f"repeat: {len(repeats)} repeat counts given for a tensor with "
                             f"{self.ndim} dimensions (need at least {self.ndim})")
        return Repeat.apply(self, repeats=repeats)

    def split(self, split_size_or_sections, dim: int = 0):
        d = norm_dim(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError("split: split_size must be positive")
            sizes = [min(split_size_or_sections, n - i)
                     for i in range(0, n, split_size_or_sections)]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sections {sizes} sum to {sum(sizes)}, but dimension "
                                 f"{d} has size {n}")
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def chunk(self, chunks: int, dim: int = 0):
        d = norm_dim(dim, self.ndim, "chunk")
        size = -(-self.shape[d] // chunks)
        return self.split(max(size, 1), d)

    def narrow(self, dim: int, start: int, length: int):
        d = norm_dim(dim, self.ndim, "narrow")
        index = (slice(None),) * d + (slice(start, start + length),)
        return GetItem.apply(self, index=index)

    def unbind(self, dim: int = 0):
        d = norm_dim(dim, self.ndim, "unbind")
        return tuple(self.select(d, i) for i in range(self.shape[d]))

    def select(self, dim: int, index: int):
        d = norm_dim(dim, self.ndim, "select")
        return GetItem.apply(self, index=(slice(None),) * d + (index,))

    def flip(self, *axes):
        return Flip.apply(self, dims=norm_dims(shape_arg(axes), self.ndim, "flip"))

    def gather(self, dim: int, index):
        d = norm_dim(dim, self.ndim, "gather")
        return Gather.apply(self, raw(index).astype(np.intp, copy=False), dim=d)

    def take_along_dim(self, indices, dim: int):
        return self.gather(dim, indices)

    def __getitem__(self, index):
        return GetItem.apply(self, index=index_arg(index))

    def index_select(self, dim: int, index):
        d = norm_dim(dim, self.ndim, "index_select")
        return GetItem.apply(self, index=(slice(None),) * d + (raw(index),))

    def one_hot(self, num_classes: int = -1):
        return one_hot(self, num_classes)


def matmul(a: Tensor, b) -> Tensor:
    """torch.matmul, with a clear error for mismatched inner dimensions."""
    b = as_operand(b)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                         f"{tuple(sa)} and {tuple(sb)}")
    ka = sa[-1]
    kb = sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        raise ValueError(f"matmul: shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied "
                         f"(inner dimensions {ka} and {kb} differ)")
    if len(sa) > 2 or len(sb) > 2:
        try:
            np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of shapes {tuple(sa)} and "
                             f"{tuple(sb)} cannot be broadcast together") from None
    return MatMul.apply(a, b)


def where(cond, a=None, b=None) -> Tensor:
    """Elements of a where cond is true, else of b (a and b may be scalars); `where(cond)`
    alone is `cond.nonzero(as_tuple=True)`, as in torch."""
    if a is None and b is None:
        return as_operand(cond).nonzero(as_tuple=True)
    c = raw(cond)
    a = a if isinstance(a, Tensor) else const(a)
    b = b if isinstance(b, Tensor) else const(b)
    return Where.apply(np.asarray(c, dtype=bool), a, b)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate tensors along an existing dimension."""
    tensors = [as_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ndim = tensors[0].ndim
    d = norm_dim(dim, ndim, "cat")
    ref = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.ndim != ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref)) if j != d):
            raise ValueError(f"cat: tensor {i} has shape {tuple(t.shape)}, which does not "
                             f"match tensor 0's shape {tuple(ref)} except in dimension {d}")
    return Cat.apply(*tensors, dim=d)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Stack same-shaped tensors along a new dimension."""
    tensors = [as_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have the same shape; tensor {i} has "
                             f"shape {tuple(t.shape)}, tensor 0 has {tuple(tensors[0].shape)}")
    d = norm_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([t.unsqueeze(d) for t in tensors], d)


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """torch.nn.functional.pad: `pad` lists (left, right) pairs starting from the last dim."""
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; use 'constant'")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: padding {tuple(pad)} must have an even length of at most "
                         f"2 * ndim = {2 * x.ndim}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {tuple(pad)} is not supported")
    width = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        width[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return Pad.apply(x, pad_width=tuple(width), value=value)


def one_hot(x: Tensor, num_classes: int = -1) -> Tensor:
    """Integer class indices -> int64 one-hot vectors along a new last dimension."""
    idx = raw(x)
    if np.asarray(idx).dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got "
                        f"{np.asarray(idx).dtype}")
    idx = np.asarray(idx)
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got range "
                         f"[{idx.min()}, {idx.max()}]")
    out = np.zeros(idx.shape + (num_classes,), dtype=int64.dtype)
    np.put_along_axis(out, idx[..., None], 1, axis=-1)
    return Tensor._make(out)
