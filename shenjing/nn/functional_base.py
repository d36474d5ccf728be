"""Functional forms of the nn layers (torch.nn.functional's names and arguments).

Arguments are checked here, at the user's call, and the work is done by one fused op from
`shenjing.ops` per call. Layers in `shenjing.nn` call these or the same ops directly.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..autograd import no_grad
from ..ops import nn_ops
from ..ops.elementwise import LeakyRelu, Relu, Sigmoid, Tanh
from ..ops.reduce import LogSoftmax, Softmax
from ..random import Generator, get_rng
from ..tensor import Tensor
from ..tensor import one_hot as _one_hot
from ..tensor import pad as _pad
from ..tensor.args import norm_dim as _dim1
from .functional_conv import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    max_pool1d,
    max_pool2d,
)
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)

__all__ = ["linear", "relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh",
           "softmax", "log_softmax", "dropout", "dropout1d", "dropout2d", "embedding",
           "batch_norm", "layer_norm", "pad", "one_hot", "cross_entropy", "nll_loss",
           "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "kl_div", "hinge_loss", "huber_loss", "smooth_l1_loss", "conv1d", "conv2d",
           "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool2d",
           "adaptive_max_pool2d"]


def _tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(x).__name__} "
                        f"(wrap arrays with shenjing.tensor(...))")
    return x


def _float_input(x, op: str) -> Tensor:
    x = _tensor(x, op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype} "
                        f"(call .float() first)")
    return x


# ----------------------------------------------------------------------------- linear


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias over any leading dimensions, as one fused op."""
    x = _float_input(input, "linear")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{tuple(weight.shape)}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(x.shape)} has "
                         f"{x.shape[-1] if x.ndim else 0} features in its last dimension but "
                         f"weight of shape {tuple(weight.shape)} expects {weight.shape[1]}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {tuple(bias.shape)}, expected "
                         f"({weight.shape[0]},) to match weight {tuple(weight.shape)}")
    _same_dtype(x, weight, "linear")
    return nn_ops.Linear.apply(x, weight, bias)


def _same_dtype(x: Tensor, weight: Tensor, op: str) -> None:
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input has dtype {x.dtype} but the weights are {weight.dtype}; "
                        f"convert one of them (x.to({weight.dtype}) or model.to({x.dtype}))")


