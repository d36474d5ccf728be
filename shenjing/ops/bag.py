"""Segment sums for embedding bags: rows grouped into consecutive, in-order segments.

`SegmentSum` adds each run of rows into one output row with one `add.reduceat` (a
scatter-add with `add.at` is several times slower); the gradient of a row is its
segment's gradient, repeated. Empty segments give zero rows.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp

__all__ = ["SegmentSum"]


class SegmentSum(Function):
    """out[s] = rows[start_s : start_s + counts[s]].sum(0), segments back to back from row 0
    (counts.sum() == len(rows)); F.embedding_bag's sum and mean."""

    @staticmethod
    def forward(ctx, rows, counts):
        out = xp.zeros((counts.shape[0],) + rows.shape[1:], dtype=rows.dtype)
        filled = counts > 0
        if rows.shape[0]:
            starts = (xp.cumsum(counts) - counts)[filled]
            out[filled] = xp.add.reduceat(rows, starts, axis=0)
        ctx.meta = counts
        return out

    @staticmethod
    def backward(ctx, g):
        return xp.repeat(g, ctx.meta, axis=0), None
