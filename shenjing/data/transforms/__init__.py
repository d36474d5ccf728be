"""Image transforms, as torchvision.transforms (v1): the classes here, their function forms in
`shenjing.data.transforms.functional`.

Each transform takes a PIL image, an HWC NumPy array (uint8, or float), or a `[..., C, H, W]`
Tensor where torchvision accepts tensors, and returns the same kind. Random transforms draw
from `get_transform_rng()`: inside a DataLoader that is a generator seeded per batch (same
batches whatever num_workers), elsewhere the global stream, so `sj.manual_seed` makes them
reproducible.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import functional  # noqa: F401
from .functional import *  # noqa: F401,F403
from .functional import (  # noqa: F401
    Image,
    InterpolationMode,
    _channels,
    _check_image,
    _is_tensor,
    _pair,
    _require_pil,
    _size,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    affine,
    center_crop,
    crop,
    get_transform_rng,
    hflip,
    normalize,
    pad,
    resize,
    rotate,
    to_grayscale,
    to_tensor,
    vflip,
)

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Grayscale",
    "Lambda",
    "Normalize",
    "Pad",
    "RandomAffine",
    "RandomCrop",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "ToPILImage",
    "ToTensor",
] + functional.__all__


# ---------------------------------------------------------------------------- classes


class Transform:
    """Base class: a callable on one image, with a readable repr."""

    def __call__(self, img: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms one after the other."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        for t in transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {t!r}")
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class Lambda(Transform):
    """Wrap a user function as a transform."""

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: expected a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)


class ToTensor(Transform):
    """PIL image or HWC uint8 array -> float32 CHW Tensor in [0, 1]."""

    def __call__(self, pic: Any) -> Any:
        return to_tensor(pic)


class ToPILImage(Transform):
    """CHW Tensor (floats in [0, 1] are scaled by 255) or HWC array -> PIL image."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode

    def __call__(self, pic: Any) -> Any:
        _require_pil("ToPILImage")
        if _is_tensor(pic):
            arr = pic.numpy()
            arr = (arr[None] if arr.ndim == 2 else arr).transpose(1, 2, 0)
        else:
            arr = np.asarray(pic)
        if arr.dtype.kind == "f":
            arr = np.rint(np.clip(arr, 0, 1) * 255).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        image = Image.fromarray(np.ascontiguousarray(arr))
        return image.convert(self.mode) if self.mode else image


class Normalize(Transform):
    """Per-channel (x - mean) / std of a float CHW Tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False
                 ) -> None:
        self.mean, self.std, self.inplace = list(mean), list(std), inplace
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std must not contain zeros, got {self.std}")

    def __call__(self, tensor: Any) -> Any:
        return normalize(tensor, self.mean, self.std, self.inplace)


class Resize(Transform):
    """Resize to (h, w), or an int: the shorter side becomes `size`, aspect ratio kept."""

    def __init__(self, size: int | Sequence[int],
                 interpolation: InterpolationMode | str | int = InterpolationMode.BILINEAR,
                 max_size: int | None = None, antialias: bool = True) -> None:
        if not isinstance(size, (numbers.Integral, Sequence)) or (
                isinstance(size, Sequence) and len(size) not in (1, 2)):
            raise ValueError(f"Resize: size should be an int or a (height, width) pair, got "
                             f"{size!r}")
        self.size, self.interpolation, self.max_size = size, interpolation, max_size
        self.antialias = antialias  # Pillow always antialiases when shrinking

    def __call__(self, img: Any) -> Any:
        return resize(img, self.size, self.interpolation, self.max_size)


class CenterCrop(Transform):
    """Crop the centre (h, w) window (int: square)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img: Any) -> Any:
        return center_crop(img, self.size)


class Pad(Transform):
    """Pad the borders with `fill` or by edge / reflect / symmetric copies."""

    def __init__(self, padding: int | Sequence[int], fill: Any = 0,
                 padding_mode: str = "constant") -> None:
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img: Any) -> Any:
        return pad(img, self.padding, self.fill, self.padding_mode)


