"""Op-table rows for the nn primitives added with the Transformer / ConvTranspose work, in
tests/op_specs.py's format (`OPS_NN`, to be merged into `OPS`): transposed convolution,
fused scaled dot-product attention, the backward-hook identity and embedding bags' segment
sum. Until the merge, tests/test_nn_more_layers.py runs them through the same three checks.
"""

from __future__ import annotations

from op_specs import Arg, OpSpec, row

from shenjing.ops.attention import Attention
from shenjing.ops.backward_hook import HookPack
from shenjing.ops.bag import SegmentSum
from shenjing.ops.conv_transpose import ConvTranspose

__all__ = ["OPS_NN"]


def _nnf(lib):
    return lib.nn.functional


def _hook_pack(lib, a, b):
    """shenjing: the two tensors through one HookPack (identity); torch: their flat concat."""
    if lib.__name__ == "shenjing":
        return HookPack.apply(a, b, on_grad=None)
    return lib.cat([a.reshape(-1), b.reshape(-1)])


def _sdpa_mask(lib, q, k, v):
    mask = lib.tensor([[True, False, True, True], [False, True, True, False],
                       [True, True, False, True]])
    return _nnf(lib).scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _embedding_bag(lib, w, psw=None, mode="sum"):
    """Bags [0, 3) [3, 3) (empty) [3, 7) of a 6-row table; index 4 repeats in the last."""
    text, offsets = lib.tensor([5, 0, 5, 4, 1, 4, 2]), lib.tensor([0, 3, 3])
    return _nnf(lib).embedding_bag(text, w, offsets, mode=mode, per_sample_weights=psw)


# fmt: off
OPS_NN: list[OpSpec] = [
    row("conv_transpose2d", lambda lib, x, w, b: _nnf(lib).conv_transpose2d(x, w, b),
        [(2, 3, 4, 5), (3, 2, 3, 3), (2,)], ConvTranspose, grad_rtol=1e-4),
    row("conv_transpose2d_stride_pad_outpad",
        lambda lib, x, w, b: _nnf(lib).conv_transpose2d(x, w, b, stride=(2, 3), padding=1,
                                                        output_padding=(1, 2)),
        [(2, 2, 3, 4), (2, 3, 3, 4), (3,)], ConvTranspose, grad_rtol=1e-4),
    row("conv_transpose2d_groups_dilation",
        lambda lib, x, w: _nnf(lib).conv_transpose2d(x, w, stride=2, padding=2, groups=2,
                                                     dilation=2),
        [(1, 4, 4, 3), (4, 3, 3, 2)], ConvTranspose, grad_rtol=1e-4),
    row("conv_transpose2d_unbatched",
        lambda lib, x, w: _nnf(lib).conv_transpose2d(x, w, stride=2), [(2, 3, 3), (2, 2, 2, 2)],
        ConvTranspose),
    row("conv_transpose1d", lambda lib, x, w, b: _nnf(lib).conv_transpose1d(x, w, b, stride=3,
                                                                             padding=1),
        [(2, 3, 5), (3, 4, 4), (4,)], ConvTranspose, grad_rtol=1e-4),
    row("conv_transpose1d_groups_outpad",
        lambda lib, x, w: _nnf(lib).conv_transpose1d(x, w, stride=2, output_padding=1,
                                                     groups=3, dilation=2),
        [(2, 3, 4), (3, 2, 3)], ConvTranspose),
    row("sdpa", lambda lib, q, k, v: _nnf(lib).scaled_dot_product_attention(q, k, v),
        [(2, 3, 4), (2, 4, 4), (2, 4, 3)], Attention),
    row("sdpa_4d_bool_mask", _sdpa_mask, [(1, 2, 3, 3), (1, 2, 4, 3), (1, 2, 4, 2)], Attention),
    row("sdpa_causal_scale",
        lambda lib, q, k, v: _nnf(lib).scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                     scale=0.7),
        [(2, 4, 3), (2, 4, 3), (2, 4, 2)], Attention),
    row("sdpa_broadcast_kv",
        lambda lib, q, k, v: _nnf(lib).scaled_dot_product_attention(q, k, v),
        [(2, 2, 2, 3), Arg((1, 2, 4, 3)), (1, 2, 4, 2)], Attention),
    row("backward_hook_pack", _hook_pack, [(2, 3), (4,)], HookPack),
    row("embedding_bag_sum_segments", _embedding_bag, [(6, 3)], SegmentSum),
    row("embedding_bag_mean_segments", lambda lib, w: _embedding_bag(lib, w, mode="mean"),
        [(6, 3)], SegmentSum),
    row("embedding_bag_per_sample_weights", _embedding_bag, [(6, 3), (7,)], SegmentSum),
]
# fmt: on
