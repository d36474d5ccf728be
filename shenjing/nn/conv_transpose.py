"""ConvTranspose1d/2d and F.conv_transpose1d/2d with torch's arguments, weight layout
(in_channels, out_channels / groups, *kernel) and default initialization."""

from __future__ import annotations

import math

import numpy as np

from ..ops import conv_transpose as CT
from ..tensor import Tensor
from . import init
from .functional_conv import _DIMS, int_tuple
from .layers import _dtype
from .module import Module, Parameter

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "conv_transpose1d", "conv_transpose2d"]




def _check_input(op: str, x, nd: int, channels: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected input to be a Tensor, got {type(x).__name__}")
    if x.ndim not in (nd + 1, nd + 2) or x.shape[-nd - 1] != channels:
        raise ValueError(f"{op}: expected input of shape (N, {channels}, {_DIMS[nd]}) (or "
                         f"unbatched ({channels}, {_DIMS[nd]})), got {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")


def _geometry(op: str, nd: int, stride, padding, output_padding, dilation) -> tuple:
    stride = int_tuple(op, "stride", stride, nd, 1)
    padding = int_tuple(op, "padding", padding, nd, 0)
    output_padding = int_tuple(op, "output_padding", output_padding, nd, 0)
    dilation = int_tuple(op, "dilation", dilation, nd, 1)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    return stride, padding, output_padding, dilation


def _apply(op: str, nd: int, x, w, b, stride, padding, output_padding, dilation, groups):
    """Check shapes and dtypes, then run the ConvTranspose Function (batched or not)."""
    if not isinstance(w, Tensor) or w.ndim != nd + 2:
        raise ValueError(f"{op}: expected a {nd + 2}-D weight (in_channels, out_channels / "
                         f"groups, *kernel), got {getattr(w, 'shape', type(w).__name__)}")
    if not isinstance(groups, (int, np.integer)) or groups < 1 or w.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups!r} must be a positive int dividing "
                         f"in_channels={w.shape[0]}")
    _check_input(op, x, nd, w.shape[0])
    cout = w.shape[1] * groups
    if b is not None and (not isinstance(b, Tensor) or tuple(b.shape) != (cout,)):
        raise ValueError(f"{op}: expected a bias of shape ({cout},), got "
                         f"{getattr(b, 'shape', type(b).__name__)}")
    if x.dtype != w.dtype or (b is not None and b.dtype != w.dtype):
        raise TypeError(f"{op}: input dtype {x.dtype} and weight dtype {w.dtype} differ; cast "
                        f"one of them (e.g. .float() or .double())")
    stride, padding, output_padding, dilation = _geometry(op, nd, stride, padding,
                                                          output_padding, dilation)
    spatial = tuple(x.shape[-nd:])
    sizes = [CT.output_size(n, k, s, p, o, d) for n, k, s, p, o, d in
             zip(spatial, w.shape[2:], stride, padding, output_padding, dilation)]
    if min(sizes) < 1:
        raise ValueError(f"{op}: input of spatial size {spatial} gives an output of size "
                         f"{tuple(sizes)}; reduce padding {padding}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.unsqueeze(0)
    if nd == 1:
        stride, padding, output_padding, dilation = ((1,) + stride, (0,) + padding,
                                                     (0,) + output_padding, (1,) + dilation)
    args = (x, w) if b is None else (x, w, b)
    y = CT.ConvTranspose.apply(*args, stride=stride, padding=padding,
                               output_padding=output_padding, dilation=dilation,
                               groups=int(groups))
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """torch.nn.functional.conv_transpose1d: input (N, Cin, L), weight (Cin, Cout / g, k)."""
    return _apply("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding,
                  dilation, groups)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """torch.nn.functional.conv_transpose2d: input (N, Cin, H, W), weight
    (Cin, Cout / g, kh, kw)."""
    return _apply("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding,
                  dilation, groups)


class _ConvTransposeNd(Module):
    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        name, nd = type(self).__name__, self._nd
        for what, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: {what} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels="
                             f"{out_channels} must both be divisible by groups={groups}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, as in torch, "
                             f"got {padding_mode!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, nd, 1)
        (self.stride, self.padding, self.output_padding,
         self.dilation) = _geometry(name, nd, stride, padding, output_padding, dilation)
        self.groups, self.padding_mode = int(groups), padding_mode
        dt = _dtype(dtype)
        self.weight = Parameter(np.empty((in_channels, out_channels // groups)
                                         + self.kernel_size, dt))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's: kaiming_uniform(a=sqrt(5)); bias U(+-1/sqrt(fan_in)), fan_in taken from
        weight dim 1 (out_channels / groups) times the kernel size."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def _output_padding(self, x: Tensor, output_size) -> tuple:
        """output_padding that makes the output `output_size` (torch's rule)."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        want = [int(s) for s in output_size][-nd:]
        spatial = x.shape[-nd:]
        pads = []
        for k in range(nd):
            lo = CT.output_size(spatial[k], self.kernel_size[k], self.stride[k],
                                self.padding[k], 0, self.dilation[k])
            if not lo <= want[k] < lo + self.stride[k]:
                raise ValueError(f"{type(self).__name__}: requested output size {want} is not "
                                 f"reachable; dim {k} must be in [{lo}, "
                                 f"{lo + self.stride[k] - 1}]")
            pads.append(want[k] - lo)
        return tuple(pads)

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        name = f"{type(self).__name__}(in_channels={self.in_channels})"
        return _apply(name, self._nd, input, self.weight, self.bias, self.stride,
                      self.padding, self._output_padding(input, output_size), self.dilation,
                      self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        nd = self._nd
        for what, default in (("padding", 0), ("output_padding", 0), ("dilation", 1)):
            if getattr(self, what) != (default,) * nd:
                s += f", {what}={getattr(self, what)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s



class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution over (N, Cin, L) or (Cin, L)."""

    _nd = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution over (N, Cin, H, W) or (Cin, H, W)."""

    _nd = 2