# ----------------------------------------------------------------------------- activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). `inplace` is accepted for compatibility; the result is a new tensor."""
    return Relu.apply(_float_input(input, "relu"))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return LeakyRelu.apply(_float_input(input, "leaky_relu"),
                           negative_slope=float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return nn_ops.Elu.apply(_float_input(input, "elu"), alpha=float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * Phi(x), or its tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return nn_ops.Gelu.apply(_float_input(input, "gelu"), approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return nn_ops.Silu.apply(_float_input(input, "silu"))


def sigmoid(input: Tensor) -> Tensor:
    return Sigmoid.apply(_float_input(input, "sigmoid"))


def tanh(input: Tensor) -> Tensor:
    return Tanh.apply(_float_input(input, "tanh"))


# Compositions of Tensor ops (their gradients come from the autograd); the Keras
# activations call these, so each formula exists once (softplus, mish, hardtanh and relu6
# are in functional_more.py).
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    x = _float_input(input, "softsign")
    return x / (x.abs() + 1.0)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalizing constants of Klambauer et al."""
    return elu(_float_input(input, "selu"), _SELU_ALPHA) * _SELU_SCALE


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: a piecewise-linear sigmoid."""
    return (_float_input(input, "hardsigmoid") + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)


__all__ += ["softsign", "selu", "hardsigmoid"]


def _softmax_dim(x: Tensor, dim, op: str) -> int:
    if dim is None:  # torch's legacy implicit choice, with its warning
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the "
                      f"call to include dim=X as an argument.", stacklevel=3)
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return _dim1(dim, x.ndim, op)


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    x = _float_input(input, "softmax")
    x = x if dtype is None else x.to(dtype)
    return Softmax.apply(x, dim=_softmax_dim(x, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    x = _float_input(input, "log_softmax")
    x = x if dtype is None else x.to(dtype)
    return LogSoftmax.apply(x, dim=_softmax_dim(x, dim, "log_softmax"))


# ----------------------------------------------------------------------------- dropout


def _check_p(p: float, op: str) -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def _dropout(x: Tensor, p: float, training: bool, mask_shape, generator) -> Tensor:
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return nn_ops.Dropout.apply(x, p=p, rng=get_rng(generator), mask_shape=mask_shape)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator: Generator | None = None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training
    only); the mask comes from shenjing's seeded generator."""
    x = _float_input(input, "dropout")
    return _dropout(x, _check_p(p, "dropout"), training, None, generator)


def _feature_dropout(x: Tensor, p: float, training: bool, op: str, ndim: tuple,
                     generator) -> Tensor:
    x = _float_input(x, op)
    p = _check_p(p, op)
    if x.ndim not in ndim:
        raise ValueError(f"{op}: expected a {' or '.join(f'{n}-D' for n in ndim)} input "
                         f"(N, C, ...), got shape {tuple(x.shape)}")
    mask_shape = x.shape[:2] + (1,) * (x.ndim - 2)
    return _dropout(x, p, training, mask_shape, generator)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator: Generator | None = None) -> Tensor:
    """Zero whole channels of an (N, C, L) input."""
    return _feature_dropout(input, p, training, "dropout1d", (3,), generator)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator: Generator | None = None) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input. As torch: a 3-D input is taken as
    (N, C, L) and other ranks (>= 2) drop along dims 0-1, each with a warning."""
    x = _float_input(input, "dropout2d")
    if x.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is "
                      f"deprecated and will result in an error in a future release. To retain "
                      f"the behavior and silence this warning, please use dropout instead.",
                      stacklevel=2)
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim.", stacklevel=2)
    ranks = (x.ndim,) if x.ndim >= 2 else (2, 3, 4)
    return _feature_dropout(x, p, training, "dropout2d", ranks, generator)


# ----------------------------------------------------------------------------- embedding


def check_indices(indices, num: int, op: str) -> np.ndarray:
    """The index array of `indices`, refusing float indices and indices outside [0, num)."""
    idx = indices.numpy() if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor (int64), got dtype "
                        f"{idx.dtype}; convert with .long()")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= num:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{op}: index {bad} is out of range for a vocabulary of {num} "
                             f"entries (valid indices are 0..{num - 1})")
    return idx


def padding_index(padding_idx: int | None, num: int, op: str) -> int | None:
    """padding_idx normalized to [0, num) (negative counts from the end), or None."""
    if padding_idx is None:
        return None
    if not -num <= padding_idx < num:
        raise ValueError(f"{op}: padding_idx {padding_idx} must be within the vocabulary of "
                         f"{num} entries ({-num}..{num - 1})")
    return int(padding_idx) % num


def embedding(input, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` at the integer `input` indices, shape input.shape + (dim,)."""
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are "
                                  "not supported")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), "
                         f"got shape {tuple(weight.shape)}")
    num = weight.shape[0]
    idx = check_indices(input, num, "embedding")
    pad = padding_index(padding_idx, num, "embedding")
    if max_norm is not None:
        renorm_rows_(weight, idx, max_norm, norm_type)
    return nn_ops.Embedding.apply(weight, indices=idx, padding_idx=pad)


@no_grad()
def renorm_rows_(weight: Tensor, idx: np.ndarray, max_norm: float, norm_type: float) -> None:
    """Scale the referenced rows whose norm exceeds max_norm down to max_norm, in place."""
    rows = np.unique(idx)
    w = weight.numpy()[rows]
    norms = np.linalg.norm(w, ord=norm_type, axis=1)
    big = norms > max_norm
    if big.any():
        scale = (max_norm / (norms[big] + 1e-7)).astype(weight.dtype)
        weight.numpy()[rows[big]] = w[big] * scale[:, None]


# ----------------------------------------------------------------------------- norms


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (axis 1) of an (N, C, *) input, as torch's batch_norm.

    In training the batch statistics are used and the running buffers (if given) updated
    in place; otherwise the running statistics are used.
    """
    x = _float_input(input, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, *), got "
                         f"{tuple(x.shape)}")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(t.shape)} but the input "
                             f"{tuple(x.shape)} has {c} channels")
    if training and x.numpy().size // c <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input of shape {tuple(x.shape)}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var are needed when not "
                         "training")
    rm = None if running_mean is None else running_mean.numpy()
    rv = None if running_var is None else running_var.numpy()
    return nn_ops.BatchNorm.apply(x, weight, bias, running_mean=rm, running_var=rv,
                                  training=bool(training), momentum=float(momentum),
                                  eps=float(eps))


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int],
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing dimensions given by normalized_shape."""
    x = _float_input(input, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(int(n) for n in normalized_shape)
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the last "
                         f"{k} dimension(s) of the input of shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(t.shape)}, expected "
                             f"{shape}")
    return nn_ops.LayerNorm.apply(x, weight, bias, k=k, eps=float(eps))


# ----------------------------------------------------------------------------- misc


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad with `mode` 'constant' (value), 'reflect', 'replicate' or 'circular'; `pad`
    lists (left, right) pairs starting from the last dim."""
    if mode in ("reflect", "replicate", "circular"):
        from .functional_more import pad_by_index

        return pad_by_index(_tensor(input, "pad"), pad, mode)
    return _pad(_tensor(input, "pad"), pad, mode=mode, value=0.0 if value is None else value)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot vectors along a new last dimension."""
    return _one_hot(tensor, num_classes)
