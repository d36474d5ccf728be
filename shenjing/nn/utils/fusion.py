"""Folding an eval-mode BatchNorm into the convolution or linear layer before it.

In eval mode a BatchNorm is an affine map with fixed statistics, so `bn(conv(x))` equals one
convolution with weight `w * g / sqrt(var + eps)` (per output channel) and bias
`(b - mean) * g / sqrt(var + eps) + beta`: inference then skips a whole pass over the
activations. Names follow torch.nn.utils.fusion; `fold_batchnorm` applies it to a model.
"""

from __future__ import annotations

import copy

import numpy as np

from ...autograd import no_grad
from ..conv import _ConvNd
from ..layers import Linear
from ..module import Identity, Module, Parameter, Sequential
from ..norm import _BatchNorm

__all__ = ["fuse_conv_bn_weights", "fuse_conv_bn_eval", "fuse_linear_bn_eval",
           "fold_batchnorm"]


def fuse_conv_bn_weights(weight: np.ndarray, bias: np.ndarray | None, mean: np.ndarray,
                         var: np.ndarray, eps: float, gamma: np.ndarray | None,
                         beta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of the layer that computes bn(layer(x)); axis 0 of `weight` is the
    output channel. Arithmetic in float64, results in the weight's dtype."""
    scale = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale if bias is None else (bias - mean) * scale
    if beta is not None:
        shift = shift + beta
    w = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return w.astype(weight.dtype), shift.astype(weight.dtype)


def _fused(layer: Module, bn: _BatchNorm) -> Module:
    if layer.training or bn.training:
        raise ValueError("fuse: both modules must be in eval mode (call .eval() first): "
                         "a training-mode BatchNorm uses batch statistics")
    if bn.running_mean is None:
        raise ValueError("fuse: the BatchNorm has no running statistics "
                         "(track_running_stats=False), so it cannot be folded")
    out_channels = layer.weight.shape[0]
    if bn.num_features != out_channels:
        raise ValueError(f"fuse: {type(layer).__name__} has {out_channels} output channels but "
                         f"the BatchNorm normalizes {bn.num_features}")
    fused = copy.deepcopy(layer)
    w, b = fuse_conv_bn_weights(
        layer.weight.numpy(), None if layer.bias is None else layer.bias.numpy(),
        bn.running_mean.numpy(), bn.running_var.numpy(), bn.eps,
        None if bn.weight is None else bn.weight.numpy(),
        None if bn.bias is None else bn.bias.numpy())
    with no_grad():
        fused.weight.copy_(w)
        fused.bias = Parameter(b, requires_grad=layer.weight.requires_grad)
    return fused


def fuse_conv_bn_eval(conv: _ConvNd, bn: _BatchNorm) -> _ConvNd:
    """A new convolution equal to `bn(conv(x))` in eval mode (torch's name)."""
    return _fused(conv, bn)


def fuse_linear_bn_eval(linear: Linear, bn: _BatchNorm) -> Linear:
    """A new Linear equal to `bn(linear(x))` in eval mode (torch's name)."""
    return _fused(linear, bn)


def fold_batchnorm(model: Module) -> Module:
    """`model` for inference, in eval mode: when a BatchNorm directly follows a convolution
    or Linear inside a Sequential, an eval-mode copy with each such BatchNorm folded into the
    layer before it (and replaced by Identity); otherwise `model` itself, switched to eval.
    The original's layers are never changed."""
    model.eval()
    if not _pairs(model):
        return model
    folded = copy.deepcopy(model)
    for seq, first, second in _pairs(folded):
        seq._modules[first] = _fused(seq._modules[first], seq._modules[second])
        seq._modules[second] = Identity()
    return folded


def _pairs(model: Module) -> list[tuple[Sequential, str, str]]:
    """(Sequential, layer name, BatchNorm name) for each foldable pair in `model`."""
    found = []
    for seq in model.modules():
        if not isinstance(seq, Sequential):
            continue
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            a, b = seq._modules[first], seq._modules[second]
            if isinstance(a, (_ConvNd, Linear)) and isinstance(b, _BatchNorm) and (
                    b.running_mean is not None and b.num_features == a.weight.shape[0]):
                found.append((seq, first, second))
    return found
