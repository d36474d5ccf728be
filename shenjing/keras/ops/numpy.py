"""`keras.ops` numpy-style functions, each one composed of shenjing's core Tensor ops, so
gradients flow through the core's autograd (index-valued results such as argmax and argsort
carry none)."""

from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

import shenjing as sj
import shenjing.nn.functional as F

from ...tensor import Tensor
from .core import as_tensor, axes, norm_axis

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "negative", "power", "matmul", "dot",
    "einsum", "reshape", "transpose", "expand_dims", "squeeze", "concatenate", "stack", "mean",
    "sum", "max", "min", "amax", "amin", "prod", "std", "var", "argmax", "argmin", "abs",
    "absolute", "exp", "log", "log1p", "sqrt", "square", "sign", "sin", "cos", "tanh",
    "clip", "where", "maximum", "minimum", "ones", "zeros", "full", "ones_like", "zeros_like",
    "full_like", "arange", "linspace", "eye", "sort", "argsort", "cumsum", "tile", "repeat",
    "pad", "norm", "logical_and", "logical_or", "logical_not", "logical_xor", "equal",
    "not_equal", "greater", "greater_equal", "less", "less_equal", "flip", "take_along_axis",
    "take", "any", "all", "logsumexp", "flatten", "split", "broadcast_to", "count_nonzero",
    "swapaxes", "moveaxis",
]


def _pair(x1: Any, x2: Any) -> tuple[Tensor, Tensor]:
    """Two operands as Tensors; a Python number takes the other operand's dtype."""
    a = as_tensor(x1) if isinstance(x1, Tensor) or not isinstance(x1, (int, float)) else None
    b = as_tensor(x2) if isinstance(x2, Tensor) or not isinstance(x2, (int, float)) else None
    if a is None and b is None:
        return as_tensor(x1), as_tensor(x2)
    if a is None:
        a = as_tensor(np.asarray(x1, dtype=np.dtype(b.dtype)))
    if b is None:
        b = as_tensor(np.asarray(x2, dtype=np.dtype(a.dtype)))
    return a, b


def add(x1: Any, x2: Any) -> Tensor:
    a, b = _pair(x1, x2)
    return sj.add(a, b)


def subtract(x1: Any, x2: Any) -> Tensor:
    a, b = _pair(x1, x2)
    return sj.sub(a, b)


def multiply(x1: Any, x2: Any) -> Tensor:
    a, b = _pair(x1, x2)
    return sj.mul(a, b)


def divide(x1: Any, x2: Any) -> Tensor:
    """True division; integer operands give float32 as Keras does."""
    a, b = _pair(x1, x2)
    if np.dtype(a.dtype).kind != "f" and np.dtype(b.dtype).kind != "f":
        a, b = a.to(np.dtype("float32")), b.to(np.dtype("float32"))
    return sj.div(a, b)


true_divide = divide


def negative(x: Any) -> Tensor:
    return sj.neg(as_tensor(x))


def power(x1: Any, x2: Any) -> Tensor:
    a, b = _pair(x1, x2)
    return sj.pow(a, b)


def matmul(x1: Any, x2: Any) -> Tensor:
    return sj.matmul(as_tensor(x1), as_tensor(x2))


