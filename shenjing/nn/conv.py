"""Convolution and pooling layers (torch.nn names, arguments, parameters and initialization).

The layers are thin: they hold parameters and hyper-parameters normalized once at
construction, check each input against them (naming the layer, expected vs actual shape)
and call the Functions in `shenjing.ops.conv`, where the kernels live.
"""

from __future__ import annotations

import math

import numpy as np

from ..dtypes import resolve_dtype
from ..random import get_rng
from ..tensor import Tensor
from . import functional_conv as C
from . import functional_conv as P
from .module import Module, Parameter

__all__ = [
    "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
]

_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: `_nd` spatial dimensions."""

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__()
        name, nd = type(self).__name__, self._nd
        for what, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: {what} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels="
                             f"{out_channels} must both be divisible by groups={groups}")
        if padding_mode not in ("zeros", *_NP_PAD_MODE):
            raise ValueError(f"{name}: padding_mode must be one of 'zeros', 'reflect', "
                             f"'replicate', 'circular', got {padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = C.int_tuple(name, "kernel_size", kernel_size, nd, 1)
        self.stride = C.int_tuple(name, "stride", stride, nd, 1)
        self.dilation = C.int_tuple(name, "dilation", dilation, nd, 1)
        self._pads = C.conv_padding(name, padding, self.kernel_size, self.dilation, self.stride)
        self.padding = padding if isinstance(padding, str) else tuple(p for p, _ in self._pads)
        self.groups, self.padding_mode = int(groups), padding_mode
        self._frame_args = C.frame_args(self.stride, ((0, 0),) * nd if padding_mode != "zeros"
                                        else self._pads, self.dilation)
        dt = resolve_dtype(dtype) or np.dtype(np.float32)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((out_channels,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: kaiming_uniform(a=sqrt(5)) weights and U(+-1/sqrt(fan_in)) bias.

        kaiming_uniform with a=sqrt(5) has the bound sqrt(6 / ((1 + 5) * fan_in)), which is
        1/sqrt(fan_in), the same as the bias.
        """
        rng = get_rng()
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        w = self.weight.numpy()
        w[...] = rng.uniform(-bound, bound, w.shape)
        if self.bias is not None:
            self.bias.numpy()[...] = rng.uniform(-bound, bound, self.bias.shape)

    def _label(self) -> str:
        return f"{type(self).__name__}(in_channels={self.in_channels})"

    def forward(self, input: Tensor) -> Tensor:
        C.check_input(self._label(), input, self._nd, self.in_channels)
        if input.dtype != self.weight.dtype:
            raise TypeError(f"{self._label()}: input dtype {input.dtype} does not match the "
                            f"weight dtype {self.weight.dtype}; convert the input (.float() / "
                            f".double()) or the layer (.to(dtype))")
        spatial = tuple(input.shape[-self._nd:])
        C.check_fits(self._label(), spatial, self._pads, self.kernel_size, self.dilation)
        if self.padding_mode != "zeros":
            input = self._pad_input(input)
        args = (input, self.weight) if self.bias is None else (input, self.weight, self.bias)
        return C.Conv.apply(*args, groups=self.groups, **self._frame_args)

    def _pad_input(self, x: Tensor) -> Tensor:
        """Reflect / replicate / circular padding as a gather (its backward scatters back)."""
        mode = _NP_PAD_MODE[self.padding_mode]
        index = [slice(None)] * (x.ndim - self._nd)
        for axis, (lo, hi) in enumerate(self._pads):
            n = x.shape[x.ndim - self._nd + axis]
            if mode == "reflect" and max(lo, hi) >= n:
                raise ValueError(f"{self._label()}: reflect padding {(lo, hi)} must be smaller "
                                 f"than the input size {n}")
            idx = np.pad(np.arange(n), (lo, hi), mode=mode)
            index.append(idx.reshape((-1,) + (1,) * (self._nd - 1 - axis)))
        return x[tuple(index)]

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or unbatched (C, L); weight (out, in / groups, k)."""

    _nd = 1


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or unbatched (C, H, W); weight (out, in/groups, kh, kw).

    `padding` is an int, a pair, 'valid' or 'same' (stride 1 only; an odd total padding puts
    the extra row/column at the bottom/right, as torch does).
    """

    _nd = 2


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor, relu: bool = False):
        """`relu=True`: this pool applied to relu(input), in one op (nn.Sequential's fusion)."""
        return P.max_pool_apply(self._nd, type(self).__name__, input, self.kernel_size, self.stride,
                                self.padding, self.dilation, self.ceil_mode, self.return_indices,
                                relu)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding},"
                f" dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L) or (C, L); stride defaults to kernel_size."""

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W) or (C, H, W); stride defaults to kernel_size.

    Padded positions never win; ties go to the first maximum in the window, as in torch.
    """

    _nd = 2


class AvgPool1d(Module):
    """Average pooling over (N, C, L) or (C, L)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        one = (lambda v: (v,) if isinstance(v, int) else tuple(v))  # noqa: E731
        self.kernel_size = one(kernel_size)
        self.stride = self.kernel_size if stride is None else one(stride)
        self.padding = one(padding)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return P.avg_pool_apply(1, "AvgPool1d", input, self.kernel_size, self.stride,
                                self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Average pooling over (N, C, H, W) or (C, H, W) with torch's divisor rules."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return P.avg_pool_apply(2, "AvgPool2d", input, self.kernel_size, self.stride,
                                self.padding, self.ceil_mode, self.count_include_pad,
                                self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePoolNd(Module):
    _nd, _max = 2, False

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        if self._max:
            self.return_indices = return_indices

    def forward(self, input: Tensor):
        return P.adaptive_apply(self._nd, type(self).__name__, input, self.output_size,
                                self._max, self._max and self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """Average over torch's adaptive bins of (N, C, L) to output_size."""

    _nd, _max = 1, False

    def __init__(self, output_size) -> None:
        super().__init__(output_size)


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """Average over torch's adaptive bins (start=floor(i*H/out), end=ceil((i+1)*H/out)).

    output_size is an int or a pair whose None entries keep that input size.
    """

    _nd, _max = 2, False

    def __init__(self, output_size) -> None:
        super().__init__(output_size)


class AdaptiveMaxPool1d(_AdaptivePoolNd):
    """Max over torch's adaptive bins of (N, C, L) to output_size."""

    _nd, _max = 1, True


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """Max over torch's adaptive bins; output_size an int or a pair (None: keep)."""

    _nd, _max = 2, True
