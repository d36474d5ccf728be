"""torch.nn.functional's convolution and pooling functions over the conv/pool Functions.

Arguments are checked here, at the user's call, so a bad shape fails with the op's name and
expected vs actual sizes; the kernels in shenjing/ops/conv.py and pool.py see arrays only.
"""

from __future__ import annotations

import numpy as np

from ..ops.conv import Conv
from ..ops.pool import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AvgPool,
    MaxPool,
    _adaptive_max_indices,
    _max_indices,
    _PoolGeom,
)
from ..ops.window import _out_size, _Size
from ..tensor import Tensor, as_tensor

__all__ = ["conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d"]

_DIMS = {1: "L", 2: "H, W"}


def int_tuple(op: str, what: str, v, nd: int, minimum: int) -> tuple:
    items = (v,) * nd if isinstance(v, (int, np.integer)) else tuple(v)
    if len(items) == 1:
        items = items * nd
    if len(items) != nd or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                                   for i in items):
        raise TypeError(f"{op}: {what} must be an int or a tuple of {nd} ints, got {v!r}")
    if min(items) < minimum:
        raise ValueError(f"{op}: {what} must be >= {minimum}, got {v!r}")
    return tuple(int(i) for i in items)


def check_input(name: str, x, nd: int, channels: int | None = None) -> None:
    """x must be a (N, C, *S) or unbatched (C, *S) Tensor with `channels` channels."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected input to be a Tensor, got {type(x).__name__}")
    c = "C" if channels is None else str(channels)
    shape = tuple(x.shape)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{name}: expected input of shape (N, {c}, {_DIMS[nd]}) (or unbatched "
                         f"({c}, {_DIMS[nd]})), got {shape}")
    if channels is not None and shape[-nd - 1] != channels:
        raise ValueError(f"{name}: expected input of shape (N, {c}, {_DIMS[nd]}), got {shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}")


def conv_padding(op: str, padding, kernel: tuple, dilation: tuple, stride: tuple) -> tuple:
    """Normalize padding (int, tuple, 'same', 'valid') to ((lo, hi) per spatial dim)."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', "
                             f"got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride={stride})")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)  # torch puts the odd one last
    return tuple((p, p) for p in int_tuple(op, "padding", padding, nd, 0))


def frame_args(stride: tuple, pads: tuple, dilation: tuple) -> dict:
    """nd-tuples -> the Conv Function's 2-D attributes (1-D gets a unit height)."""
    if len(stride) == 1:
        stride, pads, dilation = (1,) + stride, ((0, 0),) + pads, (1,) + dilation
    return {"stride": stride, "padding": pads[0] + pads[1], "dilation": dilation}


def check_fits(name: str, spatial: tuple, pads: tuple, kernel: tuple, dilation: tuple) -> None:
    """Raise when the (padded) input is smaller than the (dilated) kernel."""
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(p < e for p, e in zip(padded, eff)):
        what = f"kernel size {kernel}" + (f" (dilated to {eff})" if eff != kernel else "")
        pad = f" (padded to {padded})" if padded != spatial else ""
        raise ValueError(f"{name}: input of spatial size {spatial}{pad} is smaller than the "
                         f"{what}")