def dot(x1: Any, x2: Any) -> Tensor:
    """NumPy's dot: scalars multiply, 1-d/2-d as matmul, N-d contracts x1's last axis with
    x2's second-to-last."""
    a, b = as_tensor(x1), as_tensor(x2)
    if a.ndim == 0 or b.ndim == 0:
        return sj.mul(a, b)
    if b.ndim <= 2:
        return sj.matmul(a, b)
    b_last = b.permute(*range(b.ndim - 2), b.ndim - 1, b.ndim - 2)  # (..., n, k) -> (..., k, n)
    flat = b_last.reshape(-1, b.shape[-2])  # (M, k)
    out = sj.matmul(a, flat.transpose(0, 1))  # (..., M)
    return out.reshape(*a.shape[:-1], *b.shape[:-2], b.shape[-1])


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation through the core's `einsum`; subscripts it does not take (a letter
    repeated within one operand: diagonals, traces) are done here by taking the diagonal,
    broadcasting the operands to one index space, multiplying and summing."""
    tensors = [as_tensor(o) for o in operands]
    spec = subscripts.replace(" ", "")
    terms_in = spec.split("->")[0].split(",")
    if hasattr(sj, "einsum") and builtins.all(len(set(t)) == len(t) for t in terms_in):
        return sj.einsum(subscripts, *tensors)
    if "..." in spec:
        raise ValueError("keras.ops.einsum: ellipsis ('...') subscripts are not supported")
    if "->" in spec:
        inputs, output = spec.split("->")
    else:
        inputs = spec
        letters = "".join(spec.split(","))
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    terms = inputs.split(",")
    if len(terms) != len(tensors):
        raise ValueError(f"keras.ops.einsum: {subscripts!r} names {len(terms)} operands but "
                         f"{len(tensors)} were given")
    index = list(output) + sorted({c for t in terms for c in t} - set(output))
    product = None
    for term, t in zip(terms, tensors):
        if len(term) != t.ndim:
            raise ValueError(f"keras.ops.einsum: subscript {term!r} has {len(term)} indices "
                             f"but its operand has {t.ndim} dims")
        for c in set(term):  # a repeated index takes the diagonal
            while term.count(c) > 1:
                i, j = term.index(c), term.index(c, term.index(c) + 1)
                eye = sj.from_numpy(np.eye(t.shape[i], dtype=np.dtype(t.dtype)))
                shape = [1] * t.ndim
                shape[i], shape[j] = t.shape[i], t.shape[j]
                t = sj.sum(t * eye.reshape(*shape), dim=j)
                term = term[:j] + term[j + 1:]
        order = [term.index(c) for c in index if c in term]
        t = t.permute(*order) if order else t
        shape = [t.shape[order.index(term.index(c))] if c in term else 1 for c in index]
        t = t.reshape(*shape) if shape else t
        product = t if product is None else product * t
    extra = tuple(range(len(output), len(index)))
    return sj.sum(product, dim=extra) if extra else product


def reshape(x: Any, newshape: Sequence[int] | int) -> Tensor:
    shape = (newshape,) if isinstance(newshape, int) else tuple(newshape)
    return as_tensor(x).reshape(*shape)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    t = as_tensor(x)
    order = tuple(reversed(range(t.ndim))) if axes is None else \
        tuple(norm_axis(a, t.ndim, "transpose") for a in axes)
    return t.permute(*order) if t.ndim else t


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    t = as_tensor(x)
    return t.transpose(norm_axis(axis1, t.ndim, "swapaxes"), norm_axis(axis2, t.ndim,
                                                                       "swapaxes"))


def moveaxis(x: Any, source: int, destination: int) -> Tensor:
    t = as_tensor(x)
    order = list(range(t.ndim))
    order.insert(norm_axis(destination, t.ndim, "moveaxis"),
                 order.pop(norm_axis(source, t.ndim, "moveaxis")))
    return t.permute(*order)


def expand_dims(x: Any, axis: int) -> Tensor:
    t = as_tensor(x)
    return sj.unsqueeze(t, norm_axis(axis, t.ndim + 1, "expand_dims"))


def squeeze(x: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    t = as_tensor(x)
    dims = [a for a in axes(axis, t.ndim, "squeeze") if axis is not None or t.shape[a] == 1]
    for a in dims:
        if t.shape[a] != 1:
            raise ValueError(f"keras.ops.squeeze: axis {a} has size {t.shape[a]}, not 1")
    shape = [d for i, d in enumerate(t.shape) if i not in dims]
    return t.reshape(*shape) if shape else t.reshape(())


def concatenate(xs: Sequence[Any], axis: int = 0) -> Tensor:
    ts = [as_tensor(x) for x in xs]
    return sj.cat(ts, dim=norm_axis(axis, ts[0].ndim, "concatenate"))


def stack(xs: Sequence[Any], axis: int = 0) -> Tensor:
    ts = [as_tensor(x) for x in xs]
    return sj.stack(ts, dim=norm_axis(axis, ts[0].ndim + 1, "stack"))


def _reduce(fn: Any, x: Any, axis: Any, keepdims: bool, what: str) -> Tensor:
    t = as_tensor(x)
    dims = axes(axis, t.ndim, what)
    if not dims:
        return t
    return fn(t, dim=dims, keepdim=keepdims)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _reduce(sj.sum, x, axis, keepdims, "sum")


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    t = as_tensor(x)
    if np.dtype(t.dtype).kind != "f":
        t = t.to(np.dtype("float32"))
    return _reduce(sj.mean, t, axis, keepdims, "mean")


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _reduce(sj.amax, x, axis, keepdims, "max")


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _reduce(sj.amin, x, axis, keepdims, "min")


amax, amin = max, min


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    t = as_tensor(x)
    for a in sorted(axes(axis, t.ndim, "prod"), reverse=True):
        t = sj.prod(t, dim=a, keepdim=keepdims)
    return t


def var(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population variance (ddof=0), as NumPy and Keras."""
    t = as_tensor(x)
    centered = t - mean(t, axis, keepdims=True)
    return mean(centered * centered, axis, keepdims)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return sj.sqrt(var(x, axis, keepdims))


