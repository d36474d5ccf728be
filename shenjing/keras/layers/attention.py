"""Keras Attention (Luong dot-product) and MultiHeadAttention over shenjing.nn.

MultiHeadAttention holds four nn.Linear projections and attends with
nn.functional.scaled_dot_product_attention; its weights are shown in Keras's einsum layouts:
query/key/value kernels (dim, heads, head_dim) with biases (heads, head_dim), the output
kernel (heads, value_dim, out_dim). Both take [query, value(, key)] as a list or as
several positional tensors, as Keras's call(query, value, key) does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import nn, no_grad
from ...nn import functional as F
from ...tensor import Tensor, as_tensor
from .. import initializers
from ..registry import serialize
from .base import KerasTensor, Layer
from .weights import Weight

__all__ = ["Attention", "MultiHeadAttention"]


def _split_qvk(layer: str, query: Any, value: Any, key: Any) -> tuple:
    if isinstance(query, (list, tuple)):
        parts = list(query)
        if not 2 <= len(parts) <= 3:
            raise ValueError(f"{layer}: expected [query, value] or [query, value, key], got "
                             f"{len(parts)} tensors")
        query, value = parts[0], parts[1]
        key = parts[2] if len(parts) == 3 else key
    if value is None:
        raise ValueError(f"{layer}: the value tensor is required (call(query, value))")
    return query, value, value if key is None else key


def _bool_mask(mask: Any) -> Tensor | None:
    if mask is None:
        return None
    m = mask.numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    return as_tensor(m.astype(bool))


class Attention(Layer):
    """Dot-product attention: softmax(q k^T [* scale]) v over [query, value(, key)]."""

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if score_mode != "dot":
            raise NotImplementedError(f"Attention: score_mode={score_mode!r} is not supported "
                                      f"(only 'dot')")
        self.use_scale, self.score_mode = bool(use_scale), score_mode
        self.dropout, self.seed = float(dropout), seed
        if self.use_scale:
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        self.built = True

    def call(self, inputs: Any, mask: Any = None, training: bool = False,
             return_attention_scores: bool = False, use_causal_mask: bool = False) -> Any:
        q, v, k = _split_qvk("Attention", inputs, None, None)
        scores = q @ k.transpose(-2, -1)
        if self.use_scale:
            scores = scores * self.scale
        if use_causal_mask:
            t, s = scores.shape[-2], scores.shape[-1]
            causal = np.tril(np.ones((t, s), dtype=bool))
            scores = scores.masked_fill(as_tensor(~causal), -1e9)
        weights = F.softmax(scores, dim=-1)
        if training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout)
        out = weights @ v
        return [out, weights] if return_attention_scores else out

    def compute_output_shape(self, input_shape: Any) -> Any:
        q, v = input_shape[0], input_shape[1]
        return tuple(q[:-1]) + (v[-1],)

    def get_config(self) -> dict:
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


def _einsum_view(in_dim: int, heads: int, size: int, output: bool = False) -> tuple:
    """(to_keras, from_keras) between an nn.Linear weight and Keras's per-head kernel."""
    if output:  # Linear(heads*size, out).weight (out, heads*size) <-> (heads, size, out)
        return (lambda a: a.T.reshape(heads, size, -1),
                lambda k: k.reshape(heads * size, -1).T)
    return (lambda a: a.T.reshape(in_dim, heads, size),
            lambda k: k.reshape(in_dim, heads * size).T)


