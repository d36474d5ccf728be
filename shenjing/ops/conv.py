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

The frame helpers and the scratch-buffer pool live in window.py (shared with pool.py); the
functional API with its argument checks is shenjing.nn.functional_conv.
"""

from __future__ import annotations

from ..autograd.engine import Function
from ..backend import xp
from .window import _frame, _nchw, _offsets, _out_size, _scratch, _un_nchw

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
        xpad = _frame(x4, padding, 0.0, contiguous=True)  # (C, Hp, Wp, N)
        Kg, M, hb = kh * kw * Cg, oh * ow * N, b is not None

        # columns (G, Kg [+ 1 row of ones for the bias], M), rows ordered (kh, kw, Cg)
        cols = _scratch.empty((G, Kg + hb, M), x.dtype)
        win = xp.lib.stride_tricks.sliding_window_view(
            xpad, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2))
        win = win[:, :sh * (oh - 1) + 1:sh, :sw * (ow - 1) + 1:sw, :, ::dh, ::dw]
        cols[:, :Kg].reshape(G, kh, kw, Cg, oh, ow, N)[...] = (
            win.reshape(G, Cg, oh, ow, N, kh, kw).transpose(0, 5, 6, 1, 2, 3, 4))
        wm = xp.empty((G, Og, Kg + hb), dtype=x.dtype)
        wm[:, :, :Kg].reshape(G, Og, kh, kw, Cg)[...] = (
            w4.reshape(G, Og, Cg, kh, kw).transpose(0, 1, 3, 4, 2))
        if hb:
            cols[:, Kg] = 1.0
            wm[:, :, Kg] = b.reshape(G, Og)
        out = xp.matmul(wm, cols, out=_scratch.empty((G, Og, M), x.dtype))  # (Co, oh, ow, N)

        ctx.save_for_backward(cols, wm)
        ctx.geom = (x.shape, w.shape, xpad.shape, stride, dilation, padding, G, hb)
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
            dwt = (cols[0] @ gt[0])[None] if G == 1 else xp.matmul(cols, gt)  # (G, Kg+hb, Og)
            gw = xp.ascontiguousarray(
                dwt[:, :Kg].reshape(G, kh, kw, Cg, Og).transpose(0, 4, 3, 1, 2)
            ).reshape(w_shape)
            if hb:
                gb = dwt[:, Kg].reshape(Co)
        if need[0]:
            wt = wm[:, :, :Kg].transpose(0, 2, 1)
            dcols = xp.matmul(wt, g2, out=_scratch.empty((G, Kg, oh * ow * N), g.dtype))
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
