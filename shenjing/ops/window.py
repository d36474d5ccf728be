"""The batch-innermost frame shared by the convolution and pooling kernels.

Every conv and pool kernel works in a (C, H, W, N) frame (see conv.py): these helpers move
arrays into and out of it, pad it, list the kh*kw window offsets, size outputs, and pool the
scratch buffers the kernels reuse between steps.
"""

from __future__ import annotations

import bisect
import math
import sys
import threading

from ..backend import xp
from ..cpu_threads import elementwise, parallel_for, worth_splitting

_Size = int | tuple  # an int for every spatial dim, or one per dim


def _free_refs() -> int:
    """The refcount `_Scratch.empty` sees for a held array that nobody else references."""
    held = [xp.empty(0)]
    return sys.getrefcount(held[0])


_FREE_REFS = _free_refs()


class _Scratch(threading.local):
    """Large arrays recycled from one training step to the next, per thread.

    Page faults are expensive on these machines (PERF-NOTES): a fresh 20 MB im2col buffer
    costs ~5000 faults every step. The pool holds flat byte buffers and hands out arrays
    that view one of them, of any shape and dtype: the smallest free buffer that fits
    (wasting at most half of it), so the buffers it holds follow the step's peak of live
    scratch, not the sum of every shape the step used (AlexNet's step: 220 MB held when
    keyed by shape, 198 MB by size, 170 MB with conv.py's big columns rebuilt in backward).
    A buffer is free when the pool holds the sole reference to it
    (every array or view cut from it references it), so reuse is invisible. Like torch's
    caching allocator, it keeps up to `limit` bytes.
    """

    limit = 1 << 30
    min_bytes = 1 << 20

    def __init__(self) -> None:
        self.bufs: list = []  # flat uint8 buffers, smallest first
        self.nbytes = 0

    def empty(self, shape: tuple, dtype) -> xp.ndarray:
        dtype = xp.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        if size < self.min_bytes:
            return xp.empty(shape, dtype=dtype)
        return self._buffer(size)[:size].view(dtype).reshape(shape)

    def _buffer(self, size: int) -> xp.ndarray:
        """The smallest free held buffer of `size` to 2 * `size` bytes, else a new one."""
        bufs = self.bufs
        for i in range(len(bufs)):  # bufs[i], not a loop variable: _FREE_REFS counts refs
            if size <= bufs[i].nbytes <= 2 * size and sys.getrefcount(bufs[i]) == _FREE_REFS:
                return bufs[i]
        i = len(bufs) - 1
        while self.nbytes + size > self.limit and i >= 0:  # drop free ones, largest first
            if sys.getrefcount(bufs[i]) == _FREE_REFS:
                self.nbytes -= bufs.pop(i).nbytes
            i -= 1
        buf = xp.empty(size, dtype=xp.uint8)
        bisect.insort(bufs, buf, key=lambda b: b.nbytes)
        self.nbytes += size
        return buf

    def zeros(self, shape: tuple, dtype) -> xp.ndarray:
        a = self.empty(shape, dtype)
        a.fill(0)
        return a

    def copy(self, a: xp.ndarray) -> xp.ndarray:
        """A C-contiguous copy of `a` (or `a` itself when it already is one)."""
        if a.flags.c_contiguous:
            return a
        out = self.empty(a.shape, a.dtype)
        if a.ndim == 4:
            _copy_into_frame(out, a)
        else:
            elementwise(_assign, out, a)
        return out


_scratch = _Scratch()


# ----------------------------------------------------------------------------- layout helpers


def _nchw(a: xp.ndarray, nd: int) -> xp.ndarray:
    """(N, C, *S) or unbatched (C, *S), S of 1 or 2 dims -> a 4-D (N, C, H, W) view."""
    if a.ndim == nd + 1:
        a = a[None]
    return a[:, :, None, :] if nd == 1 else a


def _un_nchw(a4: xp.ndarray, ndim: int, nd: int) -> xp.ndarray:
    """Inverse of `_nchw` for an array whose original had `ndim` dims."""
    if nd == 1:
        a4 = a4[:, :, 0, :]
    return a4[0] if ndim == nd + 1 else a4


def _frame(x4: xp.ndarray, pads: tuple, fill: float, contiguous: bool) -> xp.ndarray:
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
    _copy_into_frame(out[:, pt:pt + H, pl:pl + W], xi)
    return out


def _assign(dst: xp.ndarray, src: xp.ndarray) -> None:
    xp.copyto(dst, src)


_TILE_CHANNELS = 16  # one 64-byte line of float32 channels, when channels are innermost
_TILE_BYTES = 1 << 18


def _copy_into_frame(dst: xp.ndarray, src: xp.ndarray) -> None:
    """dst[...] = src for (C, H, W, N) arrays; a batch-outermost src (NCHW or NWC memory
    seen through the frame) is a transpose, copied in (channel block, column block) tiles
    so that every source cache line is read once (1.6x faster than one strided copy)."""
    if src.strides[3] < max(src.strides[:3]):
        elementwise(_assign, dst, src)
        return
    C, H, W, N = src.shape
    cb = min(C, _TILE_CHANNELS)
    per_column = max(cb * H * N * src.itemsize, 1)

    def copy_columns(lo: int, hi: int) -> None:
        for c in range(0, C, cb):
            xp.copyto(dst[c:c + cb, :, lo:hi], src[c:c + cb, :, lo:hi])

    grain = max(1, _TILE_BYTES // per_column)
    if worth_splitting(2 * dst.nbytes):
        parallel_for(copy_columns, W, grain=grain)
    else:
        for lo in range(0, W, grain):
            copy_columns(lo, min(lo + grain, W))


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
