"""MultiheadAttention and scaled_dot_product_attention with torch's names, arguments,
mask conventions, parameter names and initialization.

Masks, as in torch: for MultiheadAttention a bool `attn_mask` / `key_padding_mask` marks
with True the positions that may NOT be attended; a float mask is added to the scores.
For scaled_dot_product_attention a bool mask marks with True the positions that MAY be
attended. Both become one additive float array, broadcast over (N, heads, L, S).

Heads are a batch dimension (N, H, L, D) of strided views of the projections, so the whole
attention is one fused `ops.attention.Attention` node (batched GEMMs, in-place softmax);
`need_weights=True` spells the same computation out in Tensor ops to return the weights.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.attention import Attention
from ..random import get_rng
from ..tensor import Tensor, cat, from_numpy
from . import functional_base as F
from . import init
from .layers import Linear, _dtype
from .module import Module, Parameter

__all__ = ["MultiheadAttention", "scaled_dot_product_attention", "causal_mask"]


def causal_mask(n: int, s: int | None = None, dtype=np.float32) -> np.ndarray:
    """(n, s) additive mask: -inf above the diagonal (position j > i is in the future)."""
    s = n if s is None else s
    return np.triu(np.full((n, s), -np.inf, dtype=dtype), 1)


def _additive(mask, dtype, what: str, true_means_masked: bool) -> np.ndarray | None:
    """A bool or float mask (Tensor or array) as an additive float array."""
    if mask is None:
        return None
    arr = mask.numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if arr.dtype == np.bool_:
        masked = arr if true_means_masked else ~arr
        return np.where(masked, -np.inf, 0.0).astype(dtype)
    if arr.dtype.kind != "f":
        raise TypeError(f"{what}: only bool and floating-point masks are supported, got "
                        f"dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: np.ndarray | None, scale: float,
            dropout_p: float, need_weights: bool):
    """softmax(q k^T scale + mask) v over the last two dims; the weights too if asked."""
    if not need_weights:
        return Attention.apply(q, k, v, mask=mask, scale=scale, dropout_p=dropout_p,
                               rng=get_rng() if dropout_p > 0 else None), None
    scores = (q * scale) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores + from_numpy(mask)
    weights = F.softmax(scores, dim=-1)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention: q (..., L, E), k (..., S, E),
    v (..., S, Ev) -> (..., L, Ev); a bool attn_mask is True where attention is allowed."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim < 2 or t.dtype.kind != "f":
            raise TypeError(f"scaled_dot_product_attention: {name} must be a floating-point "
                            f"Tensor with at least 2 dims, got {getattr(t, 'shape', t)!r}")
    L, E = query.shape[-2:]
    S = key.shape[-2]
    if key.shape[-1] != E or value.shape[-2] != S:
        raise ValueError(f"scaled_dot_product_attention: expected key (..., S, {E}) and value "
                         f"(..., S, Ev) with the same S, got key {tuple(key.shape)} and value "
                         f"{tuple(value.shape)}")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    mask = causal_mask(L, S, query.dtype) if is_causal else \
        _additive(attn_mask, query.dtype, "scaled_dot_product_attention", False)
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    return _attend(query, key, value, mask, scale, float(dropout_p), False)[0]


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al.) with torch's parameters: `in_proj_weight`
    (3E, E) and `in_proj_bias`, or `q/k/v_proj_weight` when kdim/vdim differ from E, and
    `out_proj` (a Linear); optional `bias_k`, `bias_v` and `add_zero_attn`."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, "
                             f"got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by "
                             f"num_heads={num_heads}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.kdim = embed_dim if kdim is None else int(kdim)
        self.vdim = embed_dim if vdim is None else int(vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = bool(add_zero_attn)
        dt = _dtype(dtype)
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dt))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(np.empty((E, E), dt))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dt))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dt))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * E, dt))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dt)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, E), dt))
            self.bias_v = Parameter(np.empty((1, 1, E), dt))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """torch's: xavier_uniform_ projections, zero biases, xavier_normal_ bias_k/v; the
        out_proj weight keeps Linear's default."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    # ------------------------------------------------------------------ pieces
    def _projections(self, query: Tensor, key: Tensor, value: Tensor) -> tuple:
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None,) * 3 if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return (F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv))

    def _check(self, query, key, value) -> bool:
        """Validate shapes; True when the inputs are batched."""
        for name, t, d in (("query", query, self.embed_dim), ("key", key, self.kdim),
                           ("value", value, self.vdim)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: {name} must be a Tensor, got "
                                f"{type(t).__name__}")
            if t.ndim not in (2, 3) or t.shape[-1] != d:
                layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
                raise ValueError(f"MultiheadAttention(embed_dim={self.embed_dim}): expected "
                                 f"{name} of shape {layout} or (L, E) with E={d}, got "
                                 f"{tuple(t.shape)}")
        if not query.ndim == key.ndim == value.ndim:
            raise ValueError(f"MultiheadAttention: query, key and value must all be batched "
                             f"or all unbatched, got shapes {tuple(query.shape)}, "
                             f"{tuple(key.shape)}, {tuple(value.shape)}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: key {tuple(key.shape)} and value "
                             f"{tuple(value.shape)} must have the same sequence and batch "
                             f"dims")
        return query.ndim == 3

    def _merged_mask(self, attn_mask, key_padding_mask, n: int, L: int, S: int,
                     dtype) -> np.ndarray | None:
        """attn_mask (L, S) or (N*H, L, S) and key_padding_mask (N, S) as one additive
        array broadcastable to (N, H, L, S)."""
        H = self.num_heads
        am = _additive(attn_mask, dtype, "MultiheadAttention attn_mask", True)
        kp = _additive(key_padding_mask, dtype, "MultiheadAttention key_padding_mask", True)
        if am is not None:
            if am.shape == (L, S):
                am = am.reshape(1, 1, L, S)
            elif am.shape == (n * H, L, S):
                am = am.reshape(n, H, L, S)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must have shape ({L}, {S}) or "
                                 f"({n * H}, {L}, {S}) (N * num_heads, L, S), got {am.shape}")
        if kp is not None:
            if kp.shape != (n, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask must have shape "
                                 f"({n}, {S}) (N, S), got {kp.shape}")
            kp = kp.reshape(n, 1, 1, S)
            am = kp if am is None else am + kp
        return am

    # ------------------------------------------------------------------ forward
    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None,
                need_weights: bool = True, attn_mask=None, average_attn_weights: bool = True,
                is_causal: bool = False):
        """(attn_output, attn_weights): output shaped as query; weights (N, L, S) averaged
        over heads (or (N, H, L, S)), None when need_weights=False."""
        batched = self._check(query, key, value)
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: is_causal=True is a hint that attn_mask "
                               "is the causal mask; attn_mask must be given too")
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _additive(key_padding_mask, query.dtype,
                                             "MultiheadAttention key_padding_mask", True)[None]
        bf = self.batch_first and batched
        q, k, v = self._projections(query, key, value)
        if self.bias_k is not None:
            n_ = k.shape[0 if bf else 1]
            shape = (n_, 1, self.embed_dim) if bf else (1, n_, self.embed_dim)
            k = cat([k, self.bias_k.expand(*shape)], 1 if bf else 0)
            v = cat([v, self.bias_v.expand(*shape)], 1 if bf else 0)
            attn_mask = _pad_last(attn_mask, query.dtype, "attn_mask")
            key_padding_mask = _pad_last(key_padding_mask, query.dtype, "key_padding_mask")
        H, D = self.num_heads, self.head_dim
        if bf:  # (N, L, E) -> (N, H, L, D)
            n, L, S = q.shape[0], q.shape[1], k.shape[1]
            heads = [t.reshape(n, t.shape[1], H, D).permute(0, 2, 1, 3) for t in (q, k, v)]
        else:  # (L, N, E) -> (N, H, L, D)
            n, L, S = q.shape[1], q.shape[0], k.shape[0]
            heads = [t.reshape(t.shape[0], n, H, D).permute(1, 2, 0, 3) for t in (q, k, v)]
        qh, kh, vh = heads
        if self.add_zero_attn:
            zeros = from_numpy(np.zeros((n, H, 1, D), dtype=kh.dtype))
            kh, vh = cat([kh, zeros], 2), cat([vh, zeros], 2)
            S += 1
            attn_mask = _pad_last(attn_mask, query.dtype, "attn_mask")
            key_padding_mask = _pad_last(key_padding_mask, query.dtype, "key_padding_mask")
        mask = self._merged_mask(attn_mask, key_padding_mask, n, L, S, query.dtype)
        p = self.dropout if self.training else 0.0
        out, weights = _attend(qh, kh, vh, mask, 1.0 / math.sqrt(D), p, need_weights)
        if bf:
            out = out.permute(0, 2, 1, 3).reshape(n, L, self.embed_dim)
        else:
            out = out.permute(2, 0, 1, 3).reshape(L, n, self.embed_dim)
        out = self.out_proj(out)
        if weights is not None and average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            out = out.squeeze(1)
            weights = None if weights is None else weights.squeeze(0)
        return out, weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


def _pad_last(mask, dtype, what: str):
    """A mask with one more (allowed) key position at the end, as torch pads for bias_k /
    add_zero_attn."""
    if mask is None:
        return None
    arr = _additive(mask, dtype, f"MultiheadAttention {what}", True)
    pad = np.zeros(arr.shape[:-1] + (1,), dtype=arr.dtype)
    return np.concatenate([arr, pad], axis=-1)
