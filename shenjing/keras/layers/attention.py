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
    """Multi-head attention as in "Attention is all you need", with Keras's arguments."""

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 dropout: float = 0.0, use_bias: bool = True, output_shape: Any = None,
                 attention_axes: Any = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if attention_axes is not None:
            raise NotImplementedError("MultiHeadAttention: attention_axes is not supported "
                                      "(attention runs over the sequence axis)")
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

    def _heads(self, x: Tensor, size: int) -> Tensor:
        n, t = x.shape[0], x.shape[1]
        return x.reshape(n, t, self.num_heads, size).permute(0, 2, 1, 3)

    def call(self, query: Any, value: Any = None, key: Any = None, attention_mask: Any = None,
             return_attention_scores: bool = False, training: bool = False,
             use_causal_mask: bool = False, query_mask: Any = None, value_mask: Any = None,
             key_mask: Any = None) -> Any:
        q, v, k = _split_qvk("MultiHeadAttention", query, value, key)
        if query_mask is not None or value_mask is not None or key_mask is not None:
            raise NotImplementedError("MultiHeadAttention: query_mask/value_mask/key_mask are "
                                      "not supported; pass attention_mask (batch, T, S)")
        self._ensure_built(q, v, k)
        if q.ndim != 3 or v.ndim != 3 or k.ndim != 3:
            raise ValueError(f"MultiHeadAttention {self.name!r}: query, value and key must be "
                             f"(batch, seq, features), got {tuple(q.shape)}, {tuple(v.shape)}, "
                             f"{tuple(k.shape)}")
        qh = self._heads(self.query_dense(q), self.key_dim)
        kh = self._heads(self.key_dense(k), self.key_dim)
        vh = self._heads(self.value_dense(v), self.value_dim)
        mask = _bool_mask(attention_mask)
        if use_causal_mask:
            causal = as_tensor(np.tril(np.ones((q.shape[1], k.shape[1]), dtype=bool)))
            mask = causal if mask is None else mask.logical_and(causal)
        if mask is not None and mask.ndim == 3:
            mask = mask.unsqueeze(1)
        p = self.dropout if training else 0.0
        if return_attention_scores:
            scores = (qh * (1.0 / math.sqrt(self.key_dim))) @ kh.transpose(-2, -1)
            if mask is not None:
                scores = scores.masked_fill(mask.logical_not(), -1e9)
            weights = F.softmax(scores, dim=-1)
            attended = F.dropout(weights, p) @ vh if p else weights @ vh
        else:
            attended = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, dropout_p=p)
        n, t = attended.shape[0], attended.shape[2]
        merged = attended.permute(0, 2, 1, 3).reshape(n, t, self.num_heads * self.value_dim)
        out = self.attention_output_dense(merged)
        return [out, weights] if return_attention_scores else out

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
            return [out, (q[0], self.num_heads, q[1], k[1])]
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self.output_shape_arg, "seed": self.seed,
                "kernel_initializer": serialize(self.kernel_initializer),
                "bias_initializer": serialize(self.bias_initializer)}