def _arg(fn: Any, x: Any, axis: Any, keepdims: bool, what: str) -> Tensor:
    t = as_tensor(x)
    if axis is None:
        out = fn(t.reshape(-1), 0)
        return out.reshape(*([1] * t.ndim)) if keepdims else out
    return fn(t, norm_axis(axis, t.ndim, what), keepdim=keepdims)


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    return _arg(sj.argmax, x, axis, keepdims, "argmax")


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    return _arg(sj.argmin, x, axis, keepdims, "argmin")


def abs(x: Any) -> Tensor:  # noqa: A001
    return sj.abs(as_tensor(x))


absolute = abs


def _float(x: Any) -> Tensor:
    t = as_tensor(x)
    return t if np.dtype(t.dtype).kind == "f" else t.to(np.dtype("float32"))


def exp(x: Any) -> Tensor:
    return sj.exp(_float(x))


def log(x: Any) -> Tensor:
    return sj.log(_float(x))


def log1p(x: Any) -> Tensor:
    return sj.log1p(_float(x))


def sqrt(x: Any) -> Tensor:
    return sj.sqrt(_float(x))


def square(x: Any) -> Tensor:
    return sj.square(as_tensor(x))


def sign(x: Any) -> Tensor:
    return sj.sign(as_tensor(x))


def sin(x: Any) -> Tensor:
    return sj.sin(_float(x))


def cos(x: Any) -> Tensor:
    return sj.cos(_float(x))


def tanh(x: Any) -> Tensor:
    return sj.tanh(_float(x))


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    t = _float(x)
    return sj.logsumexp(t, dim=axes(axis, t.ndim, "logsumexp"), keepdim=keepdims)


def clip(x: Any, x_min: Any, x_max: Any) -> Tensor:
    return sj.clamp(as_tensor(x), x_min, x_max)


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    """Pick from x1 where `condition`, else x2; with only `condition`, its nonzero indices."""
    cond = as_tensor(condition)
    if x1 is None and x2 is None:
        return tuple(sj.from_numpy(i) for i in np.nonzero(cond.numpy()))
    a, b = _pair(x1, x2)
    return sj.where(cond.to(np.dtype("bool")), a, b)


def maximum(x1: Any, x2: Any) -> Tensor:
    a, b = _pair(x1, x2)
    return sj.maximum(a, b)


def minimum(x1: Any, x2: Any) -> Tensor:
    a, b = _pair(x1, x2)
    return sj.minimum(a, b)


def _shape(shape: Any) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Tensor:
    return as_tensor(np.full(_shape(shape), fill_value, dtype=dtype or "float32"))


def ones(shape: Any, dtype: Any = None) -> Tensor:
    return full(shape, 1, dtype)


def zeros(shape: Any, dtype: Any = None) -> Tensor:
    return full(shape, 0, dtype)


