"""Tensor creation functions with torch's signatures (sizes as varargs or one tuple)."""

from __future__ import annotations

import numpy as np

from .dtypes import resolve_dtype
from .random import get_rng, multinomial
from .tensor import Tensor, as_tensor, get_default_dtype
from .tensor.args import shape_arg as _shape_arg

__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like",
           "empty_like", "rand", "randn", "randint", "randperm", "rand_like", "randn_like",
           "arange", "linspace", "eye", "multinomial"]


def _finish(arr: np.ndarray, requires_grad: bool) -> Tensor:
    t = as_tensor(arr)
    return t.requires_grad_(True) if requires_grad else t


def _size(size) -> tuple:
    shape = _shape_arg(size)
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimension in size {shape}")
    return shape


def _float(dtype) -> np.dtype:
    return resolve_dtype(dtype) or get_default_dtype().dtype


def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.zeros(_size(size), dtype=_float(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.ones(_size(size), dtype=_float(dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.empty(_size(size), dtype=_float(dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = (np.bool_ if isinstance(fill_value, bool) else
                 np.int64 if isinstance(fill_value, int) else get_default_dtype().dtype)
    return _finish(np.full(_size((size,)), fill_value, dtype=resolve_dtype(dtype)),
                   requires_grad)


def _like(x, dtype):
    return x.shape, (resolve_dtype(dtype) or np.asarray(x).dtype)


def zeros_like(x, dtype=None, requires_grad: bool = False) -> Tensor:
    shape, dt = _like(x, dtype)
    return _finish(np.zeros(shape, dtype=dt), requires_grad)


def ones_like(x, dtype=None, requires_grad: bool = False) -> Tensor:
    shape, dt = _like(x, dtype)
    return _finish(np.ones(shape, dtype=dt), requires_grad)


def empty_like(x, dtype=None, requires_grad: bool = False) -> Tensor:
    shape, dt = _like(x, dtype)
    return _finish(np.empty(shape, dtype=dt), requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    shape, dt = _like(x, dtype)
    return _finish(np.full(shape, fill_value, dtype=dt), requires_grad)


def rand(*size, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples from the seeded generator."""
    dt = _float(dtype)
    return _finish(get_rng(generator).random(_size(size), dtype=np.float64).astype(dt),
                   requires_grad)


def randn(*size, dtype=None, generator=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the seeded generator."""
    dt = _float(dtype)
    return _finish(get_rng(generator).standard_normal(_size(size)).astype(dt), requires_grad)


def rand_like(x, dtype=None) -> Tensor:
    return rand(x.shape, dtype=dtype or x.dtype)


def randn_like(x, dtype=None) -> Tensor:
    return randn(x.shape, dtype=dtype or x.dtype)


def randint(low, high=None, size=(), dtype=None, generator=None) -> Tensor:
    """Integers in [low, high); randint(high, size) as torch allows."""
    if isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    dt = resolve_dtype(dtype) or np.dtype(np.int64)
    return as_tensor(get_rng(generator).integers(low, high, _size((size,))).astype(dt))


def randperm(n: int, dtype=None, generator=None) -> Tensor:
    return as_tensor(get_rng(generator).permutation(int(n)).astype(resolve_dtype(dtype) or
                                                                np.int64))


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Values in [start, end) spaced by step; int64 when all three are ints, as torch."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dt = resolve_dtype(dtype) or (np.dtype(np.int64) if ints else get_default_dtype().dtype)
    return _finish(np.arange(start, end, step).astype(dt), requires_grad)


def linspace(start, end, steps: int, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.linspace(start, end, int(steps)).astype(_float(dtype)), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.eye(n, m, dtype=_float(dtype)), requires_grad)
