"""Op-table rows for the Tensor methods of shenjing/tensor/extra.py and the primitives in
shenjing/ops/indexing.py (appended to `OPS` by tests/op_specs.py, so tests/test_ops.py runs
forward-vs-torch, backward-vs-torch and float64 gradcheck on each, and its guard sees them).

Index operands are module constants so both libraries see the same ones; scatter's targets
are distinct per column (torch leaves the winner of repeated writes unspecified), scatter_add
and index_add repeat targets on purpose (the adds must accumulate).
"""

from __future__ import annotations

import numpy as np
from op_specs import Arg, row  # tests/ is on sys.path, as for test_ops

from shenjing.ops import elementwise as E
from shenjing.ops import indexing as IX
from shenjing.ops import linalg as L
from shenjing.ops import movement as M
from shenjing.ops import reduce as R

__all__ = ["OPS_TENSOR"]

SCATTER_IDX = np.array([[1, 0, 2, 3], [3, 2, 0, 1]])  # distinct targets in each column of 4
SCATTER_ADD_IDX = np.array([[0, 1, 0, 2], [0, 3, 0, 2], [1, 1, 3, 2]])  # repeats: accumulate
INDEX_ADD_IDX = [2, 0, 2]
REPEATS = [2, 0, 1]
POS = dict(low=0.3, high=1.5)


def _idx(lib, arr):
    return lib.tensor(np.asarray(arr))


