"""Core Keras layers: Dense, Activation, Flatten, Reshape, Permute, Dropout, Embedding, ..."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ... import nn
from ...tensor import Tensor, as_tensor
from .. import activations, initializers, regularizers
from ..registry import serialize
from .base import Layer

__all__ = ["Dense", "Activation", "Flatten", "Reshape", "Permute", "Dropout", "Embedding",
           "Rescaling", "Lambda", "Masking", "check_constraint"]


def check_constraint(layer: str, **constraints: Any) -> None:
    for k, v in constraints.items():
        if v is not None:
            raise NotImplementedError(f"{layer}: {k} is not supported (weight constraints are "
                                      f"not implemented)")


def activation_config(fn: Callable) -> Any:
    return serialize(fn)


class Dense(Layer):
    """Densely connected layer: activation(x @ kernel + bias), kernel (in, units).

    Wraps an `nn.Linear` built when the input size is known; the kernel starts from Keras's
    `glorot_uniform` and the bias from zeros (not torch's defaults).
    """

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        check_constraint("Dense", kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def build(self, input_shape: tuple) -> None:
        n_in = input_shape[-1]
        if n_in is None:
            raise ValueError(f"Dense {self.name!r}: the last dimension of the inputs must be "
                             f"defined, got input shape {input_shape}")
        self.linear = nn.Linear(int(n_in), self.units, bias=self.use_bias)
        self._init_weight(self.linear, "weight", self.kernel_initializer, (n_in, self.units),
                          (1, 0))
        self._track("kernel", self.linear, "weight", (1, 0), regularizer=self.kernel_regularizer)
        if self.use_bias:
            self._init_weight(self.linear, "bias", self.bias_initializer, (self.units,))
            self._track("bias", self.linear, "bias", regularizer=self.bias_regularizer)
        self.built = True

    @property
    def kernel(self):
        return self._weight_list[0]

    @property
    def bias(self):
        return self._weight_list[1] if self.use_bias else None

    def _pre_activation(self, x: Tensor) -> Tensor:
        n_in = self.linear.in_features
        if x.ndim == 0 or x.shape[-1] != n_in:
            raise ValueError(f"Input of layer {self.name!r} (Dense) is incompatible: expected "
                             f"last dimension {n_in}, got shape {tuple(x.shape)}")
        return self.linear(x)

    def call(self, inputs: Tensor) -> Tensor:
        return self.activation(self._pre_activation(inputs))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "activation": activation_config(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": serialize(self.kernel_initializer),
                "bias_initializer": serialize(self.bias_initializer),
                "kernel_regularizer": serialize(self.kernel_regularizer),
                "bias_regularizer": serialize(self.bias_regularizer)}


_AXIS_ACTIVATIONS = (activations.softmax, activations.log_softmax)


class Activation(Layer):
    """Applies an activation function (elementwise ones run in either channel layout)."""

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.built = True

    def _cf_mode(self, ndim: int) -> str:
        if ndim < 3:
            return "agnostic"
        return "no" if self.activation in _AXIS_ACTIVATIONS else "agnostic"

    def _pre_activation(self, x: Tensor) -> Tensor:
        return x

    def call(self, inputs: Tensor) -> Tensor:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": activation_config(self.activation)}


def _known_prod(dims: tuple) -> int | None:
    return None if any(d is None for d in dims) else int(math.prod(dims))


class Flatten(Layer):
    """Flattens each sample to one dimension, in channels-last order as Keras does."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format or "channels_last"
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.ndim < 2:
            raise ValueError(f"Flatten {self.name!r}: expected an input with a batch "
                             f"dimension, got shape {tuple(inputs.shape)}")
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = inputs.permute(0, *range(2, inputs.ndim), 1)
        return inputs.reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], _known_prod(tuple(input_shape[1:])))

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (one entry may be -1)."""

    def __init__(self, target_shape: tuple, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)
        if sum(s == -1 for s in self.target_shape) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got {self.target_shape}")
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        n = inputs.shape[0]
        size = int(np.prod(inputs.shape[1:]))
        known = int(np.prod([s for s in self.target_shape if s != -1]))
        if (-1 in self.target_shape and size % known) or (-1 not in self.target_shape
                                                          and known != size):
            raise ValueError(f"Reshape {self.name!r}: cannot reshape samples of shape "
                             f"{tuple(inputs.shape[1:])} ({size} values) into "
                             f"{self.target_shape}")
        return inputs.reshape((n,) + self.target_shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        size = _known_prod(tuple(input_shape[1:]))
        shape = list(self.target_shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            shape[shape.index(-1)] = None if size is None else size // known
        return (input_shape[0],) + tuple(shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permutes the non-batch dimensions: Permute((2, 1)) swaps the first two."""

    def __init__(self, dims: tuple, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(self.dims)}, got "
                             f"{self.dims}")
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        return inputs.permute(0, *self.dims)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self) -> dict:
        return {**super().get_config(), "dims": list(self.dims)}


