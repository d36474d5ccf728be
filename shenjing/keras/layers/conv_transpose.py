"""Conv1DTranspose and Conv2DTranspose: Keras's arguments over nn.ConvTranspose1d/2d.

Keras stores the kernel as (k..., filters, in_channels); the nn module as (in, out, k...).
Output lengths follow Keras: 'valid' gives (n - 1) * s + d * (k - 1) + 1, 'same' gives
n * s; 'same' crops the full transposed output by TensorFlow's split of k_eff - s (the
smaller half first), done here by the module's symmetric padding plus one extra trailing
row/column sliced off when the split is odd.
"""

from __future__ import annotations

from typing import Any

from ... import nn
from ...tensor import Tensor
from .. import activations
from .conv import _Conv

__all__ = ["Conv1DTranspose", "Conv2DTranspose"]


class _ConvTranspose(_Conv):
    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 output_padding: Any = None, data_format: str | None = None,
                 dilation_rate: Any = 1, **kwargs: Any) -> None:
        name = type(self).__name__
        if str(padding).lower() not in ("valid", "same"):
            raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
        if output_padding is not None:
            raise NotImplementedError(f"{name}: output_padding is not supported (leave None)")
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)
        self.output_padding = None

    def _crops(self) -> list[tuple[int, int, int]]:
        """Per dim: (module padding, module output_padding, extra trailing crop)."""
        out = []
        for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate):
            k_eff = d * (k - 1) + 1
            if self.padding == "valid":
                out.append((0, 0, 0))
            elif k_eff < s:
                out.append((0, s - k_eff, 0))
            else:
                lo = (k_eff - s) // 2
                out.append((lo, 0, (k_eff - s) - 2 * lo))
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
        spatial = []
        for n, k, s, d in zip(self._spatial(input_shape), self.kernel_size, self.strides,
                              self.dilation_rate):
            if n is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(n * s)
            else:
                spatial.append((n - 1) * s + d * (k - 1) + 1)
        return self._shape(input_shape[0], tuple(spatial), self.filters)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("groups", None)
        return {**cfg, "output_padding": self.output_padding}


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution over (batch, steps, channels); kernel (k, filters, in)."""

    _nd = 1


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution over (batch, rows, cols, channels); kernel
    (kh, kw, filters, in)."""

    _nd = 2

