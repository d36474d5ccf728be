"""Keras views of weights: a name, Keras's layout and trainability over a Parameter.

A wrapped nn module stores weights in PyTorch's layout (a Dense kernel as (out, in), a Conv2D
kernel as (out, in, kh, kw)); a `Weight` shows them in Keras's ((in, out), (kh, kw, in, out))
for get_weights/set_weights, saving and regularizers, without copying the Parameter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ...autograd import no_grad
from ...nn.module import Module
from ...tensor import Tensor, as_tensor

if TYPE_CHECKING:
    from .base import Layer

__all__ = ["Weight", "transpose_by"]



class Weight:
    """A Keras view of one weight: its name, Keras-layout shape, value and trainability.

    `value` is the underlying Parameter/buffer (in the nn module's layout); `numpy()` and
    `assign()` convert to and from Keras's layout with the layer's transposes.
    """

    def __init__(self, layer: "Layer", name: str, owner: Module, attr: str,
                 to_keras: Callable | None = None, from_keras: Callable | None = None,
                 trainable: bool = True, regularizer: Any = None,
                 axes: tuple | None = None) -> None:
        self.layer, self.name = layer, name
        self._axes = axes
        self._owner, self._attr = owner, attr
        self._to_keras = to_keras or (lambda a: a)
        self._from_keras = from_keras or (lambda a: a)
        self._created_trainable = trainable
        self.regularizer = regularizer

    @property
    def value(self) -> Tensor:
        return getattr(self._owner, self._attr)

    def params(self) -> list:
        """The underlying tensors (one, except for weights stacked from several)."""
        return [self.value]

    @property
    def path(self) -> str:
        return f"{self.layer.name}/{self.name}"

    @property
    def trainable(self) -> bool:
        return self._created_trainable and self.layer.trainable

    @property
    def shape(self) -> tuple:
        return tuple(self.numpy().shape)

    @property
    def dtype(self) -> str:
        return self.value.dtype.name  # Keras's dtype string, "float32"

    def numpy(self) -> np.ndarray:
        """A copy in Keras's layout."""
        return np.array(self._to_keras(self.value.numpy()), copy=True)

    def keras_tensor(self) -> Tensor:
        """The weight in Keras's layout as a differentiable Tensor (for regularizers)."""
        v = self.value
        if self._axes is not None:
            return v.permute(*(int(i) for i in np.argsort(self._axes)))
        probe = np.asarray(self._to_keras(np.arange(v.numpy().size).reshape(v.shape)))
        if probe.shape == v.shape and np.array_equal(probe.reshape(-1), np.arange(probe.size)):
            return v
        return v.reshape(-1)[as_tensor(probe.reshape(-1))].reshape(probe.shape)

    def assign(self, value: Any) -> None:
        arr = np.asarray(value)
        target = self.value
        converted = self._from_keras(arr)
        if tuple(converted.shape) != tuple(target.shape):
            raise ValueError(
                f"Layer {self.layer.name!r} weight {self.name!r} has shape {self.shape}; the "
                f"provided value has shape {arr.shape}"
            )
        with no_grad():
            target.copy_(converted)

    def __repr__(self) -> str:
        return f"<Weight path={self.path}, shape={self.shape}, dtype={self.dtype}>"


def transpose_by(axes: tuple) -> tuple[Callable, Callable]:
    """(to_keras, from_keras) for a weight stored as keras.transpose(axes)."""
    inverse = tuple(int(i) for i in np.argsort(axes))
    return (lambda a: a.transpose(inverse)), (lambda a: a.transpose(axes))
