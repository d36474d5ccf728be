"""Conversions shared by `keras.ops`: anything array-like to a shenjing Tensor and back."""

from __future__ import annotations

from typing import Any

import numpy as np

import shenjing as sj

from ...tensor import Tensor

__all__ = ["convert_to_tensor", "convert_to_numpy", "as_tensor", "is_tensor", "cast", "shape",
           "dtype_of", "axes", "norm_axis"]


def _np_dtype(dtype: Any) -> Any:
    """A NumPy dtype from 'float32', np.float32 or sj.float32 (None stays None)."""
    if dtype is None:
        return None
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("shenjing.", "")
    try:
        return np.dtype(name)
    except TypeError as e:
        raise TypeError(f"keras.ops: unknown dtype {dtype!r}; expected a name such as "
                        f"'float32' or 'int64'") from e


def as_tensor(x: Any, dtype: Any = None) -> Tensor:
    """`x` as a Tensor (a Tensor passes through, so gradients flow); Python floats become
    float32 and Python ints int32, as Keras's default types."""
    if isinstance(x, Tensor):
        return x if dtype is None else cast(x, dtype)
    if hasattr(x, "keras_tensor"):  # a layer's Weight: its differentiable Keras-layout view
        return as_tensor(x.keras_tensor(), dtype)
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    if not isinstance(x, (np.ndarray, np.generic)):
        x = np.asarray(x)
        if dtype is None and x.dtype == np.float64:
            x = x.astype(np.float32)
        elif dtype is None and x.dtype == np.int64:
            x = x.astype(np.int32)
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"keras.ops: cannot make a tensor from {x.dtype} data; expected "
                        f"numbers or booleans")
    if dtype is not None:
        x = x.astype(_np_dtype(dtype))
    return sj.from_numpy(np.ascontiguousarray(x))


def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None) -> Tensor:
    """Keras's `ops.convert_to_tensor`: array-likes and Tensors to a Tensor of `dtype`."""
    return as_tensor(x, dtype)


def convert_to_numpy(x: Any) -> np.ndarray:
    """A NumPy array of `x`'s values (a Tensor's graph is left behind)."""
    if isinstance(x, Tensor):
        return np.array(x.detach().numpy())
    return np.asarray(x)


def is_tensor(x: Any) -> bool:
    return isinstance(x, Tensor)


def cast(x: Any, dtype: Any) -> Tensor:
    """`x` converted to `dtype`; float-to-float casts keep the gradient."""
    t = as_tensor(x)
    target = _np_dtype(dtype)
    if np.dtype(t.dtype) == target:
        return t
    return t.to(target)


def dtype_of(x: Any) -> str:
    """The name of `x`'s dtype, e.g. 'float32'."""
    return np.dtype(as_tensor(x).dtype).name


def shape(x: Any) -> tuple[int, ...]:
    """`x`'s shape as a tuple of ints."""
    return tuple(int(d) for d in as_tensor(x).shape)


def norm_axis(axis: Any, ndim: int, what: str) -> Any:
    """`axis` (None, int or sequence) checked against `ndim` and made non-negative."""
    if axis is None:
        return None
    many = isinstance(axis, (list, tuple))
    out = []
    for a in (axis if many else [axis]):
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"keras.ops.{what}: axis must be an int or a tuple of ints, "
                            f"got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"keras.ops.{what}: axis {a} is out of range for a "
                             f"{ndim}-d tensor")
        out.append(int(a) % max(ndim, 1))
    return tuple(out) if many else out[0]


def axes(axis: Any, ndim: int, what: str) -> tuple[int, ...]:
    """All axes for None, else `axis` as a tuple."""
    a = norm_axis(axis, ndim, what)
    if a is None:
        return tuple(range(ndim))
    return a if isinstance(a, tuple) else (a,)