# fmt: off
OPS_TENSOR = [
    # ------------------------------------------------------------------ matrix products
    row("mm_function", lambda lib, a, b: lib.mm(a, b), [(3, 4), (4, 2)], L.MatMul),
    row("mm_method", lambda lib, a, b: a.mm(b), [(2, 3), (3, 5)], L.MatMul),
    row("bmm", lambda lib, a, b: lib.bmm(a, b), [(2, 3, 4), (2, 4, 2)], L.MatMul),
    row("addmm", lambda lib, c, a, b: lib.addmm(c, a, b, beta=0.5, alpha=2.0),
        [(3,), (2, 4), (4, 3)], (L.MatMul, E.Mul, E.Add)),
    row("outer", lambda lib, a, b: lib.outer(a, b), [(3,), (4,)], (M.Reshape, E.Mul)),
    row("einsum_matmul", lambda lib, a, b: lib.einsum("ij,jk->ik", a, b), [(2, 3), (3, 4)],
        IX.Einsum),
    row("einsum_batch_attention", lambda lib, q, k: lib.einsum("bqd,bkd->bqk", q, k),
        [(2, 3, 4), (2, 5, 4)], IX.Einsum),
    row("einsum_sum_out", lambda lib, a, b: lib.einsum("ij,j->", a, b), [(3, 4), (4,)],
        IX.Einsum),
    row("einsum_own_sum", lambda lib, a, b: lib.einsum("ij,k->k", a, b), [(2, 3), (4,)],
        IX.Einsum),
    row("einsum_implicit_out", lambda lib, a, b: lib.einsum("ij,jk", a, b), [(2, 3), (3, 2)],
        IX.Einsum),
    row("einsum_transpose", lambda lib, a: lib.einsum("ijk->kji", a), [(2, 3, 4)],
        IX.Einsum),
    # ------------------------------------------------------------------ sorting
    row("sort", lambda lib, a: a.sort(dim=1), [(3, 5)], M.Gather, distinct=True),
    row("sort_desc_dim0", lambda lib, a: lib.sort(a, 0, descending=True), [(4, 3)],
        M.Gather, distinct=True),
    row("topk", lambda lib, a: a.topk(2, dim=1), [(3, 5)], M.Gather, distinct=True),
    row("topk_smallest_dim0", lambda lib, a: lib.topk(a, 3, dim=0, largest=False),
        [(4, 3)], M.Gather, distinct=True),
    row("kthvalue", lambda lib, a: a.kthvalue(2, dim=1), [(3, 5)], (M.Gather, M.Reshape),
        distinct=True),
    row("kthvalue_keepdim", lambda lib, a: lib.kthvalue(a, 3, 0, keepdim=True), [(4, 3)],
        M.Gather, distinct=True),
    # ------------------------------------------------------------------ scans
    row("cumsum", lambda lib, a: a.cumsum(1), [(3, 4)], IX.Cumsum),
    row("cumsum_neg_dim", lambda lib, a: lib.cumsum(a, dim=-3), [(3, 2, 2)], IX.Cumsum),
    row("cumprod", lambda lib, a: a.cumprod(1), [Arg((3, 4), **POS, signed=True)],
        IX.Cumprod),
    row("cumprod_with_zeros", lambda lib, a: lib.cumprod(a, 0),
        [Arg((4, 3), zeros=(1, 5, 6))], IX.Cumprod),
    # ------------------------------------------------------------------ triangles, diag
    row("tril", lambda lib, a: a.tril(), [(4, 3)], E.Where),
    row("tril_offset_batch", lambda lib, a: lib.tril(a, -1), [(2, 3, 4)], E.Where),
    row("triu", lambda lib, a: a.triu(1), [(3, 4)], E.Where),
    row("triu_neg", lambda lib, a: lib.triu(a, diagonal=-1), [(4, 4)], E.Where),
    row("diag_vector_to_matrix", lambda lib, a: lib.diag(a), [(3,)], IX.Diag),
    row("diag_offset_matrix", lambda lib, a: a.diag(1), [(4,)], IX.Diag),
    row("diag_matrix_to_vector", lambda lib, a: a.diag(), [(3, 4)], IX.Diag),
    row("diag_matrix_neg", lambda lib, a: lib.diag(a, -1), [(4, 3)], IX.Diag),
    row("trace", lambda lib, a: a.trace(), [(3, 3)], (IX.Diag, R.Sum)),
    row("roll", lambda lib, a: a.roll(1, 1), [(3, 4)], IX.Roll),
    row("roll_flat", lambda lib, a: lib.roll(a, -2), [(3, 4)], (IX.Roll, M.Reshape)),
    row("roll_multi", lambda lib, a: a.roll((1, -1), (0, 2)), [(2, 3, 4)], IX.Roll),
    # ------------------------------------------------------------------ scatter / index
    row("scatter", lambda lib, a, s: a.scatter(0, _idx(lib, SCATTER_IDX), s),
        [(4, 4), (2, 4)], IX.Scatter),
    # a src larger than index uses its corner; torch's own backward rejects this case
    row("scatter_bigger_src", lambda lib, a, s: a.scatter(0, _idx(lib, SCATTER_IDX), s),
        [(4, 4), (3, 5)], IX.Scatter, grad=False),
    row("scatter_value", lambda lib, a: lib.scatter(a, 0, _idx(lib, SCATTER_IDX), value=2.5),
        [(4, 4)], IX.Scatter),
    row("scatter_dim1", lambda lib, a, s: a.scatter(1, _idx(lib, SCATTER_IDX.T), s),
        [(4, 4), (4, 2)], IX.Scatter),
    row("scatter_add", lambda lib, a, s: a.scatter_add(0, _idx(lib, SCATTER_ADD_IDX), s),
        [(4, 4), (3, 4)], IX.ScatterAdd),
    row("scatter_add_dim1_bigger_src",
        lambda lib, a, s: lib.scatter_add(a, 1, _idx(lib, SCATTER_ADD_IDX.T[:2]), s),
        [(2, 4), (3, 5)], IX.ScatterAdd, grad=False),
    row("index_add", lambda lib, a, s: a.index_add(0, _idx(lib, INDEX_ADD_IDX), s),
        [(3, 4), (3, 4)], IX.IndexAdd),
    row("index_add_dim1_alpha",
        lambda lib, a, s: lib.index_add(a, 1, _idx(lib, INDEX_ADD_IDX), s, alpha=-2.0),
        [(2, 3), (2, 3)], IX.IndexAdd),
    row("masked_fill_", lambda lib, a, m: (a * 1).masked_fill_(m, -1.5), [(3, 4),
        Arg((3, 4), kind="bool")], (E.Mul, E.Where)),
    row("masked_select", lambda lib, a, m: a.masked_select(m), [(3, 4),
        Arg((4,), kind="bool")], M.GetItem),
    row("repeat_interleave", lambda lib, a: a.repeat_interleave(2, dim=0), [(2, 3)],
        M.GetItem),
    row("repeat_interleave_tensor", lambda lib, a: lib.repeat_interleave(
        a, _idx(lib, REPEATS), dim=1), [(2, 3)], M.GetItem),
    row("repeat_interleave_flat", lambda lib, a: a.repeat_interleave(3), [(2, 2)],
        (M.Reshape, M.GetItem)),
    # ------------------------------------------------------------------ elementwise
    row("lerp_scalar", lambda lib, a, b: a.lerp(b, 0.3), [(3, 4), (3, 4)],
        (E.Sub, E.Mul, E.Add)),
    row("lerp_tensor_weight", lambda lib, a, b, w: lib.lerp(a, b, w),
        [(3, 4), (4,), (3, 1)], (E.Sub, E.Mul, E.Add)),
    row("remainder", lambda lib, a, b: a.remainder(b),
        [Arg((3, 4), low=-5, high=5), Arg((3, 4), **dict(low=0.7, high=2.0), signed=True)],
        (E.Mul, E.Sub)),
    row("remainder_scalar", lambda lib, a: lib.remainder(a, 1.5), [Arg((3, 4), -5, 5)],
        (E.Mul, E.Sub)),
    row("fmod", lambda lib, a, b: a.fmod(b),
        [Arg((3, 4), low=-5, high=5), Arg((3, 4), low=0.7, high=2.0, signed=True)],
        (E.Mul, E.Sub)),
    row("nan_to_num_finite", lambda lib, a: a.nan_to_num(), [(3, 4)], E.Where),
    row("nan_to_num_special",
        lambda lib, a: lib.where(a > 1, a * float("inf"), a).nan_to_num(posinf=7.0),
        [(3, 4)], (E.Mul, E.Where), grad=False),
]
# fmt: on
