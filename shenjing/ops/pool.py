"""Max, average and adaptive pooling (1-D and 2-D) in the batch-innermost frame of conv.py.

Max pooling is the running maximum of kh*kw strided slices (PERF-NOTES lesson 6); its
backward routes each window's gradient to its first maximum in scan order, as torch does on
ties. Large non-overlapping windows (e.g. the max over time of a TextCNN) use a reshaped view
and one reduction instead of a loop over offsets. Average pooling follows torch's divisor
rules (count_include_pad, ceil_mode, divisor_override). Adaptive pools whose bins tile the
input run the plain kernels; other bin layouts get their own (rarely hot) Functions.
Outputs are NCHW-shaped views of (C, H, W, N) memory, like conv.py's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import Function
from .conv import (
    _frame,
    _nchw,
    _offsets,
    _out_size,
    _scratch,
    _Size,
    _un_nchw,
    check_input,
    int_tuple,
)

if TYPE_CHECKING:
    from ..tensor import Tensor

__all__ = [
    "MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "max_pool1d", "max_pool2d",
    "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_max_pool1d", "adaptive_max_pool2d",
]

_WINDOW_PATH_MIN = 16  # non-overlapping windows at least this big are reduced, not looped


class _PoolGeom:
    """Where a pool's windows lie, in the 2-D frame (1-D pools get a unit height)."""

    __slots__ = ("x_shape", "nd", "kernel", "stride", "dilation", "pads", "hw", "out", "tiled")

    def __init__(self, x_shape, kernel, stride, padding, dilation, ceil_mode) -> None:
        nd = len(kernel)
        if nd == 1:
            kernel, stride = (1,) + kernel, (1,) + stride
            padding, dilation = (0,) + padding, (1,) + dilation
        H = x_shape[-2] if nd == 2 else 1
        W = x_shape[-1]
        oh = _out_size(H, kernel[0], stride[0], padding[0], padding[0], dilation[0], ceil_mode)
        ow = _out_size(W, kernel[1], stride[1], padding[1], padding[1], dilation[1], ceil_mode)
        need_h = (oh - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1
        need_w = (ow - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1
        self.x_shape, self.nd, self.hw, self.out = x_shape, nd, (H, W), (oh, ow)
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        # bottom/right padding reaches the last window (ceil_mode) and no further
        self.pads = (padding[0], max(need_h - padding[0] - H, 0),
                     padding[1], max(need_w - padding[1] - W, 0))
        self.tiled = (stride == kernel and dilation == (1, 1)
                      and kernel[0] * kernel[1] >= _WINDOW_PATH_MIN)

    def offsets(self) -> list:
        return _offsets(*self.kernel, self.stride, self.dilation, *self.out)

    def tiles(self, a: np.ndarray) -> np.ndarray:
        """(C, Hp, Wp, N) -> (C, oh, kh, ow, kw, N) view of the non-overlapping windows."""
        (kh, kw), (oh, ow) = self.kernel, self.out
        return a[:, :oh * kh, :ow * kw].reshape(a.shape[0], oh, kh, ow, kw, a.shape[3])

    def frame(self, x: np.ndarray, fill: float) -> np.ndarray:
        return _frame(_nchw(x, self.nd), self.pads, fill, contiguous=False)

    @property
    def covered(self) -> bool:
        """True when the windows tile [:oh*kh, :ow*kw] exactly (each element in one window)."""
        return self.stride == self.kernel and self.dilation == (1, 1)

    def grad_frame(self, g: np.ndarray, zero: bool = True) -> tuple:
        """Upstream gradient as (C, oh, ow, N), and the padded input gradient: zeroed, or
        (zero=False, for tiling windows that the caller assigns) zeroed outside the tiles."""
        gi = _nchw(g, self.nd).transpose(1, 2, 3, 0)
        pt, pb, pl, pr = self.pads
        H, W = self.hw
        shape = (gi.shape[0], pt + H + pb, pl + W + pr, gi.shape[3])
        if zero:
            return gi, _scratch.zeros(shape, g.dtype)
        dxp = _scratch.empty(shape, g.dtype)
        (kh, kw), (oh, ow) = self.kernel, self.out
        dxp[:, oh * kh:] = 0.0
        dxp[:, :oh * kh, ow * kw:] = 0.0
        return gi, dxp

    def crop(self, dxp: np.ndarray) -> np.ndarray:
        """Padded (C, Hp, Wp, N) gradient -> the input's shape (a view)."""
        (H, W), pt, pl = self.hw, self.pads[0], self.pads[2]
        dx4 = dxp[:, pt:pt + H, pl:pl + W].transpose(3, 0, 1, 2)
        return _un_nchw(dx4, len(self.x_shape), self.nd)

    def finish(self, out: np.ndarray) -> np.ndarray:
        """(C, oh, ow, N) result -> the NCHW-shaped (or 1-D / unbatched) output view."""
        return _un_nchw(out.transpose(3, 0, 1, 2), len(self.x_shape), self.nd)


def _slice_reduce(views: list, ufunc, shape: tuple, dtype) -> np.ndarray:
    """ufunc-reduce equally shaped strided views into a new (C, oh, ow, N) array."""
    out = _scratch.empty(shape, dtype)
    if len(views) == 1:
        out[...] = views[0]
        return out
    ufunc(views[0], views[1], out=out)
    for v in views[2:]:
        ufunc(out, v, out=out)
    return out


class MaxPool(Function):
    """Max pooling (1-D or 2-D); padded positions are -inf, so they never win."""

    op_name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                ceil_mode=False):
        ctx.geo = geo = _PoolGeom(x.shape, kernel, stride, padding, dilation, ceil_mode)
        xp = geo.frame(x, -math.inf)
        if geo.tiled:
            out = geo.tiles(xp).max(axis=(2, 4))
        else:
            views = [xp[:, rs, cs] for rs, cs in geo.offsets()]
            out = _slice_reduce(views, np.maximum, (xp.shape[0],) + geo.out + (xp.shape[3],),
                                x.dtype)
        ctx.save_for_backward(xp, out)
        return geo.finish(out)

    @staticmethod
    def backward(ctx, g):
        xp, out = ctx.saved
        geo = ctx.geo
        gi, dxp = geo.grad_frame(g, zero=geo.tiled or not geo.covered)
        if geo.tiled:
            kw = geo.kernel[1]
            first = _first_max_tiled(geo, xp, out)
            c, o1, o2, n = np.ogrid[:out.shape[0], :geo.out[0], :geo.out[1], :out.shape[3]]
            geo.tiles(dxp)[c, o1, first // kw, o2, first % kw, n] = gi
            return geo.crop(dxp)
        # Route each window's gradient to its first maximum in scan order (torch's tie rule):
        # `rem` holds what is still unrouted; offset k takes rem where its value equals the
        # max, and those entries are then zeroed so later ties get nothing.
        offsets = geo.offsets()
        (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
        overlap = sh < dh * (kh - 1) + 1 or sw < dw * (kw - 1) + 1
        rem = gi
        if len(offsets) > 1:
            rem = _scratch.empty(gi.shape, gi.dtype)
            np.copyto(rem, gi)
        tmp = np.empty_like(out) if overlap else None
        for k, (rs, cs) in enumerate(offsets):
            hit = xp[:, rs, cs] == out
            dst = dxp[:, rs, cs]
            if overlap:
                np.multiply(rem, hit, out=tmp)
                dst += tmp
            else:
                np.multiply(rem, hit, out=dst)
            if k < len(offsets) - 1:
                rem -= tmp if overlap else dst
        return geo.crop(dxp)


def _first_max_tiled(geo: _PoolGeom, xp: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Index (in kh*kw scan order) of the first maximum of each non-overlapping window."""
    t = geo.tiles(xp).transpose(0, 1, 3, 5, 2, 4)  # (C, oh, ow, N, kh, kw)
    t = t.reshape(t.shape[:4] + (-1,))
    return np.argmax(t == out[..., None], axis=-1)


def _first_max_index(candidates, out: np.ndarray) -> np.ndarray:
    """torch's return_indices: for (values, flat input index) pairs in window scan order,
    the flat index h * W + w of each window's first maximum."""
    idx = np.zeros(out.shape, dtype=np.int64)
    todo = np.ones(out.shape, dtype=bool)
    for values, flat in candidates:
        hit = (values == out) & todo
        idx += hit * flat
        todo &= ~hit
    return idx


def _max_indices(x: np.ndarray, out_nchw: np.ndarray, geo: _PoolGeom) -> np.ndarray:
    xp = geo.frame(x, -math.inf)
    rows = np.arange(geo.out[0]) * geo.stride[0] - geo.pads[0]
    cols = np.arange(geo.out[1]) * geo.stride[1] - geo.pads[2]
    flats = [((rows + i * geo.dilation[0])[:, None] * geo.hw[1] + cols + j * geo.dilation[1])
             [:, :, None] for i in range(geo.kernel[0]) for j in range(geo.kernel[1])]
    views = [xp[:, rs, cs] for rs, cs in geo.offsets()]
    out = _nchw(out_nchw, geo.nd).transpose(1, 2, 3, 0)
    return geo.finish(_first_max_index(zip(views, flats), out))


class AvgPool(Function):
    """Average pooling (1-D or 2-D) with torch's divisor rules (count_include_pad, ceil)."""

    op_name = "avg_pool2d"

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False,
                count_include_pad=True, divisor_override=None):
        dil = (1,) * len(kernel)
        ctx.geo = geo = _PoolGeom(x.shape, kernel, stride, padding, dil, ceil_mode)
        xp = geo.frame(x, 0.0)
        if geo.tiled:
            out = geo.tiles(xp).sum(axis=(2, 4))
        else:
            views = [xp[:, rs, cs] for rs, cs in geo.offsets()]
            out = _slice_reduce(views, np.add, (xp.shape[0],) + geo.out + (xp.shape[3],),
                                x.dtype)
        ctx.scale = _avg_scale(geo, count_include_pad, divisor_override, x.dtype)
        out *= ctx.scale
        return geo.finish(out)

    @staticmethod
    def backward(ctx, g):
        geo = ctx.geo
        gi, dxp = geo.grad_frame(g, zero=not geo.covered)
        gs = gi * ctx.scale
        if geo.tiled:
            geo.tiles(dxp)[...] = gs[:, :, None, :, None, :]
        elif geo.covered:
            for rs, cs in geo.offsets():
                dxp[:, rs, cs] = gs
        else:
            for rs, cs in geo.offsets():
                dxp[:, rs, cs] += gs
        return geo.crop(dxp)


def _avg_scale(geo: _PoolGeom, include_pad: bool, override, dtype):
    """1 / divisor: a Python float when every window has the same one, else (oh, ow, 1)."""
    if override:
        return 1.0 / override
    counts = []
    for k, s, lo, n, o in zip(geo.kernel, geo.stride, geo.pads[::2], geo.hw, geo.out):
        start = np.arange(o) * s - lo
        end = np.minimum(start + k, n + lo)  # windows may stick out past the padding (ceil)
        counts.append(end - start if include_pad else
                      np.minimum(end, n) - np.maximum(start, 0))
    div = counts[0][:, None] * counts[1][None, :]
    if (div == div.flat[0]).all():
        return 1.0 / int(div.flat[0])
    return (1.0 / div).astype(dtype)[:, :, None]


def _bins(n: int, o: int) -> tuple:
    """torch's adaptive-pool bins: start = floor(i * n / o), end = ceil((i + 1) * n / o)."""
    i = np.arange(o)
    return (i * n) // o, -((-(i + 1) * n) // o)


class AdaptiveAvgPool(Function):
    """Adaptive average pooling for bins that do not tile the input: A_h @ x @ A_w^T."""

    op_name = "adaptive_avg_pool2d"

    @staticmethod
    def forward(ctx, x, output_size=(1, 1)):
        nd = len(output_size)
        x4 = _nchw(x, nd)
        mats = []
        for n, o in zip(x4.shape[2:], (1,) * (2 - nd) + tuple(output_size)):
            start, end = _bins(n, o)
            j = np.arange(n)
            inside = (j >= start[:, None]) & (j < end[:, None])
            mats.append((inside / (end - start)[:, None]).astype(x.dtype))
        ah, aw = mats
        ctx.meta = (x.ndim, nd, ah, aw)
        return _un_nchw(ah @ x4 @ aw.T, x.ndim, nd)

    @staticmethod
    def backward(ctx, g):
        ndim, nd, ah, aw = ctx.meta
        return _un_nchw(ah.T @ _nchw(g, nd) @ aw, ndim, nd)


def _adaptive_windows(x4: np.ndarray, output_size: tuple) -> list:
    """(values (N, C, oh, ow), flat input index (oh, ow)) per bin offset, in scan order.

    Bins have different sizes; a short bin repeats its last element, which never changes
    its maximum nor (being seen later) the first position of it.
    """
    picks = []
    for n, o in zip(x4.shape[2:], (1,) * (2 - len(output_size)) + tuple(output_size)):
        start, end = _bins(n, o)
        a = np.arange(int((end - start).max()))[:, None]
        picks.append(np.minimum(start + a, end - 1))
    return [(x4[:, :, ih][:, :, :, iw], ih[:, None] * x4.shape[3] + iw)
            for ih in picks[0] for iw in picks[1]]


class AdaptiveMaxPool(Function):
    """Adaptive max pooling for bins that do not tile the input (a max over gathered rows)."""

    op_name = "adaptive_max_pool2d"

    @staticmethod
    def forward(ctx, x, output_size=(1, 1)):
        nd = len(output_size)
        x4 = _nchw(x, nd)
        wins = _adaptive_windows(x4, output_size)
        out = wins[0][0].copy()
        for v, _ in wins[1:]:
            np.maximum(out, v, out=out)
        ctx.save_for_backward(x4, out)
        ctx.meta = (x.ndim, nd, output_size)
        return _un_nchw(out, x.ndim, nd)

    @staticmethod
    def backward(ctx, g):
        x4, out = ctx.saved
        ndim, nd, output_size = ctx.meta
        idx = _first_max_index(_adaptive_windows(x4, output_size), out)
        N, C, H, W = x4.shape
        flat = idx + (np.arange(N * C) * (H * W)).reshape(N, C, 1, 1)
        dx = np.bincount(flat.ravel(), _nchw(g, nd).ravel(), minlength=x4.size)
        return _un_nchw(dx.astype(g.dtype).reshape(x4.shape), ndim, nd)


def _adaptive_max_indices(x: np.ndarray, out: np.ndarray, output_size: tuple) -> np.ndarray:
    nd = len(output_size)
    x4 = _nchw(x, nd)
    return _un_nchw(_first_max_index(_adaptive_windows(x4, output_size), _nchw(out, nd)),
                    x.ndim, nd)


# ----------------------------------------------------------------------------- functional API


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


def max_pool_apply(nd, name, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    k, s, p, d = pool_args(nd, name, x, kernel_size, stride, padding, dilation, ceil_mode, True)
    out = MaxPool.apply(x, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=bool(ceil_mode))
    if not return_indices:
        return out
    from ..tensor import as_tensor
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
    from ..tensor import as_tensor
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
