"""Tensor reductions: sum, mean, max/min with indices, var/std, norms, softmax."""

from __future__ import annotations

import builtins

import numpy as np

from ..autograd.engine import Tensor, tensor_methods
from ..dtypes import bool_, int64
from ..ops.elementwise import Abs, Maximum, Minimum
from ..ops.movement import Gather
from ..ops.reduce import (
    Amax,
    Amin,
    LogSoftmax,
    LogSumExp,
    Mean,
    Norm2,
    NormP,
    Prod,
    Softmax,
    Std,
    Sum,
    Var,
)
from .args import MinMaxResult, norm_dim, norm_dims


@tensor_methods(functions=(
    "sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std",
    "logsumexp", "norm", "softmax", "log_softmax"))
class _Reductions:
    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim: builtins.bool = False, dtype=None):
        x = self if dtype is None else self.type(dtype)
        if x.dtype == bool_:
            x = x.long()
        return Sum.apply(x, dim=norm_dims(dim, x.ndim, "sum"), keepdim=keepdim)

    def mean(self, dim=None, keepdim: builtins.bool = False, dtype=None):
        x = self if dtype is None else self.type(dtype)
        if x.dtype.kind not in "fc":
            raise TypeError(f"mean: expected a floating-point tensor, got dtype {x.dtype} "
                            "(call .float() first)")
        return Mean.apply(x, dim=norm_dims(dim, x.ndim, "mean"), keepdim=keepdim)

    def prod(self, dim=None, keepdim: builtins.bool = False):
        return Prod.apply(self, dim=norm_dims(dim, self.ndim, "prod"), keepdim=keepdim)

    def amax(self, dim=None, keepdim: builtins.bool = False):
        return Amax.apply(self, dim=norm_dims(dim, self.ndim, "amax"), keepdim=keepdim)

    def amin(self, dim=None, keepdim: builtins.bool = False):
        return Amin.apply(self, dim=norm_dims(dim, self.ndim, "amin"), keepdim=keepdim)

    def _extremum(self, dim, keepdim, arg, name):
        if dim is None:
            return (Amax if name == "max" else Amin).apply(self)
        if isinstance(dim, Tensor):  # torch.max(a, b) is elementwise
            return (Maximum if name == "max" else Minimum).apply(self, dim)
        d = norm_dim(dim, self.ndim, name)
        if self.shape and self.shape[d] == 0:
            raise ValueError(f"{name}: cannot reduce over dimension {d} of size 0")
        idx = arg(self._data, axis=d, keepdims=True)
        values = Gather.apply(self, idx, dim=d)
        if not keepdim:
            values = values.squeeze(d)
            idx = np.squeeze(idx, d)
        return MinMaxResult(values, Tensor._make(idx.astype(int64.dtype)))

    def max(self, dim=None, keepdim: builtins.bool = False):
        """max() -> value; max(dim) -> (values, indices) as torch.max."""
        return self._extremum(dim, keepdim, np.argmax, "max")

    def min(self, dim=None, keepdim: builtins.bool = False):
        return self._extremum(dim, keepdim, np.argmin, "min")

    def argmax(self, dim=None, keepdim: builtins.bool = False):
        d = None if dim is None else norm_dim(dim, self.ndim, "argmax")
        index = np.argmax(self._data, axis=d, keepdims=keepdim)
        return Tensor._make(np.asarray(index, dtype=int64.dtype))

    def argmin(self, dim=None, keepdim: builtins.bool = False):
        d = None if dim is None else norm_dim(dim, self.ndim, "argmin")
        index = np.argmin(self._data, axis=d, keepdims=keepdim)
        return Tensor._make(np.asarray(index, dtype=int64.dtype))

    def var(self, dim=None, unbiased=None, keepdim: builtins.bool = False, correction=None):
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return Var.apply(self, dim=norm_dims(dim, self.ndim, "var"), correction=correction,
                         keepdim=keepdim)

    def std(self, dim=None, unbiased=None, keepdim: builtins.bool = False, correction=None):
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return Std.apply(self, dim=norm_dims(dim, self.ndim, "std"), correction=correction,
                         keepdim=keepdim)

    def logsumexp(self, dim=None, keepdim: builtins.bool = False):
        return LogSumExp.apply(self, dim=norm_dims(dim, self.ndim, "logsumexp"), keepdim=keepdim)

    def norm(self, p=2, dim=None, keepdim: builtins.bool = False):
        axes = norm_dims(dim, self.ndim, "norm")
        if p in (2, "fro"):
            return Norm2.apply(self, dim=axes, keepdim=keepdim)
        if p == 1:
            return Sum.apply(Abs.apply(self), dim=axes, keepdim=keepdim)
        if p in (float("inf"), "inf"):
            return Amax.apply(Abs.apply(self), dim=axes, keepdim=keepdim)
        if isinstance(p, (int, float)) and p > 0:
            return NormP.apply(self, p=float(p), dim=axes, keepdim=keepdim)
        raise ValueError(f"norm: unsupported order p={p!r}; use 1, 2, inf or a positive number")

    def softmax(self, dim: int = -1):
        return Softmax.apply(self, dim=norm_dim(dim, self.ndim, "softmax"))

    def log_softmax(self, dim: int = -1):
        return LogSoftmax.apply(self, dim=norm_dim(dim, self.ndim, "log_softmax"))

