"""Keras preprocessing and augmentation layers: Normalization (with adapt), RandomFlip and
RandomContrast. Augmentations act only in training (fit), as in Keras; in inference they
return their input unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import no_grad, where
from ...tensor import Tensor, as_tensor
from .base import Layer

__all__ = ["Normalization", "RandomFlip", "RandomContrast", "RandomRotation", "RandomZoom",
           "RandomTranslation"]


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
                x = where(keep, x.flip(axis), x)
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


def _fold(coord: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer source coordinates mapped inside [0, size) by Keras's fill mode, and whether
    each was inside to begin with (for 'constant')."""
    inside = (coord >= 0) & (coord < size)
    if mode == "reflect":  # d c b a | a b c d | d c b a
        period = 2 * size
        c = np.mod(coord, period)
        coord = np.where(c >= size, period - 1 - c, c)
    elif mode == "wrap":
        coord = np.mod(coord, size)
    else:  # "nearest", and "constant" (whose outside cells are replaced later)
        coord = np.clip(coord, 0, size - 1)
    return coord.astype(np.int64), inside


class _AffineAugment(_Augment):
    """Random affine resampling of images (batch, rows, cols, channels), bilinear or nearest,
    filling outside points as Keras's fill_mode says. Differentiable in the image."""

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        if fill_mode not in ("reflect", "wrap", "constant", "nearest"):
            raise ValueError(f"{type(self).__name__}: fill_mode must be 'reflect', 'wrap', "
                             f"'constant' or 'nearest', got {fill_mode!r}")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"{type(self).__name__}: interpolation must be 'bilinear' or "
                             f"'nearest', got {interpolation!r}")
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.fill_value = float(fill_value)

    def _sources(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Per image, the (row, col) each output pixel is read from. Override."""
        raise NotImplementedError  # pragma: no cover

    def _augment(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected (batch, rows, "
                             f"cols, channels) images, got shape {tuple(x.shape)}")
        n, h, w, c = x.shape
        sy, sx = self._sources(n, h, w)
        if self.interpolation == "nearest":
            corners = [(np.round(sy), np.round(sx), np.ones_like(sy))]
        else:
            y0, x0 = np.floor(sy), np.floor(sx)
            dy, dx = sy - y0, sx - x0
            corners = [(y0, x0, (1 - dy) * (1 - dx)), (y0, x0 + 1, (1 - dy) * dx),
                       (y0 + 1, x0, dy * (1 - dx)), (y0 + 1, x0 + 1, dy * dx)]
        flat = x.reshape(n * h * w, c)
        base = (np.arange(n) * h * w)[:, None, None]
        out, outside = None, np.zeros((n, h, w), np.float64)
        for cy, cx, weight in corners:
            iy, in_y = _fold(cy, h, self.fill_mode)
            ix, in_x = _fold(cx, w, self.fill_mode)
            if self.fill_mode == "constant":
                outside += weight * ~(in_y & in_x)
                weight = weight * (in_y & in_x)
            term = flat[(base + iy * w + ix).reshape(-1)].reshape(n, h, w, c) * \
                as_tensor(weight[..., None].astype(np.float32))
            out = term if out is None else out + term
        if self.fill_mode == "constant" and self.fill_value:
            out = out + as_tensor((outside[..., None] * self.fill_value).astype(np.float32))
        return out

    def _grid(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Output coordinates relative to the image centre, shaped (n, h, w)."""
        yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                             indexing="ij")
        return (np.broadcast_to(yy - (h - 1) / 2, (n, h, w)),
                np.broadcast_to(xx - (w - 1) / 2, (n, h, w)))

    def get_config(self) -> dict:
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "seed": self.seed,
                "fill_value": self.fill_value}


def _bounds(factor: Any, layer: str, what: str) -> tuple[float, float]:
    lo, hi = (-float(factor), float(factor)) if isinstance(factor, (int, float)) else \
        (float(factor[0]), float(factor[1]))
    if lo > hi:
        raise ValueError(f"{layer}: {what} lower bound {lo} exceeds the upper bound {hi}")
    return lo, hi


class RandomRotation(_AffineAugment):
    """Rotates each image by a random angle in factor * [-2pi, 2pi] (or [lo, hi] * 2pi)."""

    def __init__(self, factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _bounds(factor, "RandomRotation", "factor")

    def _sources(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        angle = self._rng.uniform(*self.factor, n)[:, None, None] * 2 * np.pi
        ry, rx = self._grid(n, h, w)
        cos, sin = np.cos(angle), np.sin(angle)
        # positive angles turn the image counter-clockwise, as in Keras
        return (cos * ry + sin * rx + (h - 1) / 2, cos * rx - sin * ry + (w - 1) / 2)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_AffineAugment):
    """Zooms each image by 1 + a random amount in height_factor (positive: zoom out);
    width_factor None keeps the aspect ratio."""

    def __init__(self, height_factor: Any, width_factor: Any = None,
                 fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _bounds(height_factor, "RandomZoom", "height_factor")
        self.width_factor = None if width_factor is None else \
            _bounds(width_factor, "RandomZoom", "width_factor")

    def _sources(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        zy = 1 + self._rng.uniform(*self.height_factor, n)[:, None, None]
        zx = zy if self.width_factor is None else \
            1 + self._rng.uniform(*self.width_factor, n)[:, None, None]
        ry, rx = self._grid(n, h, w)
        return ry * zy + (h - 1) / 2, rx * zx + (w - 1) / 2

    def get_config(self) -> dict:
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": None if self.width_factor is None else list(self.width_factor)}


class RandomTranslation(_AffineAugment):
    """Shifts each image by random fractions of its height and width."""

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _bounds(height_factor, "RandomTranslation", "height_factor")
        self.width_factor = _bounds(width_factor, "RandomTranslation", "width_factor")

    def _sources(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        ty = self._rng.uniform(*self.height_factor, n)[:, None, None] * h
        tx = self._rng.uniform(*self.width_factor, n)[:, None, None] * w
        ry, rx = self._grid(n, h, w)
        return ry + (h - 1) / 2 - ty, rx + (w - 1) / 2 - tx

    def get_config(self) -> dict:
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}
