"""Core layers with torch.nn's names, parameters and default initializations: Linear
(optionally lazy), Flatten/Unflatten, the dropouts, Embedding and the activation modules.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..dtypes import get_default_dtype, resolve_dtype
from ..ops import nn_ops
from ..tensor import Tensor
from . import functional_base as F
from . import init
from .functional_more import embedding_bag
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "Embedding",
           "EmbeddingBag", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax"]


def _dtype(dtype) -> np.dtype:
    dt = resolve_dtype(dtype) or get_default_dtype().dtype
    if dt.kind != "f":
        raise TypeError(f"layers hold floating-point parameters; got dtype {dt}")
    return dt


def _positive_int(value, name: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- Linear


class Linear(Module):
    """y = x @ W.T + b, W of shape (out_features, in_features), over any leading dims.

    `in_features=None` builds the layer on its first call from the input's last dimension
    and float dtype (or from a loaded state_dict). Weights start as torch's:
    kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), and so does the bias.
    """

    def __init__(self, in_features: int | None, out_features: int, bias: bool = True,
                 dtype=None) -> None:
        super().__init__()
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        self._in_features = None
        self._has_bias = bool(bias)
        self._dtype = _dtype(dtype)
        self._lazy = in_features is None
        if self._lazy:
            self.register_parameter("weight", None)
            if bias:
                self.register_parameter("bias", None)
            else:  # not registered: a lazy module's None parameters are loadable keys
                object.__setattr__(self, "bias", None)
            return
        self._in_features = _positive_int(in_features, "in_features", "Linear")
        self._create(self._in_features)

    @property
    def in_features(self) -> int | None:
        if self._in_features is None and self.weight is not None:
            return self.weight.shape[1]  # lazy layer filled by load_state_dict
        return self._in_features

    def _create(self, in_features: int) -> None:
        self.weight = Parameter(np.empty((self.out_features, in_features), self._dtype))
        if self._has_bias:
            self.bias = Parameter(np.empty(self.out_features, self._dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _build(self, x: Tensor) -> None:
        if self.weight is None:
            if not isinstance(x, Tensor) or x.ndim == 0:
                raise ValueError("Linear(in_features=None): cannot infer in_features from "
                                 f"{x!r}; expected a Tensor with at least one dimension")
            if x.dtype.kind == "f":  # a lazy layer adopts its first input's float dtype
                self._dtype = x.dtype
            self._create(_positive_int(x.shape[-1], "in_features", "Linear"))
        self._in_features = self.weight.shape[1]
        self._lazy = False

    def forward(self, x: Tensor) -> Tensor:
        if self._lazy:
            self._build(x)
        n = self._in_features
        if not isinstance(x, Tensor):
            raise TypeError(f"Linear(in_features={n}): expected a Tensor, got "
                            f"{type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != n:
            raise ValueError(f"Linear(in_features={n}): expected input with {n} features in "
                             f"its last dimension, got shape {tuple(x.shape)}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"Linear(in_features={n}): input has dtype {x.dtype} but the "
                            f"weights are {self.weight.dtype}; use x.to({self.weight.dtype}) "
                            f"or model.to({x.dtype})")
        return nn_ops.Linear.apply(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self._has_bias}")


# ----------------------------------------------------------------------------- shapes


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size` (one entry may be -1)."""

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(int(s) for s in unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        sizes = self.unflattened_size
        n = x.shape[self.dim] if -x.ndim <= self.dim < x.ndim else None
        known = int(np.prod([s for s in sizes if s != -1]))
        if n is None or (-1 not in sizes and known != n) or (-1 in sizes and n % known):
            raise ValueError(f"Unflatten(dim={self.dim}, unflattened_size={sizes}): cannot "
                             f"split dimension {self.dim} of an input of shape "
                             f"{tuple(x.shape)} into {sizes}")
        return x.unflatten(self.dim, sizes)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


# ----------------------------------------------------------------------------- dropout


class Dropout(Module):
    """Inverted dropout in training mode (zero with probability p, scale by 1/(1-p)); the
    identity in eval mode. Masks come from shenjing's seeded generator."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = F._check_p(p, type(self).__name__)
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout):
    """Zero whole channels of (N, C, L) inputs."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout1d(x, self.p, self.training)


class Dropout2d(Dropout):
    """Zero whole channels of (N, C, H, W) inputs."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training)


# ----------------------------------------------------------------------------- Embedding


class Embedding(Module):
    """A lookup table of `num_embeddings` vectors of size `embedding_dim`, initialized
    N(0, 1); the `padding_idx` row starts at zero and never receives a gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None,
                 _freeze: bool = False, dtype=None) -> None:
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", "Embedding")
        self.padding_idx = F.padding_index(padding_idx, self.num_embeddings, "Embedding")
        if scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: scale_grad_by_freq and sparse gradients are "
                                      "not supported")
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            self.weight = Parameter(np.empty(shape, _dtype(dtype)), requires_grad=not _freeze)
            self.reset_parameters()
        else:
            w = _weight.numpy() if isinstance(_weight, Tensor) else np.asarray(_weight)
            if w.shape != shape:
                raise ValueError(f"Embedding: _weight has shape {w.shape}, expected {shape}")
            self.weight = Parameter(w, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.numpy()[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0) -> "Embedding":
        """An Embedding holding `embeddings` (a 2-D tensor), frozen unless freeze=False."""
        w = embeddings.numpy() if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if w.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{w.shape}")
        return cls(w.shape[0], w.shape[1], padding_idx, max_norm, norm_type, _weight=w.copy(),
                   _freeze=freeze)

    def forward(self, indices) -> Tensor:
        name = f"Embedding(num_embeddings={self.num_embeddings})"
        idx = F.check_indices(indices, self.num_embeddings, name)
        if self.max_norm is not None:
            F.renorm_rows_(self.weight, idx, self.max_norm, self.norm_type)
        return nn_ops.Embedding.apply(self.weight, indices=idx, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        return s


class EmbeddingBag(Module):
    """Sums, means or maxima over bags of embeddings without materializing the
    per-index rows (torch.nn.EmbeddingBag); weight initialized N(0, 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight=None, include_last_offset: bool = False,
                 padding_idx: int | None = None, dtype=None) -> None:
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", "EmbeddingBag")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", "EmbeddingBag")
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        if scale_grad_by_freq or sparse:
            raise NotImplementedError("EmbeddingBag: scale_grad_by_freq and sparse gradients "
                                      "are not supported")
        self.padding_idx = F.padding_index(padding_idx, self.num_embeddings, "EmbeddingBag")
        self.max_norm, self.norm_type, self.mode = max_norm, norm_type, mode
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.include_last_offset = include_last_offset
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            self.weight = Parameter(np.empty(shape, _dtype(dtype)))
            self.reset_parameters()
        else:
            w = _weight.numpy() if isinstance(_weight, Tensor) else np.asarray(_weight)
            if w.shape != shape:
                raise ValueError(f"EmbeddingBag: _weight has shape {w.shape}, expected {shape}")
            self.weight = Parameter(w)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        mode: str = "mean", sparse: bool = False,
                        include_last_offset: bool = False,
                        padding_idx: int | None = None) -> "EmbeddingBag":
        """An EmbeddingBag holding `embeddings` (2-D), frozen unless freeze=False."""
        w = embeddings.numpy() if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if w.ndim != 2:
            raise ValueError(f"EmbeddingBag.from_pretrained: embeddings must be 2-D, got "
                             f"shape {w.shape}")
        bag = cls(w.shape[0], w.shape[1], max_norm, norm_type, scale_grad_by_freq, mode,
                  sparse, w.copy(), include_last_offset, padding_idx)
        bag.weight.requires_grad = not freeze
        return bag

    def forward(self, input, offsets=None, per_sample_weights=None) -> Tensor:
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                             mode=self.mode, per_sample_weights=per_sample_weights,
                             include_last_offset=self.include_last_offset,
                             padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s


# ----------------------------------------------------------------------------- activations


def _inplace_repr(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


class ReLU(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace
                                                          else "")


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got "
                             f"{approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """Softmax along `dim` (stable: the maximum is subtracted first)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along `dim`, computed stably in one op."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)