class RandomCrop(Transform):
    """Crop a random (h, w) window, after optional padding."""

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: Any = 0, padding_mode: str = "constant"
                 ) -> None:
        self.size = _pair(size, "RandomCrop")
        self.padding, self.pad_if_needed = padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode

    def __call__(self, img: Any) -> Any:
        if self.padding is not None:
            img = pad(img, self.padding, self.fill, self.padding_mode)
        th, tw = self.size
        h, w = _size(img)
        if self.pad_if_needed and (w < tw or h < th):  # as torchvision: pad both sides
            img = pad(img, [max(tw - w, 0), max(th - h, 0)], self.fill, self.padding_mode)
            h, w = _size(img)
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: crop size {(th, tw)} is larger than the (padded) "
                             f"image size {(h, w)}; use pad_if_needed=True or a smaller size")
        rng = get_transform_rng()
        top = int(rng.integers(0, h - th + 1))
        left = int(rng.integers(0, w - tw + 1))
        return crop(img, top, left, th, tw)


def _range(value: float | Sequence[float], name: str, center: float = 0.0,
           low: float = -math.inf) -> tuple[float, float]:
    """(center - v, center + v) for a number, or the given (min, max) pair, checked."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{name} should be non-negative when a single number, got {value}")
        return max(center - value, low), center + value
    if not (isinstance(value, Sequence) and len(value) == 2):
        raise ValueError(f"{name} should be a number or a (min, max) pair, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not low <= lo <= hi:
        raise ValueError(f"{name} range ({lo}, {hi}) is invalid: need {low} <= min <= max")
    return lo, hi


class RandomResizedCrop(Transform):
    """Crop a random area and aspect ratio, then resize to `size` (Inception-style)."""

    def __init__(self, size: int | Sequence[int],
                 scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3),
                 interpolation: InterpolationMode | str | int = InterpolationMode.BILINEAR
                 ) -> None:
        self.size = _pair(size, "RandomResizedCrop")
        self.scale = _range(tuple(scale), "RandomResizedCrop: scale", low=0.0)
        self.ratio = _range(tuple(ratio), "RandomResizedCrop: ratio", low=1e-12)
        self.interpolation = interpolation

    def get_params(self, img: Any) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop, as torchvision's algorithm."""
        h, w = _size(img)
        area = h * w
        rng = get_transform_rng()
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            cw = round(math.sqrt(target_area * aspect))
            ch = round(math.sqrt(target_area / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        # Fallback: the largest centre crop within the ratio range.
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            cw, ch = w, round(w / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            ch, cw = h, round(h * self.ratio[1])
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, img: Any) -> Any:
        _check_image(img, "RandomResizedCrop")
        top, left, h, w = self.get_params(img)
        return resize(crop(img, top, left, h, w), self.size, self.interpolation)


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability p."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Any) -> Any:
        return hflip(img) if get_transform_rng().random() < self.p else img


class RandomVerticalFlip(Transform):
    """Mirror top-bottom with probability p."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Any) -> Any:
        return vflip(img) if get_transform_rng().random() < self.p else img


class RandomRotation(Transform):
    """Rotate by an angle drawn uniformly from (-degrees, degrees) or (min, max)."""

    def __init__(self, degrees: float | Sequence[float],
                 interpolation: InterpolationMode | str | int = InterpolationMode.NEAREST,
                 expand: bool = False, center: Sequence[float] | None = None, fill: Any = 0
                 ) -> None:
        self.degrees = _range(degrees, "RandomRotation: degrees")
        self.interpolation, self.expand, self.center, self.fill = (
            interpolation, expand, center, fill)

    def __call__(self, img: Any) -> Any:
        angle = float(get_transform_rng().uniform(*self.degrees))
        return rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)


class RandomAffine(Transform):
    """Random rotation, translation (fractions of the size), scale and shear."""

    def __init__(self, degrees: float | Sequence[float],
                 translate: Sequence[float] | None = None, scale: Sequence[float] | None = None,
                 shear: float | Sequence[float] | None = None,
                 interpolation: InterpolationMode | str | int = InterpolationMode.NEAREST,
                 fill: Any = 0, center: Sequence[float] | None = None) -> None:
        self.degrees = _range(degrees, "RandomAffine: degrees")
        if translate is not None and (len(translate) != 2
                                      or not all(0.0 <= t <= 1.0 for t in translate)):
            raise ValueError(f"RandomAffine: translate should be two fractions in [0, 1], got "
                             f"{translate!r}")
        self.translate = translate
        self.scale = None if scale is None else _range(tuple(scale), "RandomAffine: scale",
                                                       low=1e-12)
        if shear is None or isinstance(shear, numbers.Number) or len(shear) == 2:
            self.shear = None if shear is None else (_range(shear, "RandomAffine: shear"),)
        elif len(shear) == 4:
            self.shear = (_range(tuple(shear[:2]), "RandomAffine: shear x"),
                          _range(tuple(shear[2:]), "RandomAffine: shear y"))
        else:
            raise ValueError(f"RandomAffine: shear should be a number or 2 or 4 numbers, got "
                             f"{shear!r}")
        self.interpolation, self.fill, self.center = interpolation, fill, center

    def get_params(self, height: int, width: int) -> tuple[float, tuple, float, tuple]:
        """(angle, (tx, ty), scale, (shear_x, shear_y)) drawn as torchvision does."""
        rng = get_transform_rng()
        angle = float(rng.uniform(*self.degrees))
        tx = ty = 0
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * width, self.translate[1] * height
            tx = round(rng.uniform(-max_dx, max_dx))
            ty = round(rng.uniform(-max_dy, max_dy))
        scale = 1.0 if self.scale is None else float(rng.uniform(*self.scale))
        shear = [0.0, 0.0]
        for axis, bounds in enumerate(self.shear or ()):
            shear[axis] = float(rng.uniform(*bounds))
        return angle, (tx, ty), scale, tuple(shear)

    def __call__(self, img: Any) -> Any:
        _check_image(img, "RandomAffine")
        h, w = _size(img)
        angle, translate, scale, shear = self.get_params(h, w)
        return affine(img, angle, translate, scale, shear, self.interpolation, self.fill,
                      self.center)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue changes, applied in a random order."""

    def __init__(self, brightness: float | Sequence[float] = 0,
                 contrast: float | Sequence[float] = 0,
                 saturation: float | Sequence[float] = 0,
                 hue: float | Sequence[float] = 0) -> None:
        self.brightness = self._factor_range(brightness, "brightness")
        self.contrast = self._factor_range(contrast, "contrast")
        self.saturation = self._factor_range(saturation, "saturation")
        hue_range = _range(hue, "ColorJitter: hue")
        if not -0.5 <= hue_range[0] <= hue_range[1] <= 0.5:
            raise ValueError(f"ColorJitter: hue should lie in [-0.5, 0.5], got {hue!r}")
        self.hue = None if hue_range == (0.0, 0.0) else hue_range

    @staticmethod
    def _factor_range(value: float | Sequence[float], name: str) -> tuple[float, float] | None:
        lo, hi = _range(value, f"ColorJitter: {name}", center=1.0, low=0.0)
        return None if (lo, hi) == (1.0, 1.0) else (lo, hi)

    def __call__(self, img: Any) -> Any:
        _check_image(img, "ColorJitter")
        rng = get_transform_rng()
        steps = [
            (self.brightness, adjust_brightness), (self.contrast, adjust_contrast),
            (self.saturation, adjust_saturation), (self.hue, adjust_hue),
        ]
        for i in rng.permutation(4):
            bounds, fn = steps[i]
            if bounds is not None:
                img = fn(img, float(rng.uniform(*bounds)))
        return img


class Grayscale(Transform):
    """Convert to gray levels, with 1 or 3 output channels."""

    def __init__(self, num_output_channels: int = 1) -> None:
        self.num_output_channels = num_output_channels

    def __call__(self, img: Any) -> Any:
        return to_grayscale(img, self.num_output_channels)


class RandomGrayscale(Transform):
    """Convert to gray with probability p, keeping the number of channels."""

    def __init__(self, p: float = 0.1) -> None:
        self.p = p

    def __call__(self, img: Any) -> Any:
        if get_transform_rng().random() < self.p:
            return to_grayscale(img, 1 if _channels(img) == 1 else 3)
        return img
