"""More `keras.ops` numpy-style functions: value tests, rounding, triangles, outer, diag.

Rounding has a zero gradient almost everywhere, so floor/ceil/round return values cut from
the graph, as Keras's backends effectively do."""

from __future__ import annotations

from typing import Any

import numpy as np

import shenjing as sj

from ...tensor import Tensor
from .core import as_tensor

__all__ = ["isnan", "isinf", "isfinite", "floor", "ceil", "round", "outer", "tril", "triu",
           "diag", "trace", "log2", "log10", "reciprocal", "floor_divide", "mod"]


def isnan(x: Any) -> Tensor:
    return sj.isnan(as_tensor(x))


def isinf(x: Any) -> Tensor:
    return sj.isinf(as_tensor(x))


def isfinite(x: Any) -> Tensor:
    return sj.isfinite(as_tensor(x))


def _values(fn: Any, x: Any) -> Tensor:
    t = as_tensor(x)
    return sj.from_numpy(np.ascontiguousarray(fn(t.detach().numpy())))


def floor(x: Any) -> Tensor:
    return _values(np.floor, x)


def ceil(x: Any) -> Tensor:
    return _values(np.ceil, x)


def round(x: Any, decimals: int = 0) -> Tensor:  # noqa: A001
    return _values(lambda a: np.round(a, decimals), x)


def floor_divide(x1: Any, x2: Any) -> Tensor:
    return sj.floor_divide(as_tensor(x1), as_tensor(x2))


def mod(x1: Any, x2: Any) -> Tensor:
    """Remainder with the sign of x2, as NumPy's mod."""
    return sj.remainder(as_tensor(x1), as_tensor(x2))


def log2(x: Any) -> Tensor:
    t = as_tensor(x)
    t = t if np.dtype(t.dtype).kind == "f" else t.to(np.dtype("float32"))
    return sj.log(t) / float(np.log(2.0))


def log10(x: Any) -> Tensor:
    t = as_tensor(x)
    t = t if np.dtype(t.dtype).kind == "f" else t.to(np.dtype("float32"))
    return sj.log(t) / float(np.log(10.0))


def reciprocal(x: Any) -> Tensor:
    t = as_tensor(x)
    return 1.0 / (t if np.dtype(t.dtype).kind == "f" else t.to(np.dtype("float32")))


def outer(x1: Any, x2: Any) -> Tensor:
    return sj.outer(as_tensor(x1).reshape(-1), as_tensor(x2).reshape(-1))


def tril(x: Any, k: int = 0) -> Tensor:
    return sj.tril(as_tensor(x), k)


def triu(x: Any, k: int = 0) -> Tensor:
    return sj.triu(as_tensor(x), k)


def diag(x: Any, k: int = 0) -> Tensor:
    """A 1-d input becomes a matrix with it on diagonal k; a 2-d input gives diagonal k."""
    t = as_tensor(x)
    if t.ndim not in (1, 2):
        raise ValueError(f"keras.ops.diag: expected a 1-d or 2-d input, got shape "
                         f"{tuple(t.shape)}")
    return sj.diag(t, k)


def trace(x: Any, offset: int = 0) -> Tensor:
    return sj.sum(diag(x, offset))
