"""`shenjing.linalg`: the vector and matrix norms of torch.linalg, composed from Tensor ops
(so they are differentiable through the reductions they use)."""

from __future__ import annotations

import math

from .autograd.engine import Tensor
from .tensor.args import as_operand, norm_dims

__all__ = ["norm", "vector_norm", "matrix_norm"]


def vector_norm(x, ord: float = 2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The ord-norm of x's entries (over `dim`, or all of them when dim is None):
    ord inf/-inf is max/min |x|, 0 counts non-zeros, other ords are (sum |x|^ord)^(1/ord)."""
    x = as_operand(x)
    if dtype is not None:
        x = x.type(dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"vector_norm: expected a floating-point tensor, got {x.dtype}")
    dims = norm_dims(dim, x.ndim, "vector_norm")
    if ord == math.inf:
        return x.abs().amax(dim=dims, keepdim=keepdim)
    if ord == -math.inf:
        return x.abs().amin(dim=dims, keepdim=keepdim)
    if ord == 0:
        return (x != 0).type(x.dtype).sum(dim=dims, keepdim=keepdim)
    if isinstance(ord, (int, float)) and ord > 0:
        return x.norm(p=ord, dim=dims, keepdim=keepdim)
    raise ValueError(f"vector_norm: unsupported ord={ord!r}; use a positive number, 0 or inf")


def matrix_norm(x, ord="fro", dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """Frobenius ('fro'), 1, -1, inf and -inf norms over the two dims `dim`."""
    x = as_operand(x)
    if x.ndim < 2:
        raise ValueError(f"matrix_norm: expected at least 2 dimensions, got {tuple(x.shape)}")
    rows, cols = (d % x.ndim for d in dim)
    if ord == "fro":
        return x.norm(p=2, dim=(rows, cols), keepdim=keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        sum_dim, pick_dim = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = x.abs().sum(dim=sum_dim, keepdim=True)
        out = sums.amax(dim=pick_dim, keepdim=True) if ord > 0 else sums.amin(
            dim=pick_dim, keepdim=True)
        return out if keepdim else out.squeeze((rows, cols))
    raise ValueError(f"matrix_norm: unsupported ord={ord!r}; use 'fro', 1, -1, inf or -inf "
                     f"(the spectral and nuclear norms need an SVD shenjing does not have)")


def norm(x, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.norm: a vector norm for 1 dim (or all entries when ord is None), a matrix
    norm for 2 dims (or a 2-D input with an ord)."""
    x = as_operand(x)
    if dim is None and ord is None:
        return vector_norm(x.flatten(), 2, dtype=dtype) if not keepdim else vector_norm(
            x, 2, keepdim=True, dtype=dtype)
    dims = (dim,) if isinstance(dim, int) else dim
    if dims is None:
        if x.ndim == 1:
            return vector_norm(x, ord, keepdim=keepdim, dtype=dtype)
        if x.ndim == 2:
            return matrix_norm(x, ord, keepdim=keepdim)
        raise ValueError("linalg.norm: with an ord, the input must be 1-D or 2-D unless dim "
                         "is given")
    if len(dims) == 1:
        return vector_norm(x, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
    if len(dims) == 2:
        return matrix_norm(x, "fro" if ord is None else ord, tuple(dims), keepdim)
    raise ValueError(f"linalg.norm: dim must name 1 or 2 dimensions, got {dim!r}")