def full_like(x: Any, fill_value: Any, dtype: Any = None) -> Tensor:
    t = as_tensor(x)
    return full(t.shape, fill_value, dtype or np.dtype(t.dtype))


def ones_like(x: Any, dtype: Any = None) -> Tensor:
    return full_like(x, 1, dtype)


def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    return full_like(x, 0, dtype)


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Tensor:  # noqa: N803
    return as_tensor(np.eye(N, M, k, dtype=dtype or "float32"))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Tensor:
    values = np.arange(start, stop, step) if stop is not None else np.arange(start, step=step)
    if dtype is None:
        dtype = "int32" if values.dtype.kind in "iu" else "float32"
    return as_tensor(values, dtype)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             dtype: Any = None) -> Tensor:
    return as_tensor(np.linspace(start, stop, num, endpoint=endpoint), dtype or "float32")


def argsort(x: Any, axis: int = -1) -> Tensor:
    """Indices that sort `x` ascending along `axis` (stable, as NumPy's)."""
    t = as_tensor(x)
    if axis is None:
        t, axis = t.reshape(-1), 0
    a = norm_axis(axis, t.ndim, "argsort")
    return sj.from_numpy(np.argsort(t.numpy(), axis=a, kind="stable").astype(np.int32))


def sort(x: Any, axis: int = -1) -> Tensor:
    """`x` sorted ascending along `axis`; the gradient flows back to where values came from."""
    t = as_tensor(x)
    if axis is None:
        t, axis = t.reshape(-1), 0
    return sj.sort(t, norm_axis(axis, t.ndim, "sort"))[0]


def cumsum(x: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """Running sum along `axis` (the whole flattened tensor when None)."""
    t = as_tensor(x, dtype)
    if axis is None:
        t, axis = t.reshape(-1), 0
    return sj.cumsum(t, norm_axis(axis, t.ndim, "cumsum"))


def tile(x: Any, repeats: Any) -> Tensor:
    t = as_tensor(x)
    reps = _shape(repeats)
    if len(reps) < t.ndim:
        reps = (1,) * (t.ndim - len(reps)) + reps
    elif len(reps) > t.ndim:
        t = t.reshape(*((1,) * (len(reps) - t.ndim) + tuple(t.shape)))
    return t.repeat(*reps)


def repeat(x: Any, repeats: int, axis: int | None = None) -> Tensor:
    t = as_tensor(x)
    if not isinstance(repeats, (int, np.integer)):
        raise TypeError("keras.ops.repeat: repeats must be an int here (per-element repeat "
                        "counts are not supported)")
    if axis is None:
        return sj.repeat_interleave(t.reshape(-1), int(repeats), 0)
    return sj.repeat_interleave(t, int(repeats), norm_axis(axis, t.ndim, "repeat"))


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None) -> Tensor:
    """NumPy-style `pad_width` ((before, after) per axis, or one pair/int for all)."""
    t = as_tensor(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (t.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"keras.ops.pad: pad widths must be >= 0, got {pad_width!r}")
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
             "symmetric": None, "wrap": "circular"}
    if modes.get(mode) is None:
        raise ValueError(f"keras.ops.pad: mode must be 'constant', 'reflect', 'edge' or "
                         f"'wrap', got {mode!r}")
    if mode != "constant" and constant_values is not None:
        raise ValueError("keras.ops.pad: constant_values is only valid with mode='constant'")
    flat = [int(w) for pair in reversed(widths.tolist()) for w in pair]
    if mode == "constant":
        return sj.pad(t, flat, value=float(constant_values or 0))
    return F.pad(t, flat, mode=modes[mode])


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A002
    """Vector norms (ord None/2, 1, inf, -inf, p) over one axis, or the Frobenius norm."""
    t = _float(x)
    dims = axes(axis, t.ndim, "norm")
    if ord in (None, 2, "fro") and (len(dims) != 2 or ord != 2):
        return sj.sqrt(sum(t * t, dims, keepdims))
    if len(dims) != 1:
        raise ValueError(f"keras.ops.norm: ord={ord!r} is only supported over one axis here")
    if ord in (np.inf, "inf"):
        return max(sj.abs(t), dims, keepdims)
    if ord in (-np.inf, "-inf"):
        return min(sj.abs(t), dims, keepdims)
    if ord == 0:
        return sum((t != 0).to(np.dtype(t.dtype)), dims, keepdims)
    return sj.pow(sum(sj.pow(sj.abs(t), float(ord)), dims, keepdims), 1.0 / float(ord))


