"""Nested structures of tensors, the two channel layouts and input dtypes (string inputs),
shared by layers and models."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...tensor import Tensor

__all__ = ["map_structure", "flatten", "to_cf", "to_cl", "cl_shape", "dtype_name",
           "refuse_strings"]


def map_structure(fn: Callable, obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_structure(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: map_structure(fn, v) for k, v in obj.items()}
    return fn(obj)


def flatten(obj: Any) -> list:
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in flatten(o)]
    if isinstance(obj, dict):
        return [x for k in obj for x in flatten(obj[k])]
    return [obj]


def to_cf(x: Tensor) -> Tensor:
    """Channels-last (N, ..., C) -> channels-first (N, C, ...); identity below 3 dims."""
    if x.ndim < 3:
        return x
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def to_cl(x: Tensor) -> Tensor:
    """Channels-first (N, C, ...) -> channels-last (N, ..., C); identity below 3 dims."""
    if x.ndim < 3:
        return x
    return x.permute(0, *range(2, x.ndim), 1)


def cl_shape(shape: tuple) -> tuple:
    """The channels-last shape of a channels-first shape."""
    if len(shape) < 3:
        return tuple(shape)
    return (shape[0],) + tuple(shape[2:]) + (shape[1],)


def dtype_name(dtype: Any) -> str:
    """A Keras dtype's name: "string" for string inputs (str, bytes, "string"), else NumPy's."""
    if dtype is None:
        return "float32"
    if dtype in ("string", str, bytes, object) or np.dtype(dtype).kind in "USO":
        return "string"
    return str(np.dtype(dtype))


def refuse_strings(layer: Any, inputs: Any) -> Any:
    """`inputs`, after checking that symbolic string inputs only reach layers that take
    strings (`_accepts_strings`: TextVectorization, StringLookup)."""
    if not getattr(layer, "_accepts_strings", False) and any(
            getattr(t, "_keras_history", False) is not False and t.dtype == "string"
            for t in flatten(inputs)):
        raise TypeError(f"Layer {layer.name!r} ({type(layer).__name__}) cannot take string "
                        f"inputs; map strings to numbers first with TextVectorization or "
                        f"StringLookup")
    return inputs
