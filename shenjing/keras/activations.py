"""Keras activations (`activation='relu'` etc.), as functions of shenjing Tensors.

The common ones are single ops of the core (relu, sigmoid, tanh, softmax); the rest are
short compositions of core ops, so their gradients come from the autograd for free.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..tensor import Tensor, _wrap
from .registry import Registry, serialize

__all__ = ["relu", "sigmoid", "softmax", "log_softmax", "tanh", "linear", "elu", "selu",
           "softplus", "softsign", "swish", "silu", "gelu", "exponential", "hard_sigmoid",
           "leaky_relu", "relu6", "mish", "get", "serialize", "deserialize"]

REGISTRY = Registry("activation function")
register = REGISTRY.register


@register()
def linear(x: Tensor) -> Tensor:
    """Identity (Keras's default: no activation)."""
    return x


@register()
def relu(x: Tensor, negative_slope: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0) -> Tensor:
    """max(x, 0), with Keras's optional slope below the threshold and cap above max_value."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return x.relu()
    keep = _wrap((x.data > threshold).astype(x.dtype))
    y = x * keep
    if negative_slope != 0.0:
        y = y + negative_slope * (x - threshold) * (1.0 - keep)
    if max_value is not None:
        y = y.clamp(max=float(max_value))
    return y


@register()
def relu6(x: Tensor) -> Tensor:
    return x.clamp(0.0, 6.0)


@register()
def leaky_relu(x: Tensor, negative_slope: float = 0.2) -> Tensor:
    """Keras's default slope is 0.2 (torch's is 0.01)."""
    return x.leaky_relu(negative_slope)


@register()
def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


@register()
def hard_sigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6, as Keras 3."""
    return (x + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)


@register()
def tanh(x: Tensor) -> Tensor:
    return x.tanh()


@register()
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


@register()
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis)


@register()
def exponential(x: Tensor) -> Tensor:
    return x.exp()


@register()
def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)), computed as relu(x) + log1p(exp(-|x|)) so it never overflows."""
    return x.relu() + (-x.abs()).exp().log1p()


@register()
def softsign(x: Tensor) -> Tensor:
    return x / (x.abs() + 1.0)


@register()
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise (no masks: relu + exp of min(x, 0))."""
    return x.relu() + alpha * (x.clamp(max=0.0).exp() - 1.0)


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@register()
def selu(x: Tensor) -> Tensor:
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


@register("swish")
def silu(x: Tensor) -> Tensor:
    return x * x.sigmoid()


swish = silu


@register()
def gelu(x: Tensor, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit; the exact form uses nn.functional.gelu when it has one."""
    if not approximate:
        from ..nn import functional as F

        fn = getattr(F, "gelu", None)
        if fn is not None:
            return fn(x)
    c = math.sqrt(2.0 / math.pi)
    return 0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())


@register()
def mish(x: Tensor) -> Tensor:
    return x * softplus(x).tanh()


def get(identifier: Any) -> Callable:
    """'relu' -> relu; a callable passes through; None -> linear (Keras's rule)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return REGISTRY.lookup(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"activation: expected a name or a callable, got {identifier!r}")


def deserialize(config: Any, custom_objects: dict | None = None) -> Callable:
    if isinstance(config, dict):
        config = config.get("config", config.get("class_name"))
        if isinstance(config, dict):
            config = config.get("name")
    return REGISTRY.lookup(config, custom_objects) if isinstance(config, str) else get(config)


__all__ += ["REGISTRY"]
serialize = serialize
