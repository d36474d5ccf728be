"""Scaled dot-product attention as one Function: softmax(q k^T * scale + mask) v.

One node instead of six (scale, matmul, add, softmax, dropout, matmul) keeps a Transformer
layer's graph small and its memory traffic low: the probabilities are normalized in place
and are the only (B, L, S) array kept for backward (plus the dropout mask when training).

Shapes: q (..., L, D), k (..., S, D), v (..., S, Dv), leading dims broadcast as in matmul;
`mask` is an additive float array broadcastable to (..., L, S) (-inf forbids a position).
The mask is a constant: no gradient flows into it.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp
from .nn_ops import apply_keep, dropout_keep

__all__ = ["Attention"]


def _swap(a):
    return a.swapaxes(-1, -2)


# OpenBLAS (0.3.x) runs a GEMM of m*n*k <= 4 * 65536 on one thread. The attention products are
# many small GEMMs (one per batch element and head); threaded, each one waits for a second
# thread, which costs little on an idle machine but 10-30x when the cores are shared. Rows
# are therefore cut into blocks small enough to run single-threaded (PERF-NOTES style).
_SINGLE_THREAD_MNK = 1 << 17


def _bmm(a, b):
    """matmul over broadcast leading dims, in row blocks that OpenBLAS runs on one thread."""
    m, k = a.shape[-2:]
    n = b.shape[-1]
    rows = max(1, _SINGLE_THREAD_MNK // max(1, n * k))
    if rows >= m:
        return xp.matmul(a, b)
    lead = xp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = xp.empty(lead + (m, n), dtype=xp.result_type(a, b))
    for i in range(0, m, rows):
        xp.matmul(a[..., i:i + rows, :], b, out=out[..., i:i + rows, :])
    return out


class Attention(Function):
    """out = dropout(softmax(q k^T * scale + mask)) @ v."""

    op_name = "scaled_dot_product_attention"

    @staticmethod
    def forward(ctx, q, k, v, mask=None, scale=1.0, dropout_p=0.0, rng=None):
        # head views are strided; BLAS runs far faster (and steadier) on contiguous ones
        k, v = xp.ascontiguousarray(k), xp.ascontiguousarray(v)
        qs = q * q.dtype.type(scale)
        p = _bmm(qs, _swap(k))
        if mask is not None:
            p += mask
        p -= p.max(axis=-1, keepdims=True)
        xp.exp(p, out=p)
        p /= p.sum(axis=-1, keepdims=True)
        keep = None
        pd = p
        if dropout_p > 0.0:
            keep = dropout_keep(rng, p.shape, dropout_p)
            pd = apply_keep(p, keep, dropout_p)
        ctx.save_for_backward(qs, k, v, p, *(() if keep is None else (keep,)))
        ctx.scale, ctx.dropout_p = scale, dropout_p
        return _bmm(pd, v)

    @staticmethod
    def backward(ctx, g):
        qs, k, v, p = ctx.saved[:4]
        keep = ctx.saved[4] if len(ctx.saved) > 4 else None
        g = xp.ascontiguousarray(g)
        pd = p if keep is None else apply_keep(p, keep, ctx.dropout_p)
        dv = _bmm(_swap(pd), g) if ctx.needs_input_grad[2] else None
        del pd
        dp = _bmm(g, _swap(v))
        if keep is not None:
            xp.multiply(dp, keep, out=dp)
            dp *= dp.dtype.type(1.0 / (1.0 - ctx.dropout_p))
        # softmax backward: ds = p * (dp - sum(dp * p))
        row = (dp * p).sum(axis=-1, keepdims=True)
        dp -= row
        dp *= p
        dq = dk = None
        if ctx.needs_input_grad[0]:
            dq = _bmm(dp, k)
            dq *= dq.dtype.type(ctx.scale)
        if ctx.needs_input_grad[1]:
            dk = _bmm(_swap(dp), qs)
        return dq, dk, dv
