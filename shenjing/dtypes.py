"""Dtypes and the default-dtype rule, below everything else in the core.

A shenjing dtype is a NumPy dtype whose `str()` reads `shenjing.float32`, as torch's dtypes
print. The rule for floats is torch's: Python floats and float math on integer tensors
(`int / int`, `int.exp()`) give the default float dtype, which `set_default_dtype` changes.
"""

from __future__ import annotations

import builtins

import numpy as np

__all__ = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
           "bool_", "get_default_dtype", "set_default_dtype", "resolve_dtype", "is_floating"]

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")

_default_float = [float32]


def get_default_dtype() -> np.dtype:
    """The float dtype new float tensors and promoted integer math get (float32 unless set)."""
    return _default_float[0]


def set_default_dtype(dtype) -> None:
    """Set the default float dtype: float32 or float64, as torch.set_default_dtype."""
    dtype = resolve_dtype(dtype)
    if dtype not in (float32, float64):
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _default_float[0] = dtype


def resolve_dtype(dtype) -> np.dtype | None:
    """A NumPy dtype for what the user passed: shenjing/NumPy dtypes, `float`, `int`, `bool`,
    or names such as "float32"; None stays None."""
    if dtype is None:
        return None
    if dtype is float:
        return _default_float[0]
    if dtype is int:
        return int64
    if dtype is builtins.bool:
        return bool_
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}; use e.g. shenjing.float32") from None


def is_floating(dtype) -> bool:
    return np.dtype(dtype).kind in "fc"