def _bool(x: Any) -> Tensor:
    return as_tensor(x).to(np.dtype("bool"))


def logical_not(x: Any) -> Tensor:
    return sj.logical_not(_bool(x))


def logical_and(x1: Any, x2: Any) -> Tensor:
    return as_tensor(np.logical_and(_bool(x1).numpy(), _bool(x2).numpy()))


def logical_or(x1: Any, x2: Any) -> Tensor:
    return as_tensor(np.logical_or(_bool(x1).numpy(), _bool(x2).numpy()))


def logical_xor(x1: Any, x2: Any) -> Tensor:
    return as_tensor(np.logical_xor(_bool(x1).numpy(), _bool(x2).numpy()))


def _compare(name: str) -> Any:
    def compare(x1: Any, x2: Any) -> Tensor:
        a, b = _pair(x1, x2)
        return getattr(sj, name)(a, b)

    return compare


equal, not_equal = _compare("eq"), _compare("ne")
greater, greater_equal = _compare("gt"), _compare("ge")
less, less_equal = _compare("lt"), _compare("le")
for _name, _fn in (("equal", equal), ("not_equal", not_equal), ("greater", greater),
                   ("greater_equal", greater_equal), ("less", less), ("less_equal", less_equal)):
    _fn.__name__ = _fn.__qualname__ = _name
    _fn.__doc__ = f"Elementwise {_name.replace('_', ' ')} comparison (a boolean tensor)."


def any(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return as_tensor(np.any(_bool(x).numpy(), axis=axis, keepdims=keepdims))


def all(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return as_tensor(np.all(_bool(x).numpy(), axis=axis, keepdims=keepdims))


def count_nonzero(x: Any, axis: Any = None) -> Tensor:
    return as_tensor(np.count_nonzero(as_tensor(x).numpy(), axis=axis).astype(np.int32))


def flip(x: Any, axis: Any = None) -> Tensor:
    t = as_tensor(x)
    return sj.flip(t, axes(axis, t.ndim, "flip"))


def take_along_axis(x: Any, indices: Any, axis: int | None = None) -> Tensor:
    t = as_tensor(x)
    if axis is None:
        t, axis = t.reshape(-1), 0
    return sj.take_along_dim(t, as_tensor(indices).long(), dim=norm_axis(axis, t.ndim,
                                                                         "take_along_axis"))


def take(x: Any, indices: Any, axis: int | None = None) -> Tensor:
    t = as_tensor(x)
    if axis is None:
        t, axis = t.reshape(-1), 0
    idx = as_tensor(indices).long()
    a = norm_axis(axis, t.ndim, "take")
    out = sj.index_select(t, a, idx.reshape(-1))
    return out.reshape(*t.shape[:a], *idx.shape, *t.shape[a + 1:])


def flatten(x: Any) -> Tensor:
    return as_tensor(x).reshape(-1)


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """NumPy's split: a number of equal sections, or the indices to cut at."""
    t = as_tensor(x)
    a = norm_axis(axis, t.ndim, "split")
    n = t.shape[a]
    if isinstance(indices_or_sections, (int, np.integer)):
        if n % int(indices_or_sections):
            raise ValueError(f"keras.ops.split: {n} is not divisible into "
                             f"{indices_or_sections} equal sections")
        sizes = [n // int(indices_or_sections)] * int(indices_or_sections)
    else:
        cuts = [0, *[int(i) for i in indices_or_sections], n]
        sizes = [cuts[i + 1] - cuts[i] for i in range(len(cuts) - 1)]
    return list(sj.split(t, sizes, dim=a))


def broadcast_to(x: Any, shape: Any) -> Tensor:
    return sj.broadcast_to(as_tensor(x), _shape(shape))
