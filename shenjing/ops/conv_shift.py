"""Shift-and-add convolution: the Conv Function's path for 1-D-like, stride-1, ungrouped layers.

Why: im2col copies the input k times into columns that the backward keeps for the weight
gradient. A text CNN's three windows (3, 4, 5 over 400 tokens of 100 features) keep 12 copies
of its embedded batch, ~120 MB of W5's peak (issue 12). A stride-1 1-D convolution is
instead a sum of k shifted products, out = sum_j W_j @ X[:, j*d : j*d + L], where each
shifted X is a plain strided matrix of the batch-innermost frame (Cx, P, N): no copy, and
only the frame itself is saved. Backward stacks k shifted copies of the upstream gradient
one block of positions at a time, so the weight and input gradients are two GEMMs per block
(`_stacked_products`). Same multiply-adds as im2col, k times less memory kept for backward.

Taken for `groups == 1`, stride 1 along the convolved axis and either a 1-D convolution or a
2-D one whose kernel covers the whole padded width (a text CNN's (k, E) windows over
(N, 1, T, E)), which is a 1-D convolution over H whose channels are (C, W).
"""

from __future__ import annotations

from ..backend import xp
from .window import _frame, _nchw, _scratch, _un_nchw


def shift_eligible(nd: int, x4_shape: tuple, w4_shape: tuple, stride: tuple, padding: tuple,
                   dilation: tuple, groups: int) -> bool:
    """Whether the convolution is one the shift-and-add path computes."""
    if groups != 1:
        return False
    kh, kw = w4_shape[2:]
    if nd == 1:
        return stride[1] == 1
    full_width = kw == x4_shape[3] + padding[2] + padding[3] and (kw == 1 or dilation[1] == 1)
    return full_width and stride[0] == 1 and kh > 1


def shift_forward(ctx, x, x4, w4, b, dilation: tuple, padding: tuple, nd: int):
    """Forward of the shift path; saves the frame and the per-tap weights on `ctx`."""
    Co, C, kh, kw = w4.shape
    if nd == 1:  # frame (C, 1, Wp, N): taps along W
        frame = _frame(x4, padding, 0.0, contiguous=True)
        X = frame.reshape(C, frame.shape[2], frame.shape[3])
        taps = xp.ascontiguousarray(w4[:, :, 0, :].transpose(2, 0, 1))  # (kw, Co, C)
        k, d = kw, dilation[1]
    else:  # swapped frame (C, Wp, Hp, N): taps along H, channels (C, W)
        pt, pb, pl, pr = padding
        frame = _frame(x4.transpose(0, 1, 3, 2), (pl, pr, pt, pb), 0.0, contiguous=True)
        X = frame.reshape(C * kw, frame.shape[2], frame.shape[3])
        taps = xp.ascontiguousarray(w4.transpose(2, 0, 1, 3)).reshape(kh, Co, C * kw)
        k, d = kh, dilation[0]
    Cx, P, N = X.shape
    L = P - d * (k - 1)
    # W_j @ X_j with W_j read as the transpose of a contiguous (Cx, Co) array: OpenBLAS
    # runs this "TN" form 2.5x faster than "NN" on text-CNN shapes (100x100 @ 100x25472:
    # 57 vs 22 GFLOP/s measured on 2 cores); the backward's taps^T @ S is TN already.
    taps_t = xp.ascontiguousarray(taps.transpose(0, 2, 1))
    out = _scratch.empty((Co, L * N), x.dtype)
    xp.matmul(taps_t[0].T, X[:, :L].reshape(Cx, L * N), out=out)
    if k > 1:
        product = _scratch.empty((Co, L * N), x.dtype)
        for j in range(1, k):
            xp.matmul(taps_t[j].T, X[:, j * d:j * d + L].reshape(Cx, L * N), out=product)
            out += product
        del product
    if b is not None:
        out += b[:, None]
    ctx.save_for_backward(X, taps)
    ctx.geom = ("shift", x.shape, tuple(w4.shape), frame.shape, padding, d, nd, b is not None)
    out4 = out.reshape(Co, 1, L, N) if nd == 1 else out.reshape(Co, L, 1, N)
    return _un_nchw(out4.transpose(3, 0, 1, 2), x.ndim, nd)