def _conv(nd: int, op: str, x, w, b, stride, padding, dilation, groups):
    if not isinstance(w, Tensor):
        raise TypeError(f"{op}: expected weight to be a Tensor, got {type(w).__name__}")
    if w.ndim != nd + 2:
        raise ValueError(f"{op}: expected a {nd + 2}-D weight (out_channels, in_channels / "
                         f"groups, {'k' if nd == 1 else 'kh, kw'}), got {tuple(w.shape)}")
    if not isinstance(groups, (int, np.integer)) or groups < 1 or w.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups!r} must be a positive int dividing "
                         f"out_channels={w.shape[0]}")
    check_input(op, x, nd, w.shape[1] * groups)
    if b is not None and (not isinstance(b, Tensor) or b.shape != (w.shape[0],)):
        raise ValueError(f"{op}: expected a bias of shape ({w.shape[0]},), got "
                         f"{getattr(b, 'shape', type(b).__name__)}")
    if x.dtype != w.dtype or (b is not None and b.dtype != w.dtype):
        raise TypeError(f"{op}: input dtype {x.dtype} and weight dtype {w.dtype} differ; cast "
                        f"one of them (e.g. .float() or .double())")
    kernel = tuple(w.shape[2:])
    stride = int_tuple(op, "stride", stride, nd, 1)
    dilation = int_tuple(op, "dilation", dilation, nd, 1)
    pads = conv_padding(op, padding, kernel, dilation, stride)
    check_fits(op, tuple(x.shape[-nd:]), pads, kernel, dilation)
    args = (x, w) if b is None else (x, w, b)
    return Conv.apply(*args, groups=int(groups), **frame_args(stride, pads, dilation))


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Size = 1,
           padding: _Size | str = 0, dilation: _Size = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv1d: input (N, C, L) or (C, L), weight (O, C / groups, k)."""
    return _conv(1, "conv1d", input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Size = 1,
           padding: _Size | str = 0, dilation: _Size = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d: input (N, C, H, W) or (C, H, W), weight (O, C/groups, kh, kw)."""
    return _conv(2, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def pool_args(nd: int, name: str, x, kernel_size, stride, padding, dilation, ceil_mode: bool,
              is_max: bool) -> tuple:
    """Check a pool's input and arguments; returns nd-tuples (kernel, stride, pad, dilation)."""
    check_input(name, x, nd)
    k = int_tuple(name, "kernel_size", kernel_size, nd, 1)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
        int_tuple(name, "stride", stride, nd, 1)
    p = int_tuple(name, "padding", padding, nd, 0)
    d = int_tuple(name, "dilation", dilation, nd, 1)
    half = tuple(ki // 2 for ki in k)  # torch's limit, even for dilated max pooling
    if any(pi > hi for pi, hi in zip(p, half)):
        raise ValueError(f"{name}: padding {p} must be at most half of the kernel size {k} "
                         f"(at most {half})")
    spatial = tuple(x.shape[-nd:])
    out = tuple(_out_size(n, ki, si, pi, pi, di, ceil_mode)
                for n, ki, si, pi, di in zip(spatial, k, s, p, d))
    if min(out) < 1:
        raise ValueError(f"{name}: input of spatial size {spatial} is smaller than the kernel "
                         f"size {k} (padding {p}, dilation {d}): the output would be empty")
    return k, s, p, d


def max_pool_apply(nd, name, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                   relu=False):
    """Max pooling after argument checks; `relu=True` (nn.Sequential's ReLU + max pool
    fusion) returns relu of the pooled values, = the pool of relu(x), in one op."""
    k, s, p, d = pool_args(nd, name, x, kernel_size, stride, padding, dilation, ceil_mode, True)
    out = MaxPool.apply(x, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=bool(ceil_mode),
                        relu=relu)
    if not return_indices:
        return out
    geo = _PoolGeom(x.shape, k, s, p, d, bool(ceil_mode))
    return out, as_tensor(_max_indices(x.numpy(), out.numpy(), geo))


def max_pool1d(input: Tensor, kernel_size: _Size, stride: _Size | None = None,
               padding: _Size = 0, dilation: _Size = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    """torch.nn.functional.max_pool1d on (N, C, L) or (C, L)."""
    return max_pool_apply(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input: Tensor, kernel_size: _Size, stride: _Size | None = None,
               padding: _Size = 0, dilation: _Size = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    """torch.nn.functional.max_pool2d on (N, C, H, W) or (C, H, W); stride defaults to kernel."""
    return max_pool_apply(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def avg_pool_apply(nd, name, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                   divisor_override=None):
    k, s, p, _ = pool_args(nd, name, x, kernel_size, stride, padding, 1, ceil_mode, False)
    if divisor_override is not None and (not isinstance(divisor_override, int)
                                         or divisor_override < 1):
        raise ValueError(f"{name}: divisor_override must be a positive int, got "
                         f"{divisor_override!r}")
    return AvgPool.apply(x, kernel=k, stride=s, padding=p, ceil_mode=bool(ceil_mode),
                         count_include_pad=bool(count_include_pad),
                         divisor_override=divisor_override)


def avg_pool1d(input: Tensor, kernel_size: _Size, stride: _Size | None = None,
               padding: _Size = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """torch.nn.functional.avg_pool1d on (N, C, L) or (C, L)."""
    return avg_pool_apply(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode,
                          count_include_pad)


def avg_pool2d(input: Tensor, kernel_size: _Size, stride: _Size | None = None,
               padding: _Size = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """torch.nn.functional.avg_pool2d on (N, C, H, W) or (C, H, W)."""
    return avg_pool_apply(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode,
                          count_include_pad, divisor_override)


def adaptive_apply(nd: int, name: str, x, output_size, is_max: bool,
                   return_indices: bool = False):
    """Adaptive pools: bins that tile the input run the plain pool kernels."""
    check_input(name, x, nd)
    spatial = tuple(x.shape[-nd:])
    items = (output_size,) * nd if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(items) == 1:
        items = items * nd
    osz = tuple(n if o is None else o for n, o in zip(spatial, items))
    if len(items) != nd or not all(isinstance(o, (int, np.integer)) and o >= 1 for o in osz):
        raise ValueError(f"{name}: output_size must be a positive int or a tuple of {nd} "
                         f"positive ints (or None), got {output_size!r}")
    osz = tuple(int(o) for o in osz)
    if all(n % o == 0 for n, o in zip(spatial, osz)):
        k = tuple(n // o for n, o in zip(spatial, osz))
        if not is_max:
            return AvgPool.apply(x, kernel=k, stride=k, padding=(0,) * nd)
        return max_pool_apply(nd, name, x, k, k, 0, 1, False, return_indices)
    out = (AdaptiveMaxPool if is_max else AdaptiveAvgPool).apply(x, output_size=osz)
    if not return_indices:
        return out
    return out, as_tensor(_adaptive_max_indices(x.numpy(), out.numpy(), osz))


def adaptive_avg_pool1d(input: Tensor, output_size: int) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool1d on (N, C, L) or (C, L)."""
    return adaptive_apply(1, "adaptive_avg_pool1d", input, output_size, False)


def adaptive_avg_pool2d(input: Tensor, output_size: _Size | None) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool2d; output_size an int or a pair (None: keep)."""
    return adaptive_apply(2, "adaptive_avg_pool2d", input, output_size, False)


def adaptive_max_pool1d(input: Tensor, output_size: int, return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool1d on (N, C, L) or (C, L)."""
    return adaptive_apply(1, "adaptive_max_pool1d", input, output_size, True, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size: _Size | None,
                        return_indices: bool = False):
    """torch.nn.functional.adaptive_max_pool2d; output_size an int or a pair (None: keep)."""
    return adaptive_apply(2, "adaptive_max_pool2d", input, output_size, True, return_indices)
