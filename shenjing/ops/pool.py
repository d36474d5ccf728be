"""Max, average and adaptive pooling (1-D and 2-D) in the batch-innermost frame of conv.py.

Max pooling is the running maximum of kh*kw strided slices (PERF-NOTES lesson 6); its
backward routes each window's gradient to its first maximum in scan order, as torch does on
ties. Large non-overlapping windows (e.g. the max over time of a TextCNN) use a reshaped view
and one reduction instead of a loop over offsets. Average pooling follows torch's divisor
rules (count_include_pad, ceil_mode, divisor_override). Adaptive pools whose bins tile the
input run the plain kernels; other bin layouts get their own (rarely hot) Functions.
Outputs are NCHW-shaped views of (C, H, W, N) memory, like conv.py's. The slice kernels run
over L2-sized channel blocks, split over shenjing.cpu_threads' threads when large: an
overlapping 3x3/2 pool's ~36 passes then stay in cache and use every core.
"""


from __future__ import annotations

import math

from .. import compiled
from ..autograd.engine import Function
from ..backend import xp
from ..cpu_threads import parallel_for, worth_splitting
from .window import _frame, _nchw, _offsets, _out_size, _scratch, _un_nchw

__all__ = ["MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool"]

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

    def tiles(self, a: xp.ndarray) -> xp.ndarray:
        """(C, Hp, Wp, N) -> (C, oh, kh, ow, kw, N) view of the non-overlapping windows."""
        (kh, kw), (oh, ow) = self.kernel, self.out
        return a[:, :oh * kh, :ow * kw].reshape(a.shape[0], oh, kh, ow, kw, a.shape[3])

    def frame(self, x: xp.ndarray, fill: float) -> xp.ndarray:
        return _frame(_nchw(x, self.nd), self.pads, fill, contiguous=False)

    @property
    def covered(self) -> bool:
        """True when the windows tile [:oh*kh, :ow*kw] exactly (each element in one window)."""
        return self.stride == self.kernel and self.dilation == (1, 1)

    def grad_frame(self, g: xp.ndarray, zero: bool = True) -> tuple:
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

    def crop(self, dxp: xp.ndarray) -> xp.ndarray:
        """Padded (C, Hp, Wp, N) gradient -> the input's shape (a view)."""
        (H, W), pt, pl = self.hw, self.pads[0], self.pads[2]
        dx4 = dxp[:, pt:pt + H, pl:pl + W].transpose(3, 0, 1, 2)
        return _un_nchw(dx4, len(self.x_shape), self.nd)

    def finish(self, out: xp.ndarray) -> xp.ndarray:
        """(C, oh, ow, N) result -> the NCHW-shaped (or 1-D / unbatched) output view."""
        return _un_nchw(out.transpose(3, 0, 1, 2), len(self.x_shape), self.nd)


_BLOCK_BYTES = 1 << 18  # channel blocks small enough to stay in L2 across all kh*kw passes


