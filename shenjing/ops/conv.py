"""Convolution and pooling: im2col + one GEMM per layer, pools as maxima/sums of strided slices.

Layout. The API is NCHW, but every kernel here works in a batch-innermost frame (C, H, W, N):
an im2col slice then copies runs of N contiguous floats, col2im and pooling touch whole
rows, and the convolution GEMM `W (O, K) @ cols (K, OH*OW*N)` writes its result directly as
(O, OH, OW, N). Outputs are returned as NCHW-shaped *views* of that memory
(`out.transpose(3, 0, 1, 2)`), so a conv -> relu -> pool -> conv chain never transposes:
elementwise ufuncs keep the layout, and the next conv sees a contiguous (C, H, W, N) array.
A plain NCHW-contiguous input (e.g. the first layer) is copied once into the frame.

Convolution (PERF-NOTES lessons 1, 3, 4, 8): columns in (kh, kw, C) order, built by one
strided copy from a sliding-window view; the bias is folded into the GEMM as a row of ones,
so the weight and bias gradients come from one GEMM too; the input gradient is one GEMM
plus col2im as kh*kw slice-adds (no np.add.at). Groups are a batched matmul (one GEMM per
group). 1-D ops run the 2-D kernels with a unit height.

The layout helpers, the scratch-buffer pool and the argument checks here are shared with the
pooling ops in `pool.py`, whose functional API this module re-exports.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd.engine import Function, Tensor

_Size = int | tuple  # an int for every spatial dim, or one per dim

__all__ = [
    "Conv", "conv1d", "conv2d", "MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
]


def _free_refs() -> int:
    """The refcount `_Scratch.empty` sees for a held array that nobody else references."""
    held = [np.empty(0)]
    return sys.getrefcount(held[0])


_FREE_REFS = _free_refs()


class _Scratch(threading.local):
    """Large arrays recycled from one training step to the next, per thread.

    Page faults are expensive on these machines (PERF-NOTES): a fresh 20 MB im2col buffer
    costs ~5000 faults every step. An array is handed out again only when this pool holds
    the sole reference to it (no Tensor, view, saved context or caller still uses it), so
    reuse is invisible. Like torch's caching allocator, it keeps up to `limit` bytes.
    """

    limit = 1 << 30
    min_bytes = 1 << 20

    def __init__(self) -> None:
        self.free: dict = {}
        self.nbytes = 0

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        if size < self.min_bytes:
            return np.empty(shape, dtype=dtype)
        held = self.free.setdefault((shape, dtype), [])
        for i in range(len(held)):
            if sys.getrefcount(held[i]) == _FREE_REFS:
                return held[i]
        if self.nbytes + size > self.limit:
            self.free.clear()
            self.nbytes = 0
            held = self.free.setdefault((shape, dtype), [])
        held.append(np.empty(shape, dtype=dtype))
        self.nbytes += size
        return held[-1]

    def zeros(self, shape: tuple, dtype) -> np.ndarray:
        a = self.empty(shape, dtype)
        a.fill(0)
        return a

    def copy(self, a: np.ndarray) -> np.ndarray:
        """A C-contiguous copy of `a` (or `a` itself when it already is one)."""
        if a.flags.c_contiguous:
            return a
        out = self.empty(a.shape, a.dtype)
        np.copyto(out, a)
        return out


_scratch = _Scratch()


# ----------------------------------------------------------------------------- layout helpers


def _nchw(a: np.ndarray, nd: int) -> np.ndarray:
    """(N, C, *S) or unbatched (C, *S), S of 1 or 2 dims -> a 4-D (N, C, H, W) view."""
    if a.ndim == nd + 1:
        a = a[None]
    return a[:, :, None, :] if nd == 1 else a


def _un_nchw(a4: np.ndarray, ndim: int, nd: int) -> np.ndarray:
    """Inverse of `_nchw` for an array whose original had `ndim` dims."""
    if nd == 1:
        a4 = a4[:, :, 0, :]
    return a4[0] if ndim == nd + 1 else a4


def _frame(x4: np.ndarray, pads: tuple, fill: float, contiguous: bool) -> np.ndarray:
    """x4 (N, C, H, W) as (C, H + pt + pb, W + pl + pr, N), padded with `fill`.

    Without padding this is a view (a free one when x4 is already batch-innermost memory),
    made contiguous only when asked.
    """
    pt, pb, pl, pr = pads
    xi = x4.transpose(1, 2, 3, 0)
    if not (pt or pb or pl or pr):
        return _scratch.copy(xi) if contiguous else xi
    C, H, W, N = xi.shape
    out = _scratch.empty((C, pt + H + pb, pl + W + pr, N), x4.dtype)
    out[:, :pt] = fill
    out[:, pt + H:] = fill
    out[:, pt:pt + H, :pl] = fill
    out[:, pt:pt + H, pl + W:] = fill
    out[:, pt:pt + H, pl:pl + W] = xi
    return out


def _offsets(kh: int, kw: int, stride: tuple, dilation: tuple, oh: int, ow: int) -> list:
    """The kh*kw (H-slice, W-slice) pairs picking each kernel offset's input for every output."""
    sh, sw = stride
    dh, dw = dilation
    return [(slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
             slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


def _out_size(n: int, k: int, s: int, lo: int, hi: int, d: int, ceil_mode: bool) -> int:
    """Output length of a window op (torch's pooling_output_shape; conv uses floor mode)."""
    span = n + lo + hi - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + lo:  # the last window must start inside the input or left pad
        out -= 1
    return out


# ----------------------------------------------------------------------------- convolution


class Conv(Function):
    """N-d convolution (1-D or 2-D) via im2col and one GEMM per group.

    Inputs: x (N, C, *S) or (C, *S); w (O, C / groups, *K); optional b (O,).
    Attributes: stride, dilation as 2-tuples, padding as (top, bottom, left, right).
    """

    op_name = "conv2d"

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
                groups=1):
        nd = w.ndim - 2
        x4 = _nchw(x, nd)
        w4 = w[:, :, None, :] if nd == 1 else w
        N, C, H, W = x4.shape
        Co, Cg, kh, kw = w4.shape
        G, Og = groups, Co // groups
        dh, dw = dilation
        sh, sw = stride
        oh = _out_size(H, kh, sh, padding[0], padding[1], dh, False)
        ow = _out_size(W, kw, sw, padding[2], padding[3], dw, False)
        xp = _frame(x4, padding, 0.0, contiguous=True)  # (C, Hp, Wp, N)
        Kg, M, hb = kh * kw * Cg, oh * ow * N, b is not None

        # columns (G, Kg [+ 1 row of ones for the bias], M), rows ordered (kh, kw, Cg)
        cols = _scratch.empty((G, Kg + hb, M), x.dtype)
        win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
        win = win[:, :sh * (oh - 1) + 1:sh, :sw * (ow - 1) + 1:sw, :, ::dh, ::dw]
        cols[:, :Kg].reshape(G, kh, kw, Cg, oh, ow, N)[...] = (
            win.reshape(G, Cg, oh, ow, N, kh, kw).transpose(0, 5, 6, 1, 2, 3, 4))
        wm = np.empty((G, Og, Kg + hb), dtype=x.dtype)
        wm[:, :, :Kg].reshape(G, Og, kh, kw, Cg)[...] = (
            w4.reshape(G, Og, Cg, kh, kw).transpose(0, 1, 3, 4, 2))
        if hb:
            cols[:, Kg] = 1.0
            wm[:, :, Kg] = b.reshape(G, Og)
        out = np.matmul(wm, cols, out=_scratch.empty((G, Og, M), x.dtype))  # (Co, oh, ow, N)

        ctx.save_for_backward(cols, wm)
        ctx.geom = (x.shape, w.shape, xp.shape, stride, dilation, padding, G, hb)
        out4 = out.reshape(Co, oh, ow, N).transpose(3, 0, 1, 2)
        return _un_nchw(out4, x.ndim, nd)

    @staticmethod
    def backward(ctx, g):
        cols, wm = ctx.saved
        x_shape, w_shape, xp_shape, stride, dilation, padding, G, hb = ctx.geom
        nd = len(w_shape) - 2
        kh, kw = (1,) + w_shape[2:] if nd == 1 else w_shape[2:]
        need = ctx.needs_input_grad
        g4 = _nchw(g, nd)
        N, Co, oh, ow = g4.shape
        Og, Cg = Co // G, w_shape[1]
        Kg = kh * kw * Cg
        # (G, Og, M): free when g is the (Co, oh, ow, N) memory this op produced
        g2 = _scratch.copy(g4.transpose(1, 2, 3, 0)).reshape(G, Og, oh * ow * N)
        gx = gw = gb = None
        if need[1] or (hb and need[2]):
            # cols @ g^T, not g @ cols^T: OpenBLAS runs the NT form 2-5x slower here
            gt = g2.transpose(0, 2, 1)
            dwt = (cols[0] @ gt[0])[None] if G == 1 else np.matmul(cols, gt)  # (G, Kg+hb, Og)
            gw = np.ascontiguousarray(
                dwt[:, :Kg].reshape(G, kh, kw, Cg, Og).transpose(0, 4, 3, 1, 2)
            ).reshape(w_shape)
            if hb:
                gb = dwt[:, Kg].reshape(Co)
        if need[0]:
            wt = wm[:, :, :Kg].transpose(0, 2, 1)
            dcols = np.matmul(wt, g2, out=_scratch.empty((G, Kg, oh * ow * N), g.dtype))
            dcols = dcols.reshape(G, kh, kw, Cg, oh, ow, N)
            C, Hp, Wp, _ = xp_shape
            H, W = (x_shape[-2] if nd == 2 else 1), x_shape[-1]
            pt, _, pl, _ = padding
            dxp = _scratch.zeros(xp_shape, g.dtype)
            dxg = dxp.reshape(G, Cg, dxp.shape[1], dxp.shape[2], N)
            for k, (rs, cs) in enumerate(_offsets(kh, kw, stride, dilation, oh, ow)):
                dxg[:, :, rs, cs] += dcols[:, k // kw, k % kw]
            dx4 = dxp[:, pt:pt + H, pl:pl + W].transpose(3, 0, 1, 2)
            gx = _un_nchw(dx4, len(x_shape), nd)
        return gx, gw, gb


# ----------------------------------------------------------------------------- functional API
# torch.nn.functional's names and signatures; arguments are checked here, at the user's call,
# so a bad shape fails with the op's name and expected vs actual sizes.

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


# the pooling ops live in pool.py, built on the helpers above; nn.functional imports them here
from .pool import (  # noqa: E402
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AvgPool,
    MaxPool,
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
