"""The rest of the Tensor methods tutorials use: matrix products, sorting and top-k, scans,
triangles, scatters, index adds, rolls, new_* constructors and elementwise helpers.

Differentiable ones compose existing ops where they can (sort = argsort + gather, tril =
where) and use the primitives in shenjing/ops/indexing.py where they cannot.
"""

from __future__ import annotations

import builtins

import numpy as np

from ..autograd.engine import Tensor, tensor_methods
from ..dtypes import bool_, get_default_dtype, resolve_dtype
from ..ops.elementwise import Where
from ..ops.indexing import Cumprod, Cumsum, Diag, Einsum, IndexAdd, Roll, Scatter, ScatterAdd
from ..ops.movement import Gather
from .args import MinMaxResult, as_operand, const, norm_dim, raw, shape_arg
from .convert import to_array
from .inplace import _update
from .shape import matmul

__all__ = ["einsum", "SortResult"]

SortResult = MinMaxResult  # (values, indices) with .values / .indices, as torch.return_types


def _check_index(index, op: str) -> np.ndarray:
    idx = np.asarray(raw(index))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {idx.dtype}")
    return idx.astype(np.int64, copy=False)


def _matrix_check(x: Tensor, ndim: int, op: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{op}: expected a {ndim}-D tensor, got shape {tuple(x.shape)}")


@tensor_methods(functions=(
    "mm", "bmm", "addmm", "topk", "sort", "argsort", "kthvalue", "cumsum", "cumprod", "tril",
    "triu", "scatter", "scatter_add", "index_add", "repeat_interleave", "roll", "lerp",
    "floor_divide", "remainder", "fmod", "nan_to_num", "logical_and", "logical_or",
    "logical_xor", "diag", "outer", "isclose", "masked_select", "trace", "nonzero",
    "argwhere"))
class _Extra:
    # ------------------------------------------------------------------ matrix products
    def mm(self, mat2) -> Tensor:
        """Matrix product of two 2-D tensors (no broadcasting, as torch.mm)."""
        mat2 = as_operand(mat2)
        _matrix_check(self, 2, "mm")
        _matrix_check(mat2, 2, "mm")
        return matmul(self, mat2)

    def bmm(self, mat2) -> Tensor:
        """Batched product of (b, n, m) and (b, m, p) tensors."""
        mat2 = as_operand(mat2)
        _matrix_check(self, 3, "bmm")
        _matrix_check(mat2, 3, "bmm")
        if self.shape[0] != mat2.shape[0]:
            raise ValueError(f"bmm: batch sizes differ: {tuple(self.shape)} and "
                             f"{tuple(mat2.shape)}")
        return matmul(self, mat2)

    def addmm(self, mat1, mat2, *, beta: float = 1, alpha: float = 1) -> Tensor:
        """beta * self + alpha * (mat1 @ mat2)."""
        prod = as_operand(mat1).mm(mat2)
        prod = prod if alpha == 1 else prod * alpha
        return prod + (self if beta == 1 else self * beta)

    def outer(self, vec2) -> Tensor:
        vec2 = as_operand(vec2)
        _matrix_check(self, 1, "outer")
        _matrix_check(vec2, 1, "outer")
        return self.unsqueeze(1) * vec2.unsqueeze(0)

    ger = outer

    def trace(self) -> Tensor:
        _matrix_check(self, 2, "trace")
        return self.diag().sum()

    # ------------------------------------------------------------------ sorting
    def argsort(self, dim: int = -1, descending: builtins.bool = False,
                stable: builtins.bool = False) -> Tensor:
        d = norm_dim(dim, self.ndim, "argsort")
        if self.ndim == 0:
            return Tensor._make(np.zeros((), dtype=np.int64))
        key = -self._data if descending and self.dtype != bool_ else self._data
        if descending and self.dtype == bool_:
            key = ~self._data
        return Tensor._make(np.argsort(key, axis=d, kind="stable").astype(np.int64))

    def sort(self, dim: int = -1, descending: builtins.bool = False,
             stable: builtins.bool = False) -> MinMaxResult:
        """(values, indices) sorted along dim; values carry the gradient back."""
        idx = self.argsort(dim, descending)
        if self.ndim == 0:
            return MinMaxResult(self * 1, idx)
        return MinMaxResult(Gather.apply(self, idx._data, dim=norm_dim(dim, self.ndim,
                                                                          "sort")), idx)

    def topk(self, k: int, dim: int = -1, largest: builtins.bool = True,
             sorted: builtins.bool = True) -> MinMaxResult:
        """The k largest (or smallest) entries along dim and their indices."""
        d = norm_dim(dim, self.ndim, "topk")
        n = self.shape[d] if self.ndim else 1
        if not 0 <= int(k) <= n:
            raise ValueError(f"topk: k={k} is out of range for a dimension of size {n}")
        idx = self.argsort(d, descending=largest)._data
        idx = np.take(idx, np.arange(int(k)), axis=d) if self.ndim else idx
        return MinMaxResult(Gather.apply(self, idx, dim=d) if self.ndim else self * 1,
                            Tensor._make(idx))

    def kthvalue(self, k: int, dim: int = -1, keepdim: builtins.bool = False) -> MinMaxResult:
        """The k-th smallest entry (1-based) along dim and its index."""
        d = norm_dim(dim, self.ndim, "kthvalue")
        n = self.shape[d] if self.ndim else 1
        if not 1 <= int(k) <= n:
            raise ValueError(f"kthvalue: k={k} is out of range [1, {n}] for dimension {d}")
        if self.ndim == 0:
            return MinMaxResult(self * 1, Tensor._make(np.zeros((), dtype=np.int64)))
        idx = np.take(self.argsort(d)._data, [int(k) - 1], axis=d)
        values = Gather.apply(self, idx, dim=d)
        if not keepdim:
            values, idx = values.squeeze(d), np.squeeze(idx, d)
        return MinMaxResult(values, Tensor._make(idx))

    # ------------------------------------------------------------------ scans, triangles
    def cumsum(self, dim: int, dtype=None) -> Tensor:
        x = self if dtype is None else self.type(dtype)
        if x.dtype == bool_:
            x = x.long()
        return Cumsum.apply(x, dim=norm_dim(dim, x.ndim, "cumsum"))

    def cumprod(self, dim: int, dtype=None) -> Tensor:
        x = self if dtype is None else self.type(dtype)
        if x.dtype == bool_:
            x = x.long()
        return Cumprod.apply(x, dim=norm_dim(dim, x.ndim, "cumprod"))

    def _triangle(self, diagonal: int, lower: builtins.bool, op: str) -> Tensor:
        if self.ndim < 2:
            raise ValueError(f"{op}: expected a tensor with at least 2 dimensions, got shape "
                             f"{tuple(self.shape)}")
        rows, cols = self.shape[-2:]
        keep = (np.tri(rows, cols, int(diagonal), dtype=bool) if lower
                else ~np.tri(rows, cols, int(diagonal) - 1, dtype=bool))
        return Where.apply(keep, self, np.zeros((), dtype=self.dtype))

    def tril(self, diagonal: int = 0) -> Tensor:
        return self._triangle(diagonal, True, "tril")

    def triu(self, diagonal: int = 0) -> Tensor:
        return self._triangle(diagonal, False, "triu")

    def diag(self, diagonal: int = 0) -> Tensor:
        """1-D: a matrix with this on a diagonal; 2-D: that diagonal as a vector."""
        if self.ndim not in (1, 2):
            raise ValueError(f"diag: expected a 1-D or 2-D tensor, got shape "
                             f"{tuple(self.shape)}")
        return Diag.apply(self, diagonal=int(diagonal))

    def roll(self, shifts, dims=None) -> Tensor:
        if dims is None:
            return Roll.apply(self.flatten(), shifts=int(shifts), dims=0).reshape(self.shape)
        if isinstance(shifts, (list, tuple)) != isinstance(dims, (list, tuple)):
            raise ValueError("roll: shifts and dims must both be ints or both sequences")
        if isinstance(dims, (list, tuple)):
            if len(shifts) != len(dims):
                raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
            return Roll.apply(self, shifts=tuple(int(s) for s in shifts),
                              dims=tuple(norm_dim(d, self.ndim, "roll") for d in dims))
        return Roll.apply(self, shifts=int(shifts), dims=norm_dim(dims, self.ndim, "roll"))

    # ------------------------------------------------------------------ scatter / index
    def _scatter_args(self, dim, index, src, op: str):
        d = norm_dim(dim, self.ndim, op)
        idx = _check_index(index, op)
        if idx.ndim != self.ndim:
            raise ValueError(f"{op}: index must have as many dimensions as the tensor "
                             f"({self.ndim}), got shape {idx.shape}")
        n = self.shape[d]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"{op}: index values must be in [0, {n}) for dimension {d} of "
                             f"size {n}; got range [{idx.min()}, {idx.max()}]")
        idx = idx % n if idx.size else idx
        src = src if isinstance(src, Tensor) else const(src)
        if isinstance(src, Tensor) and any(i > s for i, s in zip(idx.shape, src.shape)):
            raise ValueError(f"{op}: index of shape {idx.shape} is larger than src of shape "
                             f"{tuple(src.shape)}")
        return d, idx, src

    def scatter(self, dim: int, index, src=None, value=None) -> Tensor:
        """A copy with src's values (or `value`) written at index along dim."""
        if (src is None) == (value is None):
            raise ValueError("scatter: give exactly one of src and value")
        d, idx, src = self._scatter_args(dim, index, value if src is None else src, "scatter")
        return Scatter.apply(self, idx, src, dim=d)

    def scatter_add(self, dim: int, index, src) -> Tensor:
        d, idx, src = self._scatter_args(dim, index, src, "scatter_add")
        return ScatterAdd.apply(self, idx, as_operand(src), dim=d)

    def index_add(self, dim: int, index, source, *, alpha: float = 1) -> Tensor:
        d = norm_dim(dim, self.ndim, "index_add")
        idx = _check_index(index, "index_add")
        source = as_operand(source)
        if idx.ndim != 1 or source.ndim != self.ndim or source.shape[d] != idx.size:
            raise ValueError(f"index_add: expected a 1-D index and a source of the tensor's "
                             f"rank with index.numel() entries along dim {d}; got index shape "
                             f"{idx.shape}, source shape {tuple(source.shape)}")
        return IndexAdd.apply(self, idx, source, dim=d, alpha=const(alpha))

    def scatter_(self, dim: int, index, src=None, value=None) -> Tensor:
        operand = src if isinstance(src, Tensor) else None
        return _update(self, "scatter_", operand,
                       lambda old: old.scatter(dim, index, src, value),
                       _write(lambda: self.scatter(dim, index, src, value)))

    def scatter_add_(self, dim: int, index, src) -> Tensor:
        return _update(self, "scatter_add_", src,
                       lambda old: old.scatter_add(dim, index, src),
                       _write(lambda: self.scatter_add(dim, index, src)))

    def index_add_(self, dim: int, index, source, *, alpha: float = 1) -> Tensor:
        return _update(self, "index_add_", source,
                       lambda old: old.index_add(dim, index, source, alpha=alpha),
                       _write(lambda: self.index_add(dim, index, source, alpha=alpha)))

    def masked_fill_(self, mask, value) -> Tensor:
        return _update(self, "masked_fill_", value,
                       lambda old: old.masked_fill(mask, value),
                       _write(lambda: self.masked_fill(mask, value)))

    def nonzero(self, *, as_tuple: builtins.bool = False):
        """Indices of non-zero entries: an (n, ndim) int64 tensor, or one index tensor per
        dim with as_tuple=True (what `x[x.nonzero(as_tuple=True)]` needs)."""
        found = np.nonzero(self._data.reshape(1) if self.ndim == 0 else self._data)
        if as_tuple:
            return tuple(Tensor._make(i.astype(np.int64)) for i in found)
        return Tensor._make(np.stack(found, axis=1).astype(np.int64))

    def argwhere(self) -> Tensor:
        return self.nonzero()

    def masked_select(self, mask) -> Tensor:
        m = np.broadcast_to(np.asarray(raw(mask), dtype=bool), self.shape)
        return self[Tensor._make(np.ascontiguousarray(m))]

    def repeat_interleave(self, repeats, dim: int | None = None) -> Tensor:
        """Repeat each element `repeats` times (an int, or one count per element) along dim
        (flattened when dim is None)."""
        x = self.flatten() if dim is None else self
        d = 0 if dim is None else norm_dim(dim, x.ndim, "repeat_interleave")
        reps = np.asarray(raw(repeats))
        n = x.shape[d]
        if reps.ndim == 1 and reps.size == 1:
            reps = reps[0]
        if reps.ndim not in (0, 1) or (reps.ndim == 1 and reps.size != n) or (reps < 0).any():
            raise ValueError(f"repeat_interleave: repeats must be a non-negative int or one "
                             f"count per element ({n}) along dim {d}, got {reps.tolist()}")
        return x.index_select(d, np.repeat(np.arange(n), reps))

    # ------------------------------------------------------------------ elementwise
    def lerp(self, end, weight) -> Tensor:
        """self + weight * (end - self)."""
        return self + (as_operand(end) - self) * (weight if isinstance(weight, Tensor)
                                                  else const(weight))

    def floor_divide(self, other) -> Tensor:
        """Division rounded toward minus infinity (not differentiable, as in torch)."""
        return Tensor._make(np.asarray(np.floor_divide(self._data, raw(other))))

    def remainder(self, other) -> Tensor:
        """a - b * floor(a / b): the sign follows the divisor (Python's %)."""
        return self._rounded_rest(other, np.floor)

    def fmod(self, other) -> Tensor:
        """a - b * trunc(a / b): the sign follows the dividend (C's fmod)."""
        return self._rounded_rest(other, np.trunc)

    def _rounded_rest(self, other, rounding) -> Tensor:
        b = other if isinstance(other, Tensor) else const(other)
        a_arr, b_arr = self._data, raw(b)
        if a_arr.dtype.kind in "iu" and np.asarray(b_arr).dtype.kind in "iu":
            fn = np.remainder if rounding is np.floor else np.fmod
            return Tensor._make(np.asarray(fn(a_arr, b_arr)))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = rounding(a_arr / b_arr)
        if a_arr.dtype.kind == "f":
            dtype = a_arr.dtype if not isinstance(b, Tensor) else np.result_type(a_arr, b_arr)
        else:  # an int tensor and a float: torch's default float, not NumPy's float64
            dtype = b_arr.dtype if isinstance(b, Tensor) else get_default_dtype().dtype
        q = Tensor._make(np.asarray(q, dtype=dtype))
        return self - q * b

    def nan_to_num(self, nan: float = 0.0, posinf: float | None = None,
                   neginf: float | None = None) -> Tensor:
        """NaN, +inf and -inf replaced (by 0 and the dtype's largest and smallest finite
        values by default); the gradient flows only through finite entries."""
        if self.dtype.kind != "f":
            return self.clone()
        info = np.finfo(self.dtype)
        hi = info.max if posinf is None else posinf
        lo = info.min if neginf is None else neginf
        fill = np.where(np.isnan(self._data), nan, np.where(self._data > 0, hi, lo))
        return Where.apply(np.isfinite(self._data), self, fill.astype(self.dtype))

    def logical_and(self, other) -> Tensor:
        return Tensor._make(np.logical_and(self._data, raw(other)))

    def logical_or(self, other) -> Tensor:
        return Tensor._make(np.logical_or(self._data, raw(other)))

    def logical_xor(self, other) -> Tensor:
        return Tensor._make(np.logical_xor(self._data, raw(other)))

    def isclose(self, other, rtol: float = 1e-5, atol: float = 1e-8,
                equal_nan: builtins.bool = False) -> Tensor:
        return Tensor._make(np.isclose(self._data, raw(other), rtol=rtol, atol=atol,
                                       equal_nan=equal_nan))

    # ------------------------------------------------------------------ new_* and *_as
    def new_tensor(self, data, dtype=None, requires_grad: builtins.bool = False) -> Tensor:
        t = Tensor._make(to_array(data, dtype or self.dtype, copy=True))
        return t.requires_grad_(True) if requires_grad else t

    def _new(self, shape, fill, dtype, requires_grad) -> Tensor:
        dtype = resolve_dtype(dtype) or self.dtype
        t = Tensor._make(np.full(shape_arg(shape), fill, dtype=dtype))
        return t.requires_grad_(True) if requires_grad else t

    def new_zeros(self, *size, dtype=None, requires_grad: builtins.bool = False) -> Tensor:
        return self._new(size, 0, dtype, requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad: builtins.bool = False) -> Tensor:
        return self._new(size, 1, dtype, requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad: builtins.bool = False) -> Tensor:
        return self._new(size, 0, dtype, requires_grad)

    def new_full(self, size, fill_value, dtype=None,
                 requires_grad: builtins.bool = False) -> Tensor:
        return self._new((size,), fill_value, dtype, requires_grad)

    def expand_as(self, other) -> Tensor:
        return self.expand(*other.shape)


def _write(compute):
    """An `in_place` callback for `_update` that stores an out-of-place result into the
    array (used where NumPy has no in-place form of the op)."""

    def run(arr: np.ndarray) -> None:
        arr[...] = compute()._data

    return run


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation over explicit letters, e.g. einsum('bij,bjk->bik', a, b); operands
    may also be passed as one list, as torch allows."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [as_operand(o) for o in operands]
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    inputs = lhs.split(",")
    if "." in eq:
        raise ValueError("einsum: ellipsis ('...') is not supported; name every dimension")
    if len(inputs) != len(tensors):
        raise ValueError(f"einsum: equation {equation!r} names {len(inputs)} operands, got "
                         f"{len(tensors)}")
    for subs, t in zip(inputs, tensors):
        if not subs.isalpha() and subs != "" or len(subs) != t.ndim:
            raise ValueError(f"einsum: subscripts {subs!r} do not match an operand of shape "
                             f"{tuple(t.shape)}")
        if len(set(subs)) != len(subs):
            raise ValueError(f"einsum: repeated letter in {subs!r} (diagonals) is not "
                             f"supported; use diag/trace")
    if not arrow:
        letters = "".join(inputs)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return Einsum.apply(*tensors, inputs=tuple(inputs), output=out)

