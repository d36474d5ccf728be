"""Nested structures of tensors and the two channel layouts, shared by layers and models."""

from __future__ import annotations

from typing import Any, Callable

from ...tensor import Tensor

__all__ = ["map_structure", "flatten", "to_cf", "to_cl", "cl_shape"]


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
