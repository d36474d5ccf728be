"""Convolution: im2col + one GEMM per layer, in a batch-innermost frame.

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
plus col2im as kh*kw slice-adds (no xp.add.at). Groups are a batched matmul (one GEMM per
group). 1-D ops run the 2-D kernels with a unit height.

Threads (shenjing.cpu_threads, issue 12): when threads are on and a layer is big enough, the
work is split by output rows (output columns for 1-D): each thread builds its rows' columns
and multiplies them with BLAS running one thread per caller, so the copy runs on all cores
and no OpenBLAS worker spins against ours. Backward splits its two GEMMs the same way (the
weight gradient is the sum of the parts, in a fixed order) and col2im by channel blocks.

The frame helpers and the scratch-buffer pool live in window.py (shared with pool.py); the
functional API with its argument checks is shenjing.nn.functional_conv.
"""

from __future__ import annotations

from .. import compiled
from ..autograd.engine import Function
from ..backend import xp
from ..cpu_threads import blas_controllable, get_num_threads, parallel_for, worth_splitting
from .conv_shift import shift_backward, shift_eligible, shift_forward
from .window import _frame, _nchw, _offsets, _out_size, _scratch, _un_nchw

_CHUNK_BYTES = 1 << 18  # col2im works on ~L2-sized channel blocks
_RECOMPUTE_BYTES = 1 << 25  # columns this big are rebuilt in backward, not held (32 MB)

__all__ = ["Conv"]


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
        if shift_eligible(nd, x4.shape, w4.shape, stride, padding, dilation, groups):
            return shift_forward(ctx, x, x4, w4, b, dilation, padding, nd)
        xpad = _frame(x4, padding, 0.0, contiguous=True)  # (C, Hp, Wp, N)
        Kg, M, hb = kh * kw * Cg, oh * ow * N, b is not None

        cols, fill_columns = _column_filler(xpad, G, Cg, kh, kw, oh, ow, stride, dilation, hb)
        wm = xp.empty((G, Og, Kg + hb), dtype=x.dtype)
        wm[:, :, :Kg].reshape(G, Og, kh, kw, Cg)[...] = (
            w4.reshape(G, Og, Cg, kh, kw).transpose(0, 1, 3, 4, 2))
        if hb:
            wm[:, :, Kg] = b.reshape(G, Og)
        out = _scratch.empty((G, Og, M), x.dtype)  # (Co, oh, ow, N)
        split = _gemm_split(cols.nbytes + out.nbytes)
        units, pick = _units(oh, ow, N)

        def columns_and_product(lo: int, hi: int) -> None:
            """im2col for output rows lo:hi, then (when split) their share of the GEMM."""
            fill_columns(lo, hi)
            if split:
                m = pick(lo, hi)[1]
                xp.matmul(wm, cols[:, :, m], out=out[:, :, m])

        _run_rows(columns_and_product, units, cols.nbytes, split)
        if not split:
            xp.matmul(wm, cols, out=out)

        # Big columns are rebuilt in backward from the (kh*kw times smaller) input frame
        # instead of being held from forward to backward: AlexNet's first two layers.
        ctx.recompute = cols.nbytes >= _RECOMPUTE_BYTES
        ctx.save_for_backward(xpad if ctx.recompute else cols, wm)
        ctx.geom = (x.shape, w.shape, xpad.shape, stride, dilation, padding, G, hb)
        out4 = out.reshape(Co, oh, ow, N).transpose(3, 0, 1, 2)
        return _un_nchw(out4, x.ndim, nd)

    @staticmethod
    def backward(ctx, g):
        if ctx.geom[0] == "shift":
            return shift_backward(ctx, g)
        cols, wm = ctx.saved
        x_shape, w_shape, xp_shape, stride, dilation, padding, G, hb = ctx.geom
        nd = len(w_shape) - 2
        kh, kw = (1,) + w_shape[2:] if nd == 1 else w_shape[2:]
        need = ctx.needs_input_grad
        g4 = _nchw(g, nd)
        N, Co, oh, ow = g4.shape
        Og, Cg = Co // G, w_shape[1]
        Kg = kh * kw * Cg
        if ctx.recompute:  # `cols` is the input frame: rebuild the columns
            cols, fill = _column_filler(cols, G, Cg, kh, kw, oh, ow, stride, dilation, hb)
            fill(0, _units(oh, ow, N)[0])
        g4t = g4.transpose(1, 2, 3, 0)  # (Co, oh, ow, N): free when g is this op's output
        g2 = (g4t if g4t.flags.c_contiguous else _scratch.empty(g4t.shape, g.dtype))
        g2 = g2.reshape(G, Og, oh * ow * N)
        gx = gw = gb = None
        need_w = need[1] or (hb and need[2])
        dcols = _scratch.empty((G, Kg, oh * ow * N), g.dtype) if need[0] else None
        wt = wm[:, :, :Kg].transpose(0, 2, 1)
        split = _gemm_split(cols.nbytes + 2 * g2.nbytes)
        copy_g = not g4t.flags.c_contiguous
        units, pick = _units(oh, ow, N)
        parts: dict = {}

        def products(lo: int, hi: int) -> None:
            """Output rows lo:hi: the upstream copy, their weight-gradient share, dcols."""
            sel, m = pick(lo, hi)
            if copy_g:
                g2.reshape(Co, oh, ow, N)[sel] = g4t[sel]
            if not split:
                return
            if need_w:  # cols @ g^T, not g @ cols^T: OpenBLAS runs the NT form 2-5x slower
                parts[lo] = xp.matmul(cols[:, :, m], g2[:, :, m].transpose(0, 2, 1))
            if need[0]:
                xp.matmul(wt, g2[:, :, m], out=dcols[:, :, m])

        if split or copy_g:
            _run_rows(products, units, g2.nbytes, split)
        if not split:
            if need_w:
                gt = g2.transpose(0, 2, 1)
                parts[0] = (cols[0] @ gt[0])[None] if G == 1 else xp.matmul(cols, gt)
            if need[0]:
                xp.matmul(wt, g2, out=dcols)
        if need_w:
            dwt = parts.pop(min(parts))  # (G, Kg+hb, Og), summed in a fixed order
            for lo in sorted(parts):
                dwt += parts[lo]
            gw = xp.ascontiguousarray(
                dwt[:, :Kg].reshape(G, kh, kw, Cg, Og).transpose(0, 4, 3, 1, 2)
            ).reshape(w_shape)
            if hb:
                gb = dwt[:, Kg].reshape(Co)
        if need[0]:
            gx = _col2im(dcols.reshape(G, kh, kw, Cg, oh, ow, N), x_shape, xp_shape,
                         stride, dilation, padding, nd)
        return gx, gw, gb


