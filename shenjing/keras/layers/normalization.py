"""BatchNormalization and LayerNormalization with Keras's arguments over nn's norm layers.

Keras's BatchNormalization differs from torch's BatchNorm in three numbers, all mapped here:
momentum is the weight of the *old* moving average (torch's momentum = 1 - Keras's),
epsilon defaults to 1e-3, and the moving variance is updated with the *biased* batch variance
(torch uses the unbiased one; the O(C) correction after each training step makes the moving
statistics Keras's exactly). A BatchNormalization with trainable=False runs in inference
mode, as in Keras (the usual fine-tuning behaviour).
"""

from __future__ import annotations

from typing import Any

from ... import nn, no_grad
from ...tensor import Tensor
from .. import initializers, regularizers
from ..registry import serialize
from .base import Layer, to_cf, to_cl
from .core import check_constraint

__all__ = ["BatchNormalization", "LayerNormalization"]


def _axis(axis: Any, ndim: int, layer: str) -> int:
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise NotImplementedError(f"{layer}: normalizing over several axes {axis} is not "
                                      f"supported")
        axis = axis[0]
    a = int(axis) % ndim
    if a == 0:
        raise ValueError(f"{layer}: cannot normalize over the batch axis")
    return a


class BatchNormalization(Layer):
    """Normalize each feature (the `axis`, default last) with batch statistics in training
    and moving statistics in inference."""

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, synchronized: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_constraint("BatchNormalization", beta_constraint=beta_constraint,
                         gamma_constraint=gamma_constraint)
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self._ndim = None
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def build(self, input_shape: tuple) -> None:
        ndim = len(input_shape)
        if ndim not in (2, 3, 4):
            raise NotImplementedError(f"BatchNormalization: inputs of rank {ndim} are not "
                                      f"supported (2, 3 or 4)")
        self._ndim = ndim
        self._axis_index = _axis(self.axis, ndim, "BatchNormalization")
        if self._axis_index not in (1, ndim - 1):
            raise NotImplementedError(f"BatchNormalization: axis={self.axis} on rank-{ndim} "
                                      f"inputs is not supported (use the first or last axis)")
        c = input_shape[self._axis_index]
        if c is None:
            raise ValueError(f"BatchNormalization {self.name!r}: axis {self.axis} of the "
                             f"inputs must be defined, got shape {input_shape}")
        cls = nn.BatchNorm2d if ndim == 4 else nn.BatchNorm1d
        self.bn = cls(int(c), eps=self.epsilon, momentum=1.0 - self.momentum)
        if self.scale:
            self._init_weight(self.bn, "weight", self.gamma_initializer, (c,))
            self._track("gamma", self.bn, "weight", regularizer=self.gamma_regularizer)
        else:
            self.bn.register_parameter("weight", None)
        if self.center:
            self._init_weight(self.bn, "bias", self.beta_initializer, (c,))
            self._track("beta", self.bn, "bias", regularizer=self.beta_regularizer)
        else:
            self.bn.register_parameter("bias", None)
        self._init_weight(self.bn, "running_mean", self.moving_mean_initializer, (c,))
        self._init_weight(self.bn, "running_var", self.moving_variance_initializer, (c,))
        self._track("moving_mean", self.bn, "running_mean", trainable=False)
        self._track("moving_variance", self.bn, "running_var", trainable=False)
        self.built = True

    def _cf_mode(self, ndim: int) -> str:
        last = getattr(self, "_axis_index", None) in (None, ndim - 1)
        return "prefer" if ndim >= 3 and last else ("no" if ndim >= 3 else "agnostic")

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        training = bool(training) and self.trainable
        self.bn.training = training
        if not training:
            return self.bn(x)
        moving_var = self.bn.running_var
        old = moving_var.numpy().copy()
        out = self.bn(x)
        n = x.numel() // x.shape[1]
        if n > 1:  # torch updated with the unbiased variance; Keras uses the biased one
            with no_grad():
                moving_var.mul_(1.0 - 1.0 / n)
                moving_var.add_(old * (self.momentum / n))
        return out

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if inputs.ndim != self._ndim:
            raise ValueError(f"Input of layer {self.name!r} (BatchNormalization) must have "
                             f"rank {self._ndim}, got shape {tuple(inputs.shape)}")
        if self._axis_index == 1 or inputs.ndim == 2:
            return self._call_cf(inputs, training)
        return to_cl(self._call_cf(to_cf(inputs), training))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": serialize(self.beta_initializer),
                "gamma_initializer": serialize(self.gamma_initializer),
                "moving_mean_initializer": serialize(self.moving_mean_initializer),
                "moving_variance_initializer": serialize(self.moving_variance_initializer),
                "beta_regularizer": serialize(self.beta_regularizer),
                "gamma_regularizer": serialize(self.gamma_regularizer)}


class LayerNormalization(Layer):
    """Normalize each sample over its last axis, then scale (gamma) and shift (beta)."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, rms_scaling: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_constraint("LayerNormalization", beta_constraint=beta_constraint,
                         gamma_constraint=gamma_constraint)
        if rms_scaling:
            raise NotImplementedError("LayerNormalization: rms_scaling is not supported")
        self.axis, self.epsilon = axis, float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def build(self, input_shape: tuple) -> None:
        ndim = len(input_shape)
        if _axis(self.axis, ndim, "LayerNormalization") != ndim - 1:
            raise NotImplementedError(f"LayerNormalization: only the last axis is supported, "
                                      f"got axis={self.axis} for rank-{ndim} inputs")
        c = int(input_shape[-1])
        self.ln = nn.LayerNorm((c,), eps=self.epsilon)
        if self.scale:
            self._init_weight(self.ln, "weight", self.gamma_initializer, (c,))
            self._track("gamma", self.ln, "weight", regularizer=self.gamma_regularizer)
        else:
            self.ln.register_parameter("weight", None)
        if self.center:
            self._init_weight(self.ln, "bias", self.beta_initializer, (c,))
            self._track("beta", self.ln, "bias", regularizer=self.beta_regularizer)
        else:
            self.ln.register_parameter("bias", None)
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        return self.ln(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": serialize(self.beta_initializer),
                "gamma_initializer": serialize(self.gamma_initializer),
                "beta_regularizer": serialize(self.beta_regularizer),
                "gamma_regularizer": serialize(self.gamma_regularizer)}

