"""Transposed convolution (the gradient of a convolution with respect to its input).

Forward is one batched GEMM per group, `W^T (Cout*kh*kw, Cin) @ x (Cin, N*H*W)`, followed by
kh*kw strided slice-adds of the columns onto an output canvas (col2im), then a crop by
`padding` (and `output_padding` extra rows on the far side). Backward is the mirror image:
kh*kw strided slices of the upstream gradient gathered into columns (im2col), one GEMM for
the input gradient and one for the weight gradient. 1-D runs the 2-D kernel with unit height.

Layouts: x (N, Cin, H, W); weight (Cin, Cout / groups, kh, kw), torch's; bias (Cout,).
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp

__all__ = ["ConvTranspose", "output_size"]


def output_size(n: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """torch's transposed-convolution output length for one spatial dim."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _canvas_slices(i: int, j: int, n_h: int, n_w: int, stride, dilation) -> tuple:
    """Where kernel tap (i, j) of every input position lands on the canvas."""
    sh, sw = stride
    h0, w0 = i * dilation[0], j * dilation[1]
    return (slice(h0, h0 + (n_h - 1) * sh + 1, sh), slice(w0, w0 + (n_w - 1) * sw + 1, sw))


class ConvTranspose(Function):
    """y = conv_transpose(x, w) + b, 2-D (or 1-D: 3-D arrays, run with a unit height)."""

    op_name = "conv_transpose"

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                dilation=(1, 1), groups=1):
        one_d = x.ndim == 3
        if one_d:
            x, w = x[:, :, None, :], w[:, :, None, :]
        n, cin, h, wd = x.shape
        _, cog, kh, kw = w.shape
        g = groups
        hout = output_size(h, kh, stride[0], padding[0], output_padding[0], dilation[0])
        wout = output_size(wd, kw, stride[1], padding[1], output_padding[1], dilation[1])
        canvas_h = max((h - 1) * stride[0] + dilation[0] * (kh - 1) + 1, padding[0] + hout)
        canvas_w = max((wd - 1) * stride[1] + dilation[1] * (kw - 1) + 1, padding[1] + wout)
        xg = xp.ascontiguousarray(x.reshape(n, g, cin // g, h * wd).transpose(1, 2, 0, 3))
        xg = xg.reshape(g, cin // g, n * h * wd)
        wg = w.reshape(g, cin // g, cog * kh * kw)
        cols = xp.matmul(wg.transpose(0, 2, 1), xg).reshape(g, cog, kh, kw, n, h, wd)
        canvas = xp.zeros((g, cog, n, canvas_h, canvas_w), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                sl = _canvas_slices(i, j, h, wd, stride, dilation)
                canvas[:, :, :, sl[0], sl[1]] += cols[:, :, i, j]
        crop = canvas[:, :, :, padding[0]:padding[0] + hout, padding[1]:padding[1] + wout]
        out = xp.ascontiguousarray(crop.reshape(g * cog, n, hout, wout).transpose(1, 0, 2, 3))
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        ctx.save_for_backward(xg, wg)
        ctx.geometry = (n, cin, h, wd, cog, kh, kw, hout, wout, canvas_h, canvas_w)
        ctx.attrs = (stride, padding, dilation, g, one_d, b is not None)
        return out[:, :, 0, :] if one_d else out

    @staticmethod
    def backward(ctx, grad):
        xg, wg = ctx.saved
        n, cin, h, wd, cog, kh, kw, hout, wout, canvas_h, canvas_w = ctx.geometry
        stride, padding, dilation, g, one_d, has_bias = ctx.attrs
        if one_d:
            grad = grad[:, :, None, :]
        canvas = xp.zeros((g, cog, n, canvas_h, canvas_w), dtype=grad.dtype)
        canvas[:, :, :, padding[0]:padding[0] + hout, padding[1]:padding[1] + wout] = \
            grad.reshape(n, g, cog, hout, wout).transpose(1, 2, 0, 3, 4)
        dcols = xp.empty((g, cog, kh, kw, n, h, wd), dtype=grad.dtype)
        for i in range(kh):
            for j in range(kw):
                sl = _canvas_slices(i, j, h, wd, stride, dilation)
                dcols[:, :, i, j] = canvas[:, :, :, sl[0], sl[1]]
        dcols = dcols.reshape(g, cog * kh * kw, n * h * wd)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = xp.matmul(wg, dcols).reshape(g * (cin // g), n, h, wd).transpose(1, 0, 2, 3)
            dx = xp.ascontiguousarray(dx)
            if one_d:
                dx = dx[:, :, 0, :]
        if ctx.needs_input_grad[1]:
            dw = xp.matmul(xg, dcols.transpose(0, 2, 1)).reshape(cin, cog, kh, kw)
            if one_d:
                dw = dw[:, :, 0, :]
        if has_bias and ctx.needs_input_grad[2]:
            db = grad.sum(axis=(0, 2, 3))
        return (dx, dw, db) if has_bias else (dx, dw)
