"""Keras reshaping layers over shenjing's pad, slicing and nn.Upsample: ZeroPadding1D/2D,
Cropping1D/2D, UpSampling1D/2D, RepeatVector. Inputs are channels-last, as in Keras."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nn
from ...tensor import Tensor, pad
from .base import Layer, to_cf, to_cl

__all__ = ["ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
           "UpSampling2D", "RepeatVector"]


def _pairs(value: Any, nd: int, layer: str, what: str) -> tuple:
    """Keras's padding/cropping argument -> ((before, after),) * nd of non-negative ints."""
    def pair(v: Any) -> tuple:
        if isinstance(v, (int, np.integer)):
            return (int(v), int(v))
        t = tuple(v)
        if len(t) != 2:
            raise ValueError(f"{layer}: each {what} entry must be an int or a pair, got {v!r}")
        return (int(t[0]), int(t[1]))

    if isinstance(value, (int, np.integer)):
        pairs = (pair(value),) * nd
    elif nd == 1:
        pairs = (pair(value),)
    else:
        items = tuple(value)
        if len(items) != nd:
            raise ValueError(f"{layer}: {what} must be an int, or a tuple of {nd} ints or "
                             f"pairs, got {value!r}")
        pairs = tuple(pair(v) for v in items)
    if any(p < 0 for lh in pairs for p in lh):
        raise ValueError(f"{layer}: {what} must be non-negative, got {value!r}")
    return pairs


class _Edges(Layer):
    """Shared by the padding and cropping layers: per spatial dim (before, after) amounts."""

    _nd = 1
    _what = "padding"

    def __init__(self, amounts: Any, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format or "channels_last"
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"{type(self).__name__}: data_format must be 'channels_last' or "
                             f"'channels_first', got {data_format!r}")
        self.amounts = _pairs(amounts, self._nd, type(self).__name__, self._what)
        self.built = True

    def _spatial_axes(self, ndim: int) -> range:
        return range(2, ndim) if self.data_format == "channels_first" else range(1, ndim - 1)

    def _check(self, ndim: int) -> None:
        if ndim != self._nd + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs of rank "
                             f"{self._nd + 2}, got rank {ndim}")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        self._check(len(input_shape))
        shape = list(input_shape)
        sign = 1 if self._what == "padding" else -1
        for axis, (lo, hi) in zip(self._spatial_axes(len(shape)), self.amounts):
            if shape[axis] is not None:
                shape[axis] += sign * (lo + hi)
                if shape[axis] <= 0:
                    raise ValueError(f"{type(self).__name__}: cropping {self.amounts} leaves "
                                     f"nothing of input shape {tuple(input_shape)}")
        return tuple(shape)

    def get_config(self) -> dict:
        key = self._what
        value = [list(p) for p in self.amounts] if self._nd > 1 else list(self.amounts[0])
        return {**super().get_config(), key: value, "data_format": self.data_format}


class _ZeroPadding(_Edges):
    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(padding, data_format, **kwargs)

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs.ndim)
        flat: list[int] = []
        axes = list(self._spatial_axes(inputs.ndim))
        for axis in range(inputs.ndim - 1, 0, -1):  # pad() takes the last dim first
            flat.extend(self.amounts[axes.index(axis)] if axis in axes else (0, 0))
        return pad(inputs, flat)


class ZeroPadding1D(_ZeroPadding):
    """Pads the steps axis of (batch, steps, features) with zeros: padding int or (lo, hi)."""

    _nd = 1


class ZeroPadding2D(_ZeroPadding):
    """Pads rows and columns of (batch, rows, cols, channels) with zeros."""

    _nd = 2


class _Cropping(_Edges):
    _what = "cropping"

    def __init__(self, cropping: Any = 1, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(cropping, data_format, **kwargs)

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs.ndim)
        self.compute_output_shape(tuple(inputs.shape))  # raises if nothing is left
        index: list = [slice(None)] * inputs.ndim
        for axis, (lo, hi) in zip(self._spatial_axes(inputs.ndim), self.amounts):
            index[axis] = slice(lo, inputs.shape[axis] - hi)
        return inputs[tuple(index)]


class Cropping1D(_Cropping):
    """Crops the steps axis of (batch, steps, features): cropping int or (lo, hi)."""

    _nd = 1


class Cropping2D(_Cropping):
    """Crops rows and columns of (batch, rows, cols, channels)."""

    _nd = 2


class _UpSampling(Layer):
    _nd = 1

    def __init__(self, size: Any = 2, data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        sizes = (size,) * self._nd if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != self._nd or any(int(s) < 1 for s in sizes):
            raise ValueError(f"{name}: size must be a positive int or {self._nd} of them, got "
                             f"{size!r}")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"{name}: interpolation must be 'nearest' or 'bilinear', got "
                             f"{interpolation!r}")
        self.size = tuple(int(s) for s in sizes)
        self.data_format = data_format or "channels_last"
        self.interpolation = interpolation
        mode = interpolation if self._nd == 2 else "nearest"
        self.upsample = nn.Upsample(scale_factor=self.size if self._nd > 1 else self.size[0],
                                    mode=mode, align_corners=False if mode != "nearest"
                                    else None)
        self.built = True

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        if x.ndim != self._nd + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs of rank "
                             f"{self._nd + 2}, got shape {tuple(x.shape)}")
        return self.upsample(x)

    def _cf_mode(self, ndim: int) -> str:
        return "prefer" if self.data_format == "channels_last" else "no"

    def call(self, inputs: Tensor) -> Tensor:
        if self.data_format == "channels_first":
            return self._call_cf(inputs, False)
        return to_cl(self._call_cf(to_cf(inputs), False))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = list(input_shape)
        first = 2 if self.data_format == "channels_first" else 1
        for i, s in enumerate(self.size):
            if shape[first + i] is not None:
                shape[first + i] *= s
        return tuple(shape)

    def get_config(self) -> dict:
        cfg = {**super().get_config(), "size": list(self.size) if self._nd > 1 else self.size[0]}
        if self._nd > 1:
            cfg.update(data_format=self.data_format, interpolation=self.interpolation)
        return cfg


class UpSampling1D(_UpSampling):
    """Repeats each step `size` times: (batch, steps, features) -> (batch, steps*size, ...)."""

    _nd = 1

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(size, **kwargs)


class UpSampling2D(_UpSampling):
    """Scales rows and columns by `size` ('nearest' or 'bilinear' interpolation)."""

    _nd = 2


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features)."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"RepeatVector: n must be a positive int, got {n!r}")
        self.n = int(n)
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.ndim != 2:
            raise ValueError(f"RepeatVector {self.name!r}: expected (batch, features) inputs, "
                             f"got shape {tuple(inputs.shape)}")
        return inputs.unsqueeze(1).expand(inputs.shape[0], self.n, inputs.shape[1])

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict:
        return {**super().get_config(), "n": self.n}
