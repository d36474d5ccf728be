"""Keras depthwise and separable convolutions: DepthwiseConv1D/2D and SeparableConv1D/2D.

A depthwise convolution is Conv1D/Conv2D's machinery (padding rules, channels-first
execution, activation) with groups = input channels and depth_multiplier filters per
channel; a separable one follows it with a 1x1 ("pointwise") convolution that mixes the
channels and carries the bias. Weights keep Keras's names and layouts:
`depthwise_kernel` (k.., in, depth_multiplier), `pointwise_kernel` (1.., in * mult, filters)
and `bias`, stored as torch's grouped (in * mult, 1, k..) and (filters, in * mult, 1..).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...tensor import Tensor
from .. import initializers, regularizers
from ..registry import serialize
from .conv import _Conv
from .core import check_constraint
from .weights import Weight

__all__ = ["DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"]


def _positive(value: Any, what: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer}: {what} must be a positive integer, got {value!r}")
    return int(value)


class _Depthwise(_Conv):
    """One convolution per input channel (depth_multiplier outputs each), as Keras's
    DepthwiseConv; `_pointwise_filters` (None here) adds the 1x1 mixing of SeparableConv."""

    def __init__(self, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 depth_multiplier: int = 1, data_format: str | None = None,
                 dilation_rate: Any = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, depthwise_constraint: Any = None,
                 bias_constraint: Any = None, _pointwise: dict | None = None,
                 **kwargs: Any) -> None:
        name = type(self).__name__
        # build (which __init__ runs when given input_shape) needs these before Module init
        object.__setattr__(self, "depth_multiplier",
                           _positive(depth_multiplier, "depth_multiplier", name))
        object.__setattr__(self, "_pointwise_spec", _pointwise)
        check_constraint(name, depthwise_constraint=depthwise_constraint)
        super().__init__(self.depth_multiplier, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         bias_constraint=bias_constraint, **kwargs)

    @property
    def depthwise_initializer(self) -> Any:
        return self.kernel_initializer

    @property
    def depthwise_regularizer(self) -> Any:
        return self.kernel_regularizer

    def build(self, input_shape: tuple) -> None:
        cin = int(self._input_channels(input_shape))
        mult, nd, spec = self.depth_multiplier, self._nd, self._pointwise_spec
        filters = cin * mult if spec is None else spec["filters"]
        use_bias = self.use_bias
        # _Conv.build makes the grouped convolution; a separable layer's bias is pointwise
        self.filters, self.groups = cin * mult, cin
        self.use_bias = use_bias and spec is None
        super().build(input_shape)
        self.use_bias = use_bias
        self._weight_list.clear()
        kernel = self.kernel_size
        to_keras_axes = tuple(range(2, nd + 2)) + (0, 1)  # (in, mult, k..) -> (k.., in, mult)
        from_keras_axes = (nd, nd + 1) + tuple(range(nd))

        def to_keras(a: np.ndarray) -> np.ndarray:
            return a.reshape((cin, mult) + kernel).transpose(to_keras_axes)

        def from_keras(k: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(k.transpose(from_keras_axes)).reshape(
                (cin * mult, 1) + kernel)

        init = np.asarray(self.kernel_initializer(kernel + (cin, mult)), np.float32)
        with no_grad():
            self.conv.weight.copy_(from_keras(init))
        self._weight_list.append(Weight(self, "depthwise_kernel", self.conv, "weight", to_keras,
                                        from_keras, True, self.kernel_regularizer))
        bias_owner = self.conv
        self.filters = filters
        if spec is not None:
            cls = nn.Conv1d if nd == 1 else nn.Conv2d
            self.pointwise = cls(cin * mult, filters, 1, bias=use_bias)
            axes = (2, 1, 0) if nd == 1 else (3, 2, 0, 1)  # Keras (1.., in, out) -> torch
            self._init_weight(self.pointwise, "weight", spec["initializer"],
                              (1,) * nd + (cin * mult, filters), axes)
            self._track("pointwise_kernel", self.pointwise, "weight", axes,
                        regularizer=spec["regularizer"])
            bias_owner = self.pointwise
        if use_bias:
            self._init_weight(bias_owner, "bias", self.bias_initializer, (self.filters,))
            self._track("bias", bias_owner, "bias", regularizer=self.bias_regularizer)
        self.built = True

    @property
    def depthwise_kernel(self) -> Weight:
        return self._weight_list[0]

    @property
    def bias(self) -> Weight | None:
        return self._weight_list[-1] if self.use_bias else None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if not self.built:
            self._maybe_build(input_shape)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("filters", "groups", "kernel_initializer", "kernel_regularizer"):
            config.pop(key)
        config.update(depth_multiplier=self.depth_multiplier,
                      depthwise_initializer=serialize(self.kernel_initializer),
                      depthwise_regularizer=serialize(self.kernel_regularizer))
        return config


class _Separable(_Depthwise):
    """A depthwise convolution, then a 1x1 convolution to `filters` channels with the bias."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, depth_multiplier: int = 1, activation: Any = None,
                 use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None,
                 depthwise_constraint: Any = None, pointwise_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        name = type(self).__name__
        check_constraint(name, pointwise_constraint=pointwise_constraint)
        spec = {"filters": _positive(filters, "filters", name),
                "initializer": initializers.get(pointwise_initializer),
                "regularizer": regularizers.get(pointwise_regularizer)}
        super().__init__(kernel_size, strides=strides, padding=padding,
                         depth_multiplier=depth_multiplier, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation,
                         use_bias=use_bias, depthwise_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer,
                         depthwise_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         depthwise_constraint=depthwise_constraint,
                         bias_constraint=bias_constraint, _pointwise=spec, **kwargs)
        if not self.built:
            self.filters = spec["filters"]

    @property
    def pointwise_kernel(self) -> Weight:
        return self._weight_list[1]

    def _convolve_cf(self, x: Tensor) -> Tensor:
        return self.pointwise(super()._convolve_cf(x))

    def get_config(self) -> dict:
        spec = self._pointwise_spec
        return {**super().get_config(), "filters": spec["filters"],
                "pointwise_initializer": serialize(spec["initializer"]),
                "pointwise_regularizer": serialize(spec["regularizer"])}


class DepthwiseConv1D(_Depthwise):
    """Per-channel 1-D convolution over (batch, steps, channels); kernel (k, in, mult)."""

    _nd = 1


class DepthwiseConv2D(_Depthwise):
    """Per-channel 2-D convolution over (batch, h, w, channels); kernel (kh, kw, in, mult)."""

    _nd = 2


class SeparableConv1D(_Separable):
    """DepthwiseConv1D then a pointwise (kernel-size 1) Conv1D to `filters` channels."""

    _nd = 1


class SeparableConv2D(_Separable):
    """DepthwiseConv2D then a pointwise 1x1 Conv2D to `filters` channels."""

    _nd = 2
