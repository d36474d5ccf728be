"""Conv1DTranspose and Conv2DTranspose: Keras's arguments over nn.ConvTranspose1d/2d.

Keras stores the kernel as (k..., filters, in_channels); the nn module as (in, out, k...).
With k the dilated kernel size d * (k - 1) + 1, Keras 3's output length is
(n - 1) * s + X where X is, without output_padding, max(k, s) for 'valid' and s for 'same',
and with output_padding p, k + p for 'valid' and k % 2 + p for 'same' (p < s). The result is
the full transposed convolution, length (n - 1) * s + k, seen from offset c = 0 for 'valid'
and c = max(k - X, 0) // 2 for 'same' (TensorFlow's split, the smaller half first), with
zeros (plus the bias) where it runs past the end. That window is the module's symmetric
padding c plus its output_padding, and a trailing crop when the window ends earlier.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nn
from ...tensor import Tensor
from .. import activations
from .conv import _Conv

__all__ = ["Conv1DTranspose", "Conv2DTranspose"]


def _paddings(value: Any, nd: int, layer: str) -> tuple[int, ...]:
    t = (value,) * nd if isinstance(value, (int, np.integer)) else tuple(value)
    if len(t) != nd or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in t):
        raise ValueError(f"{layer}: output_padding must be a non-negative int or a tuple of "
                         f"{nd} such ints, got {value!r}")
    return tuple(int(v) for v in t)


class _ConvTranspose(_Conv):
    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: str | None = None,
                 dilation_rate: Any = 1, **kwargs: Any) -> None:
        name = type(self).__name__
        if str(padding).lower() not in ("valid", "same"):
            raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)
        if output_padding is not None:
            output_padding = _paddings(output_padding, self._nd, name)
            for p, s in zip(output_padding, self.strides):
                if p >= s:
                    raise ValueError(f"{name}: output_padding {output_padding} must be "
                                     f"smaller than the strides {self.strides} on each axis")
        self.output_padding = output_padding

    def _tail(self, i: int) -> int:
        """X of dim i: the output length is (n - 1) * stride + X (see the module doc)."""
        k = self.dilation_rate[i] * (self.kernel_size[i] - 1) + 1
        s = self.strides[i]
        if self.output_padding is None:
            return max(k, s) if self.padding == "valid" else s
        p = self.output_padding[i]
        return k + p if self.padding == "valid" else k % 2 + p

    def _crops(self) -> list[tuple[int, int, int]]:
        """Per dim: (module padding, module output_padding, extra trailing crop)."""
        out = []
        for i, (k, d) in enumerate(zip(self.kernel_size, self.dilation_rate)):
            k_eff, tail = d * (k - 1) + 1, self._tail(i)
            start = 0 if self.padding == "valid" else max(k_eff - tail, 0) // 2
            # module output: full[start : full_len - start + extra_out]; we need tail more
            # than (n - 1) * s from `start`, where full_len = (n - 1) * s + k_eff
            extra_out = max(0, tail - k_eff + 2 * start)
            out.append((start, extra_out, k_eff - 2 * start + extra_out - tail))
        return out

    def build(self, input_shape: tuple) -> None:
        cin = self._input_channels(input_shape)
        crops = self._crops()
        cls = nn.ConvTranspose1d if self._nd == 1 else nn.ConvTranspose2d
        self.conv = cls(int(cin), self.filters, self.kernel_size, stride=self.strides,
                        padding=tuple(c[0] for c in crops),
                        output_padding=tuple(c[1] for c in crops),
                        dilation=self.dilation_rate, bias=self.use_bias)
        self._extra_crop = tuple(c[2] for c in crops)
        keras_shape = self.kernel_size + (self.filters, int(cin))
        axes = (2, 1, 0) if self._nd == 1 else (3, 2, 0, 1)  # Keras (k.., out, in) -> torch
        self._init_weight(self.conv, "weight", self.kernel_initializer, keras_shape, axes)
        self._track("kernel", self.conv, "weight", axes, regularizer=self.kernel_regularizer)
        if self.use_bias:
            self._init_weight(self.conv, "bias", self.bias_initializer, (self.filters,))
            self._track("bias", self.conv, "bias", regularizer=self.bias_regularizer)
        self.built = True

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        self._check_rank(x)
        if x.shape[1] != self.conv.in_channels:
            raise ValueError(f"Input of layer {self.name!r} ({type(self).__name__}) has "
                             f"{x.shape[1]} channels, expected {self.conv.in_channels}")
        y = self.conv(x)
        if any(self._extra_crop):
            index = (slice(None), slice(None)) + tuple(
                slice(0, y.shape[2 + i] - c) for i, c in enumerate(self._extra_crop))
            y = y[index]
        if self.activation in (activations.softmax, activations.log_softmax):
            return self.activation(y, axis=1)
        return self.activation(y)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        spatial = tuple(None if n is None else (n - 1) * s + self._tail(i)
                        for i, (n, s) in enumerate(zip(self._spatial(input_shape),
                                                       self.strides)))
        return self._shape(input_shape[0], spatial, self.filters)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("groups", None)
        return {**cfg, "output_padding": (list(self.output_padding)
                                          if self.output_padding is not None else None)}


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution over (batch, steps, channels); kernel (k, filters, in)."""

    _nd = 1


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution over (batch, rows, cols, channels); kernel
    (kh, kw, filters, in)."""

    _nd = 2

