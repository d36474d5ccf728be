"""Keras preprocessing and augmentation layers: Normalization (with adapt), RandomFlip and
RandomContrast. Augmentations act only in training (fit), as in Keras; in inference they
return their input unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import no_grad
from ...tensor import Tensor, as_tensor
from .base import Layer

__all__ = ["Normalization", "RandomFlip", "RandomContrast"]


def _as_array(data: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.numpy()
    if hasattr(data, "__iter__") and not isinstance(data, np.ndarray) and \
            not isinstance(data, (list, tuple)):
        return np.concatenate([np.asarray(b[0] if isinstance(b, tuple) else b) for b in data])
    return np.asarray(data, dtype=np.float32)


class Normalization(Layer):
    """(x - mean) / sqrt(var) per feature of `axis` (default last); `adapt(data)` learns
    mean and variance, or give them as `mean=`/`variance=`; `invert=True` undoes it."""

    def __init__(self, axis: Any = -1, mean: Any = None, variance: Any = None,
                 invert: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: give both mean and variance, or neither")
        self.axis = axis if axis is None or isinstance(axis, int) else tuple(axis)
        self.invert = bool(invert)
        self.input_mean, self.input_variance = mean, variance
        self._adapted = mean is not None

    def _axes(self, ndim: int) -> tuple:
        if self.axis is None:
            return ()
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        return tuple(a % ndim for a in axes)

    def build(self, input_shape: tuple) -> None:
        ndim = len(input_shape)
        kept = self._axes(ndim)
        stat_shape = tuple(int(input_shape[a]) if a in kept else 1 for a in range(ndim))
        self._stat_shape = stat_shape
        mean = np.zeros(stat_shape, np.float32) if self.input_mean is None else \
            np.broadcast_to(np.asarray(self.input_mean, np.float32), stat_shape).copy()
        var = np.ones(stat_shape, np.float32) if self.input_variance is None else \
            np.broadcast_to(np.asarray(self.input_variance, np.float32), stat_shape).copy()
        self.mean = self.add_weight(shape=stat_shape, initializer="zeros", trainable=False,
                                    name="mean")
        self.variance = self.add_weight(shape=stat_shape, initializer="ones", trainable=False,
                                        name="variance")
        with no_grad():
            self.mean.copy_(mean)
            self.variance.copy_(var)
        self.built = True

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Learn the mean and (biased) variance of `data` over all but the kept axes."""
        arr = _as_array(data).astype(np.float64)
        if not self.built:
            self._maybe_build((None,) + arr.shape[1:])
        reduce_axes = tuple(a for a in range(arr.ndim) if a not in self._axes(arr.ndim))
        with no_grad():
            self.mean.copy_(arr.mean(reduce_axes, keepdims=True).astype(np.float32))
            self.variance.copy_(arr.var(reduce_axes, keepdims=True).astype(np.float32))
        self._adapted = True

    def call(self, inputs: Tensor) -> Tensor:
        std = (self.variance.clamp(min=1e-7)).sqrt()
        if self.invert:
            return inputs * std + self.mean
        return (inputs - self.mean) / std

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        def listed(v: Any) -> Any:
            return None if v is None else np.asarray(v).tolist()

        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": listed(self.input_mean), "variance": listed(self.input_variance)}


class _Augment(Layer):
    _cf_default = "no"

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def call(self, inputs: Tensor, training: bool = True) -> Tensor:
        return self._augment(inputs) if training else inputs

    def _augment(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class RandomFlip(_Augment):
    """Flips images (batch, rows, cols, channels) left-right and/or up-down at random."""

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"RandomFlip: mode must be 'horizontal', 'vertical' or "
                             f"'horizontal_and_vertical', got {mode!r}")
        self.mode = mode

    def _augment(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"RandomFlip {self.name!r}: expected (batch, rows, cols, channels) "
                             f"images, got shape {tuple(x.shape)}")
        for axis, active in ((2, "horizontal" in self.mode), (1, "vertical" in self.mode)):
            if active:
                flip = self._rng.random(x.shape[0]) < 0.5
                keep = as_tensor(flip.reshape(-1, 1, 1, 1))
                x = keep.where(x.flip(axis), x) if hasattr(keep, "where") else x
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}


class RandomContrast(_Augment):
    """Scales each image's deviation from its per-channel mean by a factor drawn from
    [1 - lower, 1 + upper] (factor given as one number or a pair)."""

    def __init__(self, factor: Any, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        lo, hi = (factor, factor) if isinstance(factor, (int, float)) else tuple(factor)
        if lo < 0 or hi < 0 or lo > 1:
            raise ValueError(f"RandomContrast: factor must be non-negative (lower <= 1), got "
                             f"{factor!r}")
        self.factor = (float(lo), float(hi))

    def _augment(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"RandomContrast {self.name!r}: expected (batch, rows, cols, "
                             f"channels) images, got shape {tuple(x.shape)}")
        f = self._rng.uniform(1 - self.factor[0], 1 + self.factor[1], (x.shape[0], 1, 1, 1))
        mean = x.mean((1, 2), keepdim=True)
        return (x - mean) * as_tensor(f.astype(np.float32)) + mean

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": list(self.factor), "seed": self.seed}