class MultiHeadAttention(Layer):
    """Multi-head attention as in "Attention is all you need", with Keras's arguments.

    `attention_axes` (default: every axis between the batch and the features) are the axes
    attended over jointly, e.g. (1, 2) for 2-D attention over the rows and columns of a
    (batch, rows, cols, features) input; the other inner axes act as batch axes. Query and
    key/value must agree on those other axes. Attention scores come back as
    (batch, other axes..., heads, query attention axes..., key attention axes...), and an
    attention_mask of shape (batch, other axes..., query axes..., key axes...) (or one that
    broadcasts to it) is given heads as Keras does. query_mask (batch, T), value_mask and
    key_mask (batch, S) are and-ed into it (rank-3 inputs).
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 dropout: float = 0.0, use_bias: bool = True, output_shape: Any = None,
                 attention_axes: Any = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        elif attention_axes is not None:
            attention_axes = tuple(int(a) for a in attention_axes)
            if not attention_axes:
                raise ValueError("MultiHeadAttention: attention_axes must not be empty")
        self.attention_axes = attention_axes
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout, self.use_bias, self.seed = float(dropout), bool(use_bias), seed
        if output_shape is not None and not isinstance(output_shape, (int, np.integer)):
            output_shape = tuple(output_shape)
            if len(output_shape) != 1:
                raise NotImplementedError("MultiHeadAttention: output_shape must be one int")
            output_shape = output_shape[0]
        self.output_shape_arg = None if output_shape is None else int(output_shape)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build_from_dims(self, q_dim: int, v_dim: int, k_dim: int) -> None:
        """Create the projections for query/value/key feature sizes (Keras's build)."""
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        out_dim = self.output_shape_arg or q_dim
        specs = [("query", q_dim, kd, False), ("key", k_dim, kd, False),
                 ("value", v_dim, vd, False), ("attention_output", h * vd, out_dim, True)]
        for name, n_in, size, is_out in specs:
            lin = nn.Linear(n_in, out_dim if is_out else h * size, bias=self.use_bias)
            setattr(self, f"{name}_dense", lin)
            k_shape = (h, vd, out_dim) if is_out else (n_in, h, size)
            to_k, from_k = _einsum_view(n_in, h, size if not is_out else vd, is_out)
            arr = np.asarray(self.kernel_initializer(k_shape), np.float32)
            with no_grad():
                lin.weight.copy_(np.ascontiguousarray(from_k(arr)))
            self._weight_list.append(Weight(self, f"{name}/kernel", lin, "weight", to_k, from_k))
            if self.use_bias:
                b_shape = (out_dim,) if is_out else (h, size)
                with no_grad():
                    lin.bias.copy_(np.asarray(self.bias_initializer(b_shape),
                                              np.float32).reshape(-1))
                self._weight_list.append(Weight(
                    self, f"{name}/bias", lin, "bias",
                    (lambda a, s=b_shape: a.reshape(s)), (lambda k: k.reshape(-1))))
        self.built = True

    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) and input_shape and \
                isinstance(input_shape[0], (tuple, list)):
            q = input_shape[0]
            v = input_shape[1] if len(input_shape) > 1 else q
            k = input_shape[2] if len(input_shape) > 2 else v
            self.build_from_dims(int(q[-1]), int(v[-1]), int(k[-1]))
        # a query shape alone: wait for the value's shape (given at the call)

    def _ensure_built(self, q: Any, v: Any, k: Any) -> None:
        if not hasattr(self, "query_dense"):
            self.build_from_dims(int(q.shape[-1]), int(v.shape[-1]), int(k.shape[-1]))

    def _axes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(attended axes, other inner axes) of a rank-`rank` query, as Keras resolves them
        (negative axes count from the end of the input)."""
        if self.attention_axes is None:
            attended = tuple(range(1, rank - 1))
        else:
            attended = tuple(sorted({a + rank if a < 0 else a for a in self.attention_axes}))
            if any(not 1 <= a <= rank - 2 for a in attended):
                raise ValueError(f"MultiHeadAttention {self.name!r}: attention_axes "
                                 f"{self.attention_axes} must lie between the batch and the "
                                 f"feature axis of rank-{rank} inputs (1..{rank - 2})")
        return attended, tuple(a for a in range(1, rank - 1) if a not in attended)

    def _heads(self, x: Tensor, size: int, attended: tuple, others: tuple) -> tuple:
        """Project-split `x` (batch, d..., heads*size) into (batch*others, heads, attended
        positions, size); also return the permuted (unflattened) shape."""
        k = x.ndim - 2
        x = x.reshape(tuple(x.shape[:-1]) + (self.num_heads, size))
        perm = (0,) + others + (k + 1,) + attended + (k + 2,)
        x = x.permute(*perm)
        shape = tuple(x.shape)
        lead = int(np.prod(shape[:len(others) + 1]))
        span = int(np.prod(shape[len(others) + 2:-1]))
        return x.reshape(lead, self.num_heads, span, size), shape, perm

    def _mask(self, attention_mask: Any, use_causal_mask: bool, q: Tensor, k: Tensor,
              score_shape: tuple, n_attended: int) -> Tensor | None:
        """The boolean mask broadcast to the scores' shape, then flattened as they are."""
        mask = None
        if attention_mask is not None:
            m = attention_mask.numpy() if isinstance(attention_mask, Tensor) else \
                np.asarray(attention_mask)
            m = m.astype(bool)
            while m.ndim < len(score_shape):  # Keras's expansion: a heads axis, and more
                m = np.expand_dims(m, -2 * n_attended - 1)
            try:
                mask = np.broadcast_to(m, score_shape)
            except ValueError:
                raise ValueError(f"MultiHeadAttention {self.name!r}: attention_mask of shape "
                                 f"{np.shape(attention_mask)} does not broadcast to the "
                                 f"scores' shape {score_shape}") from None
        if use_causal_mask:
            if q.ndim != 3:
                raise NotImplementedError("MultiHeadAttention: use_causal_mask needs "
                                          "(batch, seq, features) inputs")
            causal = np.tril(np.ones((q.shape[1], k.shape[1]), dtype=bool))
            mask = causal if mask is None else mask & causal
            mask = np.broadcast_to(mask, score_shape)
        if mask is None:
            return None
        lead = int(np.prod(score_shape[:-2 * n_attended - 1]))
        t = int(np.prod(score_shape[-2 * n_attended:-n_attended]))
        return as_tensor(np.ascontiguousarray(mask).reshape(lead, self.num_heads, t, -1))

    def _padding_masks(self, q: Tensor, attention_mask: Any, query_mask: Any,
                       value_mask: Any, key_mask: Any) -> Any:
        """Fold Keras's per-position masks, (batch, T) for the query and (batch, S) for the
        value and key, into the (batch, T, S) attention mask (a logical and)."""
        if query_mask is None and value_mask is None and key_mask is None:
            return attention_mask
        if q.ndim != 3:
            raise NotImplementedError("MultiHeadAttention: query_mask/value_mask/key_mask "
                                      "need (batch, seq, features) inputs")
        parts = [] if attention_mask is None else [_bool_mask(attention_mask).numpy()]
        for m, axis in ((query_mask, -1), (value_mask, -2), (key_mask, -2)):
            if m is not None:
                parts.append(np.expand_dims(_bool_mask(m).numpy(), axis))
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part
        return combined

    def call(self, query: Any, value: Any = None, key: Any = None, attention_mask: Any = None,
             return_attention_scores: bool = False, training: bool = False,
             use_causal_mask: bool = False, query_mask: Any = None, value_mask: Any = None,
             key_mask: Any = None) -> Any:
        q, v, k = _split_qvk("MultiHeadAttention", query, value, key)
        self._ensure_built(q, v, k)
        attention_mask = self._padding_masks(q, attention_mask, query_mask, value_mask,
                                             key_mask)
        if q.ndim < 3 or not q.ndim == v.ndim == k.ndim:
            raise ValueError(f"MultiHeadAttention {self.name!r}: query, value and key must "
                             f"have the same rank >= 3 (batch, ..., features), got "
                             f"{tuple(q.shape)}, {tuple(v.shape)}, {tuple(k.shape)}")
        attended, others = self._axes(q.ndim)
        for name, t in (("value", v), ("key", k)):
            if any(t.shape[a] != q.shape[a] for a in (0,) + others):
                raise ValueError(f"MultiHeadAttention {self.name!r}: the {name} shape "
                                 f"{tuple(t.shape)} must match the query's "
                                 f"{tuple(q.shape)} on the batch and non-attention axes "
                                 f"{others}")
        qh, q_shape, perm = self._heads(self.query_dense(q), self.key_dim, attended, others)
        kh, k_shape, _ = self._heads(self.key_dense(k), self.key_dim, attended, others)
        vh, _, _ = self._heads(self.value_dense(v), self.value_dim, attended, others)
        n_att = len(attended)
        score_shape = q_shape[:-1] + k_shape[-1 - n_att:-1]
        mask = self._mask(attention_mask, use_causal_mask, q, k, score_shape, n_att)
        p = self.dropout if training else 0.0
        if return_attention_scores:
            scores = (qh * (1.0 / math.sqrt(self.key_dim))) @ kh.transpose(-2, -1)
            if mask is not None:
                scores = scores.masked_fill(mask.logical_not(), -1e9)
            weights = F.softmax(scores, dim=-1)
            attended_values = F.dropout(weights, p) @ vh if p else weights @ vh
        else:
            attended_values = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask,
                                                             dropout_p=p)
        merged = attended_values.reshape(q_shape[:-1] + (self.value_dim,))
        merged = merged.permute(*np.argsort(perm).tolist())
        merged = merged.reshape(tuple(merged.shape[:-2]) + (self.num_heads * self.value_dim,))
        out = self.attention_output_dense(merged)
        if return_attention_scores:
            return [out, weights.reshape(score_shape)]
        return out

    def _output_shape_for(self, shapes: Any, kwargs: dict) -> Any:
        if isinstance(shapes, list) and shapes and isinstance(shapes[0], (tuple, list)):
            q, v = shapes[0], shapes[1]
            k = shapes[2] if len(shapes) > 2 else v
        else:
            q = shapes
            v = kwargs["value"].shape if isinstance(kwargs.get("value"), KerasTensor) else q
            k = kwargs["key"].shape if isinstance(kwargs.get("key"), KerasTensor) else v
        if not hasattr(self, "query_dense"):
            self.build_from_dims(int(q[-1]), int(v[-1]), int(k[-1]))
        out = tuple(q[:-1]) + (self.output_shape_arg or q[-1],)
        if kwargs.get("return_attention_scores"):
            attended, others = self._axes(len(q))
            scores = ((q[0],) + tuple(q[a] for a in others) + (self.num_heads,)
                      + tuple(q[a] for a in attended) + tuple(k[a] for a in attended))
            return [out, scores]
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self.output_shape_arg, "seed": self.seed,
                "attention_axes": (list(self.attention_axes)
                                   if self.attention_axes is not None else None),
                "kernel_initializer": serialize(self.kernel_initializer),
                "bias_initializer": serialize(self.bias_initializer)}
