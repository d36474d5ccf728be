"""Keras convolution and pooling layers (channels-last API over NCHW `nn` modules).

Conv1D/Conv2D wrap nn.Conv1d/Conv2d, the poolings nn.MaxPool*/AvgPool*. They compute in
channels-first layout (`_call_cf`); a model keeps consecutive such layers channels-first, so
a Conv-Pool-Conv-Pool block is transposed once on entry and once at the Flatten.

padding='same' follows TensorFlow: the output has ceil(n / stride) positions and an odd
total padding puts the extra row/column at the bottom/right. Where that padding is
symmetric it is the nn module's own; otherwise the input is padded explicitly (with -inf for
max pooling; average pooling then rescales so padded cells are not counted, as in Keras).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nn
from ...tensor import Tensor, as_tensor, pad
from .. import activations, initializers, regularizers
from ..registry import serialize
from .base import Layer, to_cf, to_cl
from .core import activation_config, check_constraint

__all__ = ["Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
           "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D"]


def _tuple(value: Any, nd: int, what: str, layer: str) -> tuple:
    t = (value,) * nd if isinstance(value, (int, np.integer)) else tuple(value)
    if len(t) != nd or not all(isinstance(v, (int, np.integer)) and v > 0 for v in t):
        raise ValueError(f"{layer}: {what} must be a positive int or a tuple of {nd} positive "
                         f"ints, got {value!r}")
    return tuple(int(v) for v in t)


def _same_pads(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) of one spatial dimension."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _out_len(n: int | None, k: int, s: int, d: int, padding: str) -> int | None:
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    if padding == "causal":
        return (n - 1) // s + 1
    return (n - d * (k - 1) - 1) // s + 1


def _check_padding(padding: str, layer: str, allowed: tuple) -> str:
    padding = str(padding).lower()
    if padding not in allowed:
        raise ValueError(f"{layer}: padding must be one of {', '.join(map(repr, allowed))}, "
                         f"got {padding!r}")
    return padding


def _data_format(data_format: str | None) -> str:
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got "
                         f"{data_format!r}")
    return data_format


class _Spatial(Layer):
    """Shared plumbing of layers over 1 or 2 spatial dims in either data format."""

    _nd = 2

    def _init_format(self, data_format: str | None) -> None:
        self.data_format = _data_format(data_format)

    def _cf_mode(self, ndim: int) -> str:
        return "prefer" if self.data_format == "channels_last" else "no"

    def _channels(self, input_shape: tuple) -> int | None:
        return input_shape[-1] if self.data_format == "channels_last" else input_shape[1]

    def _spatial(self, input_shape: tuple) -> tuple:
        return tuple(input_shape[1:-1]) if self.data_format == "channels_last" else \
            tuple(input_shape[2:])

    def _shape(self, n: Any, spatial: tuple, c: Any) -> tuple:
        return (n,) + tuple(spatial) + (c,) if self.data_format == "channels_last" else \
            (n, c) + tuple(spatial)

    def _check_rank(self, x: Tensor) -> None:
        if x.ndim != self._nd + 2:
            raise ValueError(f"Input of layer {self.name!r} ({type(self).__name__}) must have "
                             f"{self._nd + 2} dimensions (batch, {'spatial, ' * self._nd}"
                             f"channels), got shape {tuple(x.shape)}")

    def call(self, inputs: Tensor) -> Tensor:
        if self.data_format == "channels_first":
            return self._call_cf(inputs, False)
        return to_cl(self._call_cf(to_cf(inputs), False))


class _Conv(_Spatial):
    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, groups: int = 1,
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        name, nd = type(self).__name__, self._nd
        check_constraint(name, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint)
        if not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"{name}: filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size", name)
        self.strides = _tuple(strides, nd, "strides", name)
        self.dilation_rate = _tuple(dilation_rate, nd, "dilation_rate", name)
        self.padding = _check_padding(padding, name, ("valid", "same", "causal") if nd == 1
                                      else ("valid", "same"))
        self._init_format(data_format)
        self.groups = int(groups)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def _static_pads(self) -> tuple | None:
        """Padding independent of the input size (stride 1 / valid / causal), else None."""
        nd = self._nd
        if self.padding == "valid":
            return ((0, 0),) * nd
        if self.padding == "causal":
            return ((self.dilation_rate[0] * (self.kernel_size[0] - 1), 0),)
        if all(s == 1 for s in self.strides):
            return tuple(_same_pads(1, k, 1, d) for k, d in zip(self.kernel_size,
                                                                 self.dilation_rate))
        return None

    def _input_channels(self, input_shape: tuple) -> int:
        """The inputs' channel count, after checking their rank and that it is defined."""
        name = type(self).__name__
        if len(input_shape) != self._nd + 2:
            raise ValueError(f"{name} {self.name!r}: expected inputs of rank {self._nd + 2}, got "
                             f"shape {input_shape}")
        cin = self._channels(input_shape)
        if cin is None:
            raise ValueError(f"{name} {self.name!r}: the channel dimension of the inputs must "
                             f"be defined, got input shape {input_shape}")
        return cin

    def build(self, input_shape: tuple) -> None:
        name = type(self).__name__
        cin = self._input_channels(input_shape)
        if cin % self.groups or self.filters % self.groups:
            raise ValueError(f"{name}: input channels ({cin}) and filters ({self.filters}) must "
                             f"be divisible by groups ({self.groups})")
        pads = self._static_pads()
        module_pad: Any = 0
        self._pre_pad = None
        if pads is not None and all(lo == hi for lo, hi in pads):
            module_pad = tuple(lo for lo, _ in pads)
        elif pads is not None:
            self._pre_pad = pads
        cls = nn.Conv1d if self._nd == 1 else nn.Conv2d
        self.conv = cls(int(cin), self.filters, self.kernel_size, stride=self.strides,
                        padding=module_pad, dilation=self.dilation_rate, groups=self.groups,
                        bias=self.use_bias)
        keras_shape = self.kernel_size + (int(cin) // self.groups, self.filters)
        axes = (2, 1, 0) if self._nd == 1 else (3, 2, 0, 1)  # Keras (k.., in, out) -> torch
        self._init_weight(self.conv, "weight", self.kernel_initializer, keras_shape, axes)
        self._track("kernel", self.conv, "weight", axes, regularizer=self.kernel_regularizer)
        if self.use_bias:
            self._init_weight(self.conv, "bias", self.bias_initializer, (self.filters,))
            self._track("bias", self.conv, "bias", regularizer=self.bias_regularizer)
        self.built = True

    @property
    def kernel(self):
        return self._weight_list[0]

    @property
    def bias(self):
        return self._weight_list[1] if self.use_bias else None

    def _pads_for(self, spatial: tuple) -> tuple:
        if self._pre_pad is not None:
            return self._pre_pad
        return tuple(_same_pads(n, k, s, d) for n, k, s, d in
                     zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        y = self._convolve_cf(x)
        if self.activation in (activations.softmax, activations.log_softmax):
            return self.activation(y, axis=1)
        return self.activation(y)

    def _convolve_cf(self, x: Tensor) -> Tensor:
        """The convolution of channels-first x (padded as the layer says), before the
        activation; separable layers follow it with their pointwise convolution."""
        self._check_rank(x)
        if x.shape[1] != self.conv.in_channels:
            raise ValueError(f"Input of layer {self.name!r} ({type(self).__name__}) has "
                             f"{x.shape[1]} channels, expected {self.conv.in_channels}")
        if self._pre_pad is not None or (self.padding == "same"
                                         and any(s != 1 for s in self.strides)):
            pads = self._pads_for(tuple(x.shape[2:]))
            if any(p for lh in pads for p in lh):
                x = pad(x, [p for lo_hi in reversed(pads) for p in lo_hi])
        return self.conv(x)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        spatial = tuple(_out_len(n, k, s, d, self.padding) for n, k, s, d in
                        zip(self._spatial(input_shape), self.kernel_size, self.strides,
                            self.dilation_rate))
        return self._shape(input_shape[0], spatial, self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": activation_config(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": serialize(self.kernel_initializer),
                "bias_initializer": serialize(self.bias_initializer),
                "kernel_regularizer": serialize(self.kernel_regularizer),
                "bias_regularizer": serialize(self.bias_regularizer)}


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels); padding 'valid', 'same' or 'causal'."""

    _nd = 1


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels); kernel (kh, kw, in, filters)."""

    _nd = 2


class _Pool(_Spatial):
    _max = True

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        name, nd = type(self).__name__, self._nd
        self.pool_size = _tuple(pool_size, nd, "pool_size", name)
        self.strides = self.pool_size if strides is None else _tuple(strides, nd, "strides",
                                                                     name)
        self.padding = _check_padding(padding, name, ("valid", "same"))
        self._init_format(data_format)
        if self._max:
            cls = nn.MaxPool1d if nd == 1 else nn.MaxPool2d
            self.pool = cls(self.pool_size, self.strides)
        else:
            cls = nn.AvgPool1d if nd == 1 else nn.AvgPool2d
            self.pool = cls(self.pool_size, self.strides)
        self._scale_cache: dict = {}
        self.built = True

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        self._check_rank(x)
        spatial = tuple(x.shape[2:])
        if self.padding == "valid":
            if any(n < k for n, k in zip(spatial, self.pool_size)):
                raise ValueError(f"Input of layer {self.name!r} ({type(self).__name__}) has "
                                 f"spatial size {spatial}, smaller than pool_size "
                                 f"{self.pool_size} (use padding='same')")
            return self.pool(x)
        pads = tuple(_same_pads(n, k, s) for n, k, s in zip(spatial, self.pool_size,
                                                           self.strides))
        if not any(p for lh in pads for p in lh):
            return self.pool(x)
        flat = [p for lo_hi in reversed(pads) for p in lo_hi]
        if self._max:
            return self.pool(pad(x, flat, value=-np.inf))
        out = self.pool(pad(x, flat))
        return out * self._avg_scale(spatial, pads, x.dtype)

    def _avg_scale(self, spatial: tuple, pads: tuple, dtype: np.dtype) -> Tensor:
        """pool area / number of real cells per window, so zero padding is not counted."""
        key = (spatial, dtype)
        if key not in self._scale_cache:
            ones = np.zeros((1, 1) + tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads)),
                            dtype)
            ones[(0, 0) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(spatial, pads))] = 1
            counts = self.pool(as_tensor(ones)).numpy()
            self._scale_cache[key] = as_tensor((1.0 / counts).astype(dtype))
        return self._scale_cache[key]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        spatial = tuple(_out_len(n, k, s, 1, self.padding) for n, k, s in
                        zip(self._spatial(input_shape), self.pool_size, self.strides))
        return self._shape(input_shape[0], spatial, self._channels(input_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format}


class MaxPooling1D(_Pool):
    _nd, _max = 1, True


class MaxPooling2D(_Pool):
    """Max over pool_size windows (stride defaults to pool_size), channels-last."""

    _nd, _max = 2, True


class AveragePooling1D(_Pool):
    _nd, _max = 1, False


class AveragePooling2D(_Pool):
    """Mean over pool_size windows; with padding='same' padded cells are not counted."""

    _nd, _max = 2, False


class _GlobalPool(_Spatial):
    _max = False

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_format(data_format)
        self.keepdims = keepdims
        self.built = True

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        self._check_rank(x)
        dims = tuple(range(2, x.ndim))
        if self._max:
            return x.amax(dims, keepdim=self.keepdims)
        return x.mean(dims, keepdim=self.keepdims)

    def call(self, inputs: Tensor) -> Tensor:
        if self.data_format == "channels_first" or not self.keepdims:
            dims = tuple(range(2, inputs.ndim)) if self.data_format == "channels_first" else \
                tuple(range(1, inputs.ndim - 1))
            self._check_rank(inputs)
            return inputs.amax(dims, keepdim=self.keepdims) if self._max else \
                inputs.mean(dims, keepdim=self.keepdims)
        return super().call(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        c = self._channels(input_shape)
        if not self.keepdims:
            return (input_shape[0], c)
        return self._shape(input_shape[0], (1,) * self._nd, c)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPool):
    """Mean over the steps; with a mask (Embedding(mask_zero=True), Masking) only over the
    unmasked steps, as in Keras."""

    _nd, _max = 1, False

    def _cf_mode(self, ndim: int) -> str:
        return "no"  # steps-last input, where a (batch, steps) mask applies

    def call(self, inputs: Tensor, mask: Any = None) -> Tensor:
        if mask is None or self.data_format == "channels_first":
            return super().call(inputs)
        self._check_rank(inputs)
        weights = np.asarray(mask, dtype=np.float32)[..., None]
        total = (inputs * as_tensor(weights)).sum(1, keepdim=self.keepdims)
        count = np.maximum(weights.sum(1, keepdims=self.keepdims), 1.0)
        return total / as_tensor(count)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None


class GlobalAveragePooling2D(_GlobalPool):
    _nd, _max = 2, False


class GlobalMaxPooling1D(_GlobalPool):
    _nd, _max = 1, True


class GlobalMaxPooling2D(_GlobalPool):
    _nd, _max = 2, True