def _by_channels(fn, channels: int, nbytes: int) -> None:
    """fn(lo, hi) over channel blocks, split over threads when the arrays are big enough.

    Every array in the (C, H, W, N) frame has channels outermost, so a block is one
    contiguous run per array and stays in cache across a kernel's many passes.
    """
    if worth_splitting(nbytes):
        parallel_for(fn, channels, grain=max(1, _BLOCK_BYTES * channels // max(nbytes, 1)))
    else:
        fn(0, channels)


def _slice_reduce(views: list, ufunc, shape: tuple, dtype) -> xp.ndarray:
    """ufunc-reduce equally shaped strided views into a new (C, oh, ow, N) array."""
    out = _scratch.empty(shape, dtype)

    def reduce(lo: int, hi: int) -> None:
        dst = out[lo:hi]
        if len(views) == 1:
            dst[...] = views[0][lo:hi]
            return
        ufunc(views[0][lo:hi], views[1][lo:hi], out=dst)
        for v in views[2:]:
            ufunc(dst, v[lo:hi], out=dst)

    _by_channels(reduce, shape[0], out.nbytes * (1 + len(views)))
    return out


class MaxPool(Function):
    """Max pooling (1-D or 2-D); padded positions are -inf, so they never win.

    `relu=True` computes relu(max_pool(x)) (= max_pool(relu(x))) in one op: nn.Sequential
    fuses a ReLU followed by a max pool into it, so the full-size ReLU output and its
    backward pass never exist; the gradient is the pool's, masked where the output is 0.
    Unpadded float32 pools run compiled kernels when the C extension is built
    (shenjing/compiled.py), one pass each way, saving only a byte per output (the winner's
    offset), not the input.
    """

    op_name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                ceil_mode=False, relu=False):
        ctx.geo = geo = _PoolGeom(x.shape, kernel, stride, padding, dilation, ceil_mode)
        xpad = geo.frame(x, -math.inf)
        shape = (xpad.shape[0],) + geo.out + (xpad.shape[3],)
        ctx.relu, ctx.compiled = relu, _compiled_pool(geo, xpad)
        if ctx.compiled:
            out = _scratch.empty(shape, x.dtype)
            code = xp.empty(shape, xp.uint8)
            compiled.kernels().max_pool_forward(_scratch.copy(xpad), *geo.kernel, *geo.stride,
                                                relu, out, code)
            ctx.save_for_backward(code)
            return geo.finish(out)
        if geo.tiled:
            out = geo.tiles(xpad).max(axis=(2, 4))
        else:
            views = [xpad[:, rs, cs] for rs, cs in geo.offsets()]
            out = _slice_reduce(views, xp.maximum, shape, x.dtype)
        ctx.save_for_backward(xpad, out)
        return geo.finish(xp.maximum(out, 0) if relu else out)

    @staticmethod
    def backward(ctx, g):
        geo = ctx.geo
        if ctx.compiled:
            (code,) = ctx.saved
            gi = _nchw(g, geo.nd).transpose(1, 2, 3, 0).astype(xp.float32, copy=False)
            gi = _scratch.copy(gi)  # the kernel reads float32 in the contiguous frame
            dx = _scratch.empty((gi.shape[0],) + geo.hw + (gi.shape[3],), xp.float32)
            compiled.kernels().max_pool_backward(gi, code, *geo.kernel, *geo.stride, dx)
            return geo.crop(dx)
        xpad, out = ctx.saved
        if ctx.relu:
            g = g * geo.finish(out > 0)
        gi, dxp = geo.grad_frame(g, zero=geo.tiled)
        if geo.tiled:
            kw = geo.kernel[1]
            first = _first_max_tiled(geo, xpad, out)
            c, o1, o2, n = xp.ogrid[:out.shape[0], :geo.out[0], :geo.out[1], :out.shape[3]]
            geo.tiles(dxp)[c, o1, first // kw, o2, first % kw, n] = gi
            return geo.crop(dxp)
        # Route each window's gradient to its first maximum in scan order (torch's tie rule):
        # offset k takes g where its value equals the max and no earlier offset did, a mask
        # kept as bools (cheaper passes than subtracting from a float remainder: 1.2x).
        # Overlapping windows add their share, others write it.
        offsets = geo.offsets()
        (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
        overlap = sh < dh * (kh - 1) + 1 or sw < dw * (kw - 1) + 1
        zero = not geo.covered
        many = len(offsets) > 1
        # the upstream gradient is read once per offset: copied when it is strided
        g_all = _scratch.empty(gi.shape, gi.dtype) if many and not gi.flags.c_contiguous else None
        tmp_all = _scratch.empty(gi.shape, gi.dtype) if overlap else None

        def route(lo: int, hi: int) -> None:
            o, d = out[lo:hi], dxp[lo:hi]
            if zero:
                d.fill(0)
            g = gi[lo:hi]
            if g_all is not None:
                xp.copyto(g_all[lo:hi], g)
                g = g_all[lo:hi]
            hit = xp.empty(o.shape, dtype=bool)
            taken = xp.empty(o.shape, dtype=bool) if many else None
            for k, (rs, cs) in enumerate(offsets):
                xp.equal(xpad[lo:hi, rs, cs], o, out=hit)
                if k:
                    xp.greater(hit, taken, out=hit)  # hit and not taken
                dst = d[:, rs, cs]
                if overlap:
                    xp.multiply(g, hit, out=tmp_all[lo:hi])
                    dst += tmp_all[lo:hi]
                else:
                    xp.multiply(g, hit, out=dst)
                if k == len(offsets) - 1:
                    break
                if k:
                    taken |= hit
                else:
                    hit, taken = taken, hit

        _by_channels(route, out.shape[0], dxp.nbytes + out.nbytes * (2 + 3 * len(offsets)))
        return geo.crop(dxp)


def _compiled_pool(geo: _PoolGeom, xpad: xp.ndarray) -> bool:
    """The compiled kernels apply: switched on, float32, no padding or dilation, fewer than 255
    offsets per window (a byte each, 255 meaning "nowhere")."""
    return (xpad.dtype == xp.float32 and geo.dilation == (1, 1) and not any(geo.pads)
            and geo.kernel[0] * geo.kernel[1] < 255 and compiled.enabled())


def _first_max_tiled(geo: _PoolGeom, xpad: xp.ndarray, out: xp.ndarray) -> xp.ndarray:
    """Index (in kh*kw scan order) of the first maximum of each non-overlapping window."""
    t = geo.tiles(xpad).transpose(0, 1, 3, 5, 2, 4)  # (C, oh, ow, N, kh, kw)
    t = t.reshape(t.shape[:4] + (-1,))
    return xp.argmax(t == out[..., None], axis=-1)


def _first_max_index(candidates, out: xp.ndarray) -> xp.ndarray:
    """torch's return_indices: for (values, flat input index) pairs in window scan order,
    the flat index h * W + w of each window's first maximum."""
    idx = xp.zeros(out.shape, dtype=xp.int64)
    todo = xp.ones(out.shape, dtype=bool)
    for values, flat in candidates:
        hit = (values == out) & todo
        idx += hit * flat
        todo &= ~hit
    return idx


def _max_indices(x: xp.ndarray, out_nchw: xp.ndarray, geo: _PoolGeom) -> xp.ndarray:
    xpad = geo.frame(x, -math.inf)
    rows = xp.arange(geo.out[0]) * geo.stride[0] - geo.pads[0]
    cols = xp.arange(geo.out[1]) * geo.stride[1] - geo.pads[2]
    flats = [((rows + i * geo.dilation[0])[:, None] * geo.hw[1] + cols + j * geo.dilation[1])
             [:, :, None] for i in range(geo.kernel[0]) for j in range(geo.kernel[1])]
    views = [xpad[:, rs, cs] for rs, cs in geo.offsets()]
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
        xpad = geo.frame(x, 0.0)
        if geo.tiled:
            out = geo.tiles(xpad).sum(axis=(2, 4))
        else:
            views = [xpad[:, rs, cs] for rs, cs in geo.offsets()]
            out = _slice_reduce(views, xp.add, (xpad.shape[0],) + geo.out + (xpad.shape[3],),
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
        start = xp.arange(o) * s - lo
        end = xp.minimum(start + k, n + lo)  # windows may stick out past the padding (ceil)
        counts.append(end - start if include_pad else
                      xp.minimum(end, n) - xp.maximum(start, 0))
    div = counts[0][:, None] * counts[1][None, :]
    if (div == div.flat[0]).all():
        return 1.0 / int(div.flat[0])
    return (1.0 / div).astype(dtype)[:, :, None]


def _bins(n: int, o: int) -> tuple:
    """torch's adaptive-pool bins: start = floor(i * n / o), end = ceil((i + 1) * n / o)."""
    i = xp.arange(o)
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
            j = xp.arange(n)
            inside = (j >= start[:, None]) & (j < end[:, None])
            mats.append((inside / (end - start)[:, None]).astype(x.dtype))
        ah, aw = mats
        ctx.meta = (x.ndim, nd, ah, aw)
        return _un_nchw(ah @ x4 @ aw.T, x.ndim, nd)

    @staticmethod
    def backward(ctx, g):
        ndim, nd, ah, aw = ctx.meta
        return _un_nchw(ah.T @ _nchw(g, nd) @ aw, ndim, nd)


def _adaptive_windows(x4: xp.ndarray, output_size: tuple) -> list:
    """(values (N, C, oh, ow), flat input index (oh, ow)) per bin offset, in scan order.

    Bins have different sizes; a short bin repeats its last element, which never changes
    its maximum nor (being seen later) the first position of it.
    """
    picks = []
    for n, o in zip(x4.shape[2:], (1,) * (2 - len(output_size)) + tuple(output_size)):
        start, end = _bins(n, o)
        a = xp.arange(int((end - start).max()))[:, None]
        picks.append(xp.minimum(start + a, end - 1))
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
            xp.maximum(out, v, out=out)
        ctx.save_for_backward(x4, out)
        ctx.meta = (x.ndim, nd, output_size)
        return _un_nchw(out, x.ndim, nd)

    @staticmethod
    def backward(ctx, g):
        x4, out = ctx.saved
        ndim, nd, output_size = ctx.meta
        idx = _first_max_index(_adaptive_windows(x4, output_size), out)
        N, C, H, W = x4.shape
        flat = idx + (xp.arange(N * C) * (H * W)).reshape(N, C, 1, 1)
        dx = xp.bincount(flat.ravel(), _nchw(g, nd).ravel(), minlength=x4.size)
        return _un_nchw(dx.astype(g.dtype).reshape(x4.shape), ndim, nd)


def _adaptive_max_indices(x: xp.ndarray, out: xp.ndarray, output_size: tuple) -> xp.ndarray:
    nd = len(output_size)
    x4 = _nchw(x, nd)
    return _un_nchw(_first_max_index(_adaptive_windows(x4, output_size), _nchw(out, nd)),
                    x.ndim, nd)
