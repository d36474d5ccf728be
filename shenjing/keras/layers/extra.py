"""More Keras layers over shenjing.nn: GroupNormalization (nn.GroupNorm), GaussianNoise,
SpatialDropout1D/2D (nn.functional.dropout1d/2d), TimeDistributed and Dot."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nn, randn
from ...nn import functional as F
from ...tensor import Tensor
from .. import initializers, regularizers
from ..registry import deserialize as deserialize_from
from ..registry import serialize
from .base import Layer, to_cf, to_cl

__all__ = ["GroupNormalization", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D",
           "TimeDistributed", "Dot"]


class GroupNormalization(Layer):
    """Normalize each sample over groups of channels (the `axis`, default last; e.g. axis=1
    for channels-first data) and all their positions. groups=-1 puts each channel in its own
    group (instance normalization)."""

    def __init__(self, groups: int = 32, axis: int = -1, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if beta_constraint is not None or gamma_constraint is not None:
            raise NotImplementedError("GroupNormalization: weight constraints are not supported")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError(f"GroupNormalization: axis must be one int, got {axis!r}")
            axis = axis[0]
        if not isinstance(axis, (int, np.integer)):
            raise TypeError(f"GroupNormalization: axis must be an int, got {axis!r}")
        if int(groups) == 0 or int(groups) < -1:
            raise ValueError(f"GroupNormalization: groups must be positive or -1, got {groups}")
        self.groups, self.axis, self.epsilon = int(groups), int(axis), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self._axis_index: int | None = None

    def build(self, input_shape: tuple) -> None:
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"GroupNormalization {self.name!r}: axis {self.axis} must be a "
                             f"non-batch axis of rank-{ndim} inputs")
        self._axis_index = self.axis % ndim
        c = input_shape[self._axis_index]
        groups = int(c) if self.groups == -1 and c is not None else self.groups
        if c is None or int(c) % groups:
            raise ValueError(f"GroupNormalization {self.name!r}: the channel count ({c}) on "
                             f"axis {self.axis} must be defined and divisible by groups "
                             f"({self.groups})")
        self.gn = nn.GroupNorm(groups, int(c), eps=self.epsilon)
        if self.scale:
            self._init_weight(self.gn, "weight", self.gamma_initializer, (int(c),))
            self._track("gamma", self.gn, "weight", regularizer=self.gamma_regularizer)
        if self.center:
            self._init_weight(self.gn, "bias", self.beta_initializer, (int(c),))
            self._track("beta", self.gn, "bias", regularizer=self.beta_regularizer)
        if not self.scale:
            self.gn.weight.requires_grad = False  # stays ones
        if not self.center:
            self.gn.bias.requires_grad = False  # stays zeros
        self.built = True

    def _channels_last(self, ndim: int) -> bool:
        return self.axis % ndim == ndim - 1

    def _cf_mode(self, ndim: int) -> str:
        if ndim < 3:
            return "agnostic"
        return "prefer" if self._channels_last(ndim) else "no"

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        return self.gn(x)

    def call(self, inputs: Tensor) -> Tensor:
        a = self._axis_index
        if inputs.ndim < 2 or a is None or a >= inputs.ndim:
            raise ValueError(f"GroupNormalization {self.name!r}: expected inputs of the rank "
                             f"it was built for, got shape {tuple(inputs.shape)}")
        if a == 1:
            return self.gn(inputs)
        if self._channels_last(inputs.ndim):
            return to_cl(self.gn(to_cf(inputs)))
        order = [0, a] + [i for i in range(1, inputs.ndim) if i != a]
        back = np.argsort(order).tolist()
        return self.gn(inputs.permute(*order)).permute(*back)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": serialize(self.beta_initializer),
                "gamma_initializer": serialize(self.gamma_initializer),
                "beta_regularizer": serialize(self.beta_regularizer),
                "gamma_regularizer": serialize(self.gamma_regularizer)}


class _Elementwise(Layer):
    _cf_default = "agnostic"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)


class GaussianNoise(_Elementwise):
    """Adds N(0, stddev^2) noise in training only (a regularizer)."""

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if float(stddev) < 0:
            raise ValueError(f"GaussianNoise: stddev must be >= 0, got {stddev!r}")
        self.stddev, self.seed = float(stddev), seed

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.stddev == 0:
            return inputs
        return inputs + randn(*inputs.shape) * self.stddev

    def get_config(self) -> dict:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class _SpatialDropout(Layer):
    """Drops whole channels (feature maps) in training, scaling the rest by 1/(1-rate)."""

    _nd = 1

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= float(rate) <= 1:
            raise ValueError(f"{type(self).__name__}: rate must be in [0, 1], got {rate!r}")
        self.rate, self.seed = float(rate), seed
        self.built = True

    def _call_cf(self, x: Tensor, training: bool) -> Tensor:
        if x.ndim != self._nd + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected inputs of rank "
                             f"{self._nd + 2}, got shape {tuple(x.shape)}")
        if not training or self.rate == 0:
            return x
        drop = F.dropout1d if self._nd == 1 else F.dropout2d
        return drop(x, self.rate, training=True)

    def _cf_mode(self, ndim: int) -> str:
        return "prefer"

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        return to_cl(self._call_cf(to_cf(inputs), training))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class SpatialDropout1D(_SpatialDropout):
    _nd = 1


class SpatialDropout2D(_SpatialDropout):
    _nd = 2


class TimeDistributed(Layer):
    """Applies `layer` to every step of (batch, steps, ...) by folding steps into the batch."""

    layer_registry: Any = None  # keras.layers.REGISTRY, set by the package

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(layer, dict):  # from a saved config
            layer = deserialize_from(self.layer_registry, layer)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed: expected a keras Layer, got {type(layer)}")
        self.layer = layer

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r}: inputs must be at least 3-D "
                             f"(batch, steps, ...), got {input_shape}")
        self.layer._maybe_build((None,) + tuple(input_shape[2:]))
        self.built = True

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        n, t = inputs.shape[0], inputs.shape[1]
        folded = inputs.reshape((n * t,) + tuple(inputs.shape[2:]))
        y = self.layer._forward(folded, training)
        return y.reshape((n, t) + tuple(y.shape[1:]))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": serialize(self.layer)}


class Dot(Layer):
    """Dot product of two samples' vectors along `axes` (cosine similarity if normalize)."""

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pair = (axes, axes) if isinstance(axes, (int, np.integer)) else tuple(axes)
        if len(pair) != 2:
            raise ValueError(f"Dot: axes must be an int or a pair, got {axes!r}")
        self.axes, self.normalize = tuple(int(a) for a in pair), bool(normalize)
        self.built = True

    def _check(self, inputs: Any) -> tuple:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("A Dot layer should be called on a list of 2 inputs")
        return inputs[0], inputs[1]

    def call(self, inputs: Any) -> Tensor:
        a, b = self._check(inputs)
        if a.ndim != b.ndim or a.ndim not in (2, 3):
            raise ValueError(f"Dot {self.name!r}: inputs must both be 2-D or 3-D, got shapes "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        ax_a, ax_b = (ax % a.ndim for ax in self.axes)
        if self.normalize:
            a = a / ((a * a).sum(ax_a, keepdim=True) + 1e-12).sqrt()
            b = b / ((b * b).sum(ax_b, keepdim=True) + 1e-12).sqrt()
        if a.ndim == 2:
            return (a * b).sum(-1, keepdim=True)
        a = a if ax_a == 2 else a.transpose(1, 2)  # (N, i, k)
        b = b if ax_b == 1 else b.transpose(1, 2)  # (N, k, j)
        return a @ b

    def compute_output_shape(self, input_shape: Any) -> tuple:
        a, b = self._check(input_shape)
        if len(a) == 2:
            return (a[0], 1)
        ax_a, ax_b = (ax % len(a) for ax in self.axes)
        return (a[0], a[3 - ax_a], b[3 - ax_b])

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": list(self.axes), "normalize": self.normalize}

