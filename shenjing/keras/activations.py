"""Keras activations (`activation='relu'` etc.): Keras's names and defaults over the
core's functions (`shenjing.nn.functional`), so each formula exists once in the package.
"""

from __future__ import annotations

from typing import Any, Callable

from ..nn import functional as F
from ..tensor import Tensor
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
    if threshold == 0.0:
        y = F.leaky_relu(x, negative_slope) if negative_slope else F.relu(x)
    else:
        y = x.where(x > threshold, (x - threshold) * float(negative_slope))
    return y if max_value is None else y.clamp(max=float(max_value))


@register()
def relu6(x: Tensor) -> Tensor:
    return F.relu6(x)


@register()
def leaky_relu(x: Tensor, negative_slope: float = 0.2) -> Tensor:
    """Keras's default slope is 0.2 (torch's is 0.01)."""
    return F.leaky_relu(x, negative_slope)


@register()
def sigmoid(x: Tensor) -> Tensor:
    return F.sigmoid(x)


@register()
def hard_sigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6, as Keras 3 (torch's hardsigmoid)."""
    return F.hardsigmoid(x)


@register()
def tanh(x: Tensor) -> Tensor:
    return F.tanh(x)


@register()
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return F.softmax(x, dim=axis)


@register()
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return F.log_softmax(x, dim=axis)


@register()
def exponential(x: Tensor) -> Tensor:
    return x.exp()


@register()
def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)), computed so it never overflows."""
    return F.softplus(x)


@register()
def softsign(x: Tensor) -> Tensor:
    return F.softsign(x)


@register()
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return F.elu(x, alpha)


@register()
def selu(x: Tensor) -> Tensor:
    return F.selu(x)


@register("swish")
def silu(x: Tensor) -> Tensor:
    return F.silu(x)


swish = silu


@register()
def gelu(x: Tensor, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit; `approximate=True` is the tanh approximation."""
    return F.gelu(x, approximate="tanh" if approximate else "none")


@register()
def mish(x: Tensor) -> Tensor:
    return F.mish(x)


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