class Dropout(Layer):
    """Randomly zeroes a `rate` fraction of inputs in training (scaling the rest by 1/(1-rate))."""

    _cf_default = "agnostic"

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= float(rate) <= 1:
            raise ValueError(f"Dropout: rate must be in [0, 1], got {rate!r}")
        if noise_shape is not None:
            raise NotImplementedError("Dropout: noise_shape is not supported")
        self.rate = float(rate)
        self.seed = seed
        self.dropout = nn.Dropout(self.rate)
        self.built = True

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        self.dropout.training = True
        return self.dropout(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Embedding(Layer):
    """Maps integer ids (N, T) to vectors (N, T, output_dim); wraps nn.Embedding.

    The table starts from Keras's 'uniform' initializer (U(-0.05, 0.05)).
    """

    _int_input = True

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 embeddings_regularizer: Any = None, embeddings_constraint: Any = None,
                 mask_zero: bool = False, input_length: int | None = None, **kwargs: Any) -> None:
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        check_constraint("Embedding", embeddings_constraint=embeddings_constraint)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = mask_zero
        self.embedding = nn.Embedding(self.input_dim, self.output_dim)
        self._init_weight(self.embedding, "weight", self.embeddings_initializer,
                          (self.input_dim, self.output_dim))
        self._track("embeddings", self.embedding, "weight",
                    regularizer=self.embeddings_regularizer)
        self.built = True

    @property
    def _makes_mask(self) -> bool:  # type: ignore[override]
        return bool(self.mask_zero)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """With mask_zero, id 0 is padding: the mask is True where ids are not 0."""
        if not self.mask_zero:
            return mask
        return np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs) != 0

    def call(self, inputs: Tensor) -> Tensor:
        ids = inputs.numpy()
        if ids.dtype.kind == "f":
            ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(f"Embedding {self.name!r}: ids must be in [0, {self.input_dim}) "
                             f"(input_dim={self.input_dim}), got values in "
                             f"[{ids.min()}, {ids.max()}]")
        return self.embedding(ids)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self) -> dict:
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": serialize(self.embeddings_initializer),
                "embeddings_regularizer": serialize(self.embeddings_regularizer),
                "mask_zero": self.mask_zero}


class Masking(Layer):
    """Masks the steps of (batch, steps, features) whose features all equal `mask_value`:
    they are zeroed and skipped by the recurrent layers downstream."""

    _makes_mask = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)
        self.built = True

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        arr = inputs.numpy() if isinstance(inputs, Tensor) else np.asarray(inputs)
        return (arr != self.mask_value).any(-1)

    def call(self, inputs: Tensor) -> Tensor:
        keep = self.compute_mask(inputs)[..., None].astype(np.float32)
        return inputs * as_tensor(keep)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "mask_value": self.mask_value}


class Rescaling(Layer):
    """x * scale + offset (e.g. Rescaling(1/255) for images)."""

    _cf_default = "agnostic"

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        out = inputs * self.scale
        return out + self.offset if self.offset else out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Lambda(Layer):
    """Wraps a function of Tensors as a layer. It cannot be saved (code is never pickled)."""

    def __init__(self, function: Callable, output_shape: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.function = function
        self._output_shape = output_shape
        self.built = True

    def call(self, inputs: Any) -> Any:
        return self.function(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._output_shape is not None:
            shape = self._output_shape(input_shape) if callable(self._output_shape) else \
                (input_shape[0],) + tuple(self._output_shape)
            return tuple(shape)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict:
        raise ValueError(f"Lambda layer {self.name!r} cannot be saved: its function would have "
                         f"to be pickled, which shenjing never does. Write a custom Layer "
                         f"subclass registered with keras.saving.register_keras_serializable().")
