"""Making tensors from Python data and arrays: torch's default dtypes and copy rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.engine import Tensor
from ..dtypes import get_default_dtype, int64, resolve_dtype, uint8

__all__ = ["to_array", "tensor", "as_tensor", "from_numpy"]


def to_array(data, dtype=None, copy: bool = True) -> np.ndarray:
    """Array for `data` with torch's default dtypes (the default float for Python floats,
    int64 for Python ints); NumPy arrays and scalars keep their dtype."""
    if isinstance(data, Tensor):
        data = data._data
    dtype = resolve_dtype(dtype)
    if dtype is not None:
        return np.array(data, dtype=dtype, copy=copy or None)
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data, copy=copy or None)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
            data = [x._data if isinstance(x, Tensor) else x for x in data]
        arr = np.array(data)
        if arr.dtype.kind == "f":
            arr = arr.astype(get_default_dtype().dtype, copy=False)
        elif arr.dtype.kind in "iu" and arr.dtype != uint8.dtype:
            arr = arr.astype(int64.dtype, copy=False)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {arr.dtype}")
    return arr


def tensor(data: Any, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (float32 for floats, int64 for ints)."""
    t = Tensor._make(to_array(data, dtype, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data: Any, dtype=None) -> Tensor:
    """`data` as a tensor, sharing memory with an array or tensor where the dtype allows."""
    if isinstance(data, Tensor) and (dtype is None or data._data.dtype == resolve_dtype(dtype)):
        return data
    return Tensor._make(to_array(data, dtype, copy=False))


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing `arr`'s memory and dtype."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(arr).__name__}")
    return Tensor._make(arr)