def _column_filler(xpad, G: int, Cg: int, kh: int, kw: int, oh: int, ow: int, stride: tuple,
                   dilation: tuple, hb: bool) -> tuple:
    """The im2col buffer of frame xpad, (G, Kg [+ 1 row of ones for the bias], oh*ow*N) with
    rows ordered (kh, kw, Cg), and fill(lo, hi), which copies output rows lo:hi into it."""
    N = xpad.shape[3]
    (sh, sw), (dh, dw), Kg = stride, dilation, kh * kw * Cg
    cols = _scratch.empty((G, Kg + hb, oh * ow * N), xpad.dtype)
    win = xp.lib.stride_tricks.sliding_window_view(
        xpad, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
    win = win[:, :sh * (oh - 1) + 1:sh, :sw * (ow - 1) + 1:sw, :, ::dh, ::dw]
    win = win.reshape(G, Cg, oh, ow, N, kh, kw).transpose(0, 5, 6, 1, 2, 3, 4)
    cols7 = cols[:, :Kg].reshape(G, kh, kw, Cg, oh, ow, N)
    pick = _units(oh, ow, N)[1]

    def fill(lo: int, hi: int) -> None:
        sel, m = pick(lo, hi)
        cols7[sel] = win[sel]
        if hb:
            cols[:, Kg, m] = 1.0

    return cols, fill


def _gemm_split(nbytes: int) -> bool:
    """Split a conv's GEMMs over our threads (BLAS one thread each) instead of BLAS's own."""
    return blas_controllable() and worth_splitting(nbytes)


def _units(oh: int, ow: int, N: int) -> tuple:
    """How a conv's work splits: (count, pick), pick(lo, hi) giving the (..., oh, ow, N)
    index of units lo:hi and their column range in M = oh*ow*N; units are output rows, or
    output columns when there is a single row (1-D convolutions)."""
    if oh == 1:
        return ow, lambda lo, hi: ((Ellipsis, slice(lo, hi), slice(None)),
                                   slice(lo * N, hi * N))
    row = ow * N
    return oh, lambda lo, hi: ((Ellipsis, slice(lo, hi), slice(None), slice(None)),
                               slice(lo * row, hi * row))


def _run_rows(fn, rows: int, nbytes: int, split: bool) -> None:
    """fn(lo, hi) over output rows: one range per thread when splitting, else copy-sized."""
    threads = get_num_threads() if split else 1
    if threads > 1:
        parallel_for(fn, rows, grain=-(-rows // threads), blas=False)
    elif worth_splitting(nbytes):
        parallel_for(fn, rows, grain=-(-rows // get_num_threads()))
    else:
        fn(0, rows)


def _col2im(dcols, x_shape: tuple, xp_shape: tuple, stride: tuple, dilation: tuple,
            padding: tuple, nd: int):
    """Sum (G, kh, kw, Cg, oh, ow, N) columns back into the input's gradient (a view)."""
    G, kh, kw, Cg, oh, ow, N = dcols.shape
    C, Hp, Wp, _ = xp_shape
    H, W = (x_shape[-2] if nd == 2 else 1), x_shape[-1]
    pt, _, pl, _ = padding
    dxp = _scratch.empty(xp_shape, dcols.dtype)
    if (stride == (1, 1) and dilation == (1, 1) and dcols.dtype == xp.float32
            and dcols.flags.c_contiguous and compiled.enabled()):
        compiled.kernels().col2im_stride1(dcols, dxp)  # the same sums in one pass
        dx4 = dxp[:, pt:pt + H, pl:pl + W].transpose(3, 0, 1, 2)
        return _un_nchw(dx4, len(x_shape), nd)
    dxg = dxp.reshape(G, Cg, Hp, Wp, N)
    offsets = _offsets(kh, kw, stride, dilation, oh, ow)

    def add_columns(lo: int, hi: int) -> None:
        block = dxg[:, lo:hi]
        block.fill(0)
        for k, (rs, cs) in enumerate(offsets):
            block[:, :, rs, cs] += dcols[:, k // kw, k % kw, lo:hi]

    if worth_splitting(dxp.nbytes + dcols.nbytes):
        per_channel = dxp.nbytes // max(Cg, 1)
        parallel_for(add_columns, Cg, grain=max(1, _CHUNK_BYTES // max(per_channel, 1)))
    else:
        add_columns(0, Cg)
    dx4 = dxp[:, pt:pt + H, pl:pl + W].transpose(3, 0, 1, 2)
    return _un_nchw(dx4, len(x_shape), nd)