def shift_backward(ctx, g):
    """(dx, dw, db) of the shift path from the upstream gradient g."""
    X, taps = ctx.saved
    _, x_shape, w4_shape, frame_shape, padding, d, nd, has_bias = ctx.geom
    g4 = _nchw(g, nd)
    need = ctx.needs_input_grad
    Co, C, kh, kw = w4_shape
    k = kw if nd == 1 else kh
    Cx, P, N = X.shape
    L = P - d * (k - 1)
    gt = g4.transpose(1, 2, 3, 0)  # (Co, oh, ow, N): free when g is the forward's output
    g2 = gt if gt.flags.c_contiguous else _scratch.copy(gt)
    g2 = g2.reshape(Co, L * N)
    gx = gw = gb = None
    if has_bias and need[2]:
        gb = g2.sum(axis=1)
    if need[0] or need[1]:
        dstack, dX = _stacked_products(X, taps, g2.reshape(Co, L, N), d, need[1], need[0])
        if need[1]:  # dstack[j, o, :] is tap j's weight row o
            if nd == 1:
                gw = xp.ascontiguousarray(dstack.transpose(1, 2, 0))
            else:
                gw = xp.ascontiguousarray(dstack.reshape(kh, Co, C, kw).transpose(1, 2, 0, 3))
        if need[0]:
            gx = _unframe(dX, x_shape, frame_shape, padding, nd)
    return gx, gw, gb


_BLOCK_ELEMENTS = 1 << 21  # ~8 MB of float32: the stacked upstream gradient of one block


def _stacked_products(X, taps, g3, d: int, need_w: bool, need_x: bool) -> tuple:
    """Weight and frame gradients of the shift path from stacked shifts of the upstream
    gradient, a block of frame positions at a time.

    For frame positions [p0, p1) the block S (k, Co, p1 - p0, N) holds g shifted by each
    tap (S[j, :, p] = g[:, p - j*d], zero where that is outside the output), so the frame
    gradient of the block is one GEMM, taps^T (Cx, k*Co) @ S, written straight into place
    (no shifted adds), and the weight gradient gains S @ X_block^T (k*Co, Cx). Two GEMMs with
    K = k*Co and N = p*N instead of 2k with K = Co: 10-20 % faster on a text CNN's layers
    (k = 3..5, 100 channels, 400 positions x 64), for one ~8 MB block of scratch.
    """
    k, Co, Cx = taps.shape
    _, P, N = X.shape
    L = g3.shape[1]
    block = max(1, min(P, _BLOCK_ELEMENTS // (k * Co * N)))
    buf = _scratch.empty((k * Co * block * N,), g3.dtype)
    rows = taps.reshape(k * Co, Cx)
    dstack = xp.zeros((k * Co, Cx), g3.dtype) if need_w else None
    dX = _scratch.empty((Cx, P, N), g3.dtype) if need_x else None
    for p0 in range(0, P, block):
        p1 = min(p0 + block, P)
        S = buf[:k * Co * (p1 - p0) * N].reshape(k, Co, p1 - p0, N)
        for j in range(k):
            lo, hi = max(p0, j * d), min(p1, j * d + L)
            if hi <= lo:
                S[j] = 0.0
                continue
            S[j, :, :lo - p0] = 0.0
            S[j, :, hi - p0:] = 0.0
            S[j, :, lo - p0:hi - p0] = g3[:, lo - j * d:hi - j * d]
        S2 = S.reshape(k * Co, (p1 - p0) * N)
        if need_x:
            xp.matmul(rows.T, S2, out=dX[:, p0:p1].reshape(Cx, (p1 - p0) * N))
        if need_w:
            dstack += S2 @ X[:, p0:p1].reshape(Cx, (p1 - p0) * N).T
    del buf
    return (None if dstack is None else dstack.reshape(k, Co, Cx)), dX


def _unframe(dX, x_shape: tuple, frame_shape: tuple, padding: tuple, nd: int):
    """The input's gradient (a view) from the gradient of the shift path's frame."""
    pt, _, pl, _ = padding
    H, W = (x_shape[-2] if nd == 2 else 1), x_shape[-1]
    d4 = dX.reshape(frame_shape)
    if nd == 1:  # (C, 1, Wp, N)
        dx4 = d4[:, :, pl:pl + W].transpose(3, 0, 1, 2)
    else:  # (C, Wp, Hp, N)
        dx4 = d4[:, pl:pl + W, pt:pt + H].transpose(3, 0, 2, 1)
    return _un_nchw(dx4, len(x_shape), nd)
