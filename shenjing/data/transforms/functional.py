"""Function forms of the image transforms, as torchvision.transforms.functional.

Each transform takes a PIL image, an HWC NumPy array (uint8, or float), or a `[..., C, H, W]`
Tensor where torchvision accepts tensors, and returns the same kind. Geometry on PIL images and
uint8 arrays uses Pillow itself (the results match torchvision's PIL path); float arrays and
tensors go through Pillow one channel at a time as 32-bit float ("F") images. Colour changes are
computed in NumPy on floats in [0, 1].

Random transforms draw from `get_transform_rng()`: inside a DataLoader that is a generator
seeded per batch (same batches whatever num_workers), elsewhere the global stream, so
`sj.manual_seed` makes them reproducible.
"""

from __future__ import annotations

import enum
import math
import numbers
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ...random import get_rng

try:
    from PIL import Image
except ImportError:  # Pillow is optional: NumPy/Tensor inputs still work where no resampling
    Image = None

__all__ = [
    "InterpolationMode",
    "affine",
    "center_crop",
    "crop",
    "get_transform_rng",
    "hflip",
    "normalize",
    "pad",
    "resize",
    "rotate",
    "to_grayscale",
    "to_tensor",
    "use_rng",
    "vflip",
]

# ----------------------------------------------------------------------------- random stream

_local = threading.local()


@contextmanager
def use_rng(rng: np.random.Generator) -> Iterator[np.random.Generator]:
    """Make random transforms in this thread draw from `rng` (the DataLoader's per batch)."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous


def get_transform_rng() -> np.random.Generator:
    """The generator random transforms draw from in this thread."""
    rng = getattr(_local, "rng", None)
    return rng if rng is not None else get_rng()


# ------------------------------------------------------------------------- image kinds


class InterpolationMode(enum.StrEnum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def _require_pil(what: str) -> None:
    if Image is None:
        raise ImportError(f"{what} needs Pillow: pip install pillow")


def _resample(mode: InterpolationMode | str | int) -> int:
    _require_pil("resampling")
    if isinstance(mode, int) and not isinstance(mode, bool):
        return mode  # a PIL constant, as torchvision still accepts
    try:
        name = InterpolationMode(mode).name
    except ValueError:
        raise ValueError(f"unknown interpolation {mode!r}; expected one of "
                         f"{[m.value for m in InterpolationMode]}") from None
    return getattr(Image.Resampling, name)


def _is_pil(img: Any) -> bool:
    return Image is not None and isinstance(img, Image.Image)


def _is_tensor(img: Any) -> bool:
    from ...tensor import Tensor

    return isinstance(img, Tensor)


def _wrap_tensor(array: np.ndarray) -> Any:
    from ...tensor import from_numpy

    return from_numpy(np.ascontiguousarray(array))


def _check_image(img: Any, what: str) -> None:
    if _is_pil(img) or _is_tensor(img):
        return
    if isinstance(img, np.ndarray) and img.ndim in (2, 3):
        return
    shape = f" of shape {img.shape}" if isinstance(img, np.ndarray) else ""
    raise TypeError(f"{what}: expected a PIL image, an HWC NumPy array or a [..., C, H, W] "
                    f"Tensor, got {type(img).__name__}{shape}")


def _size(img: Any) -> tuple[int, int]:
    """(height, width) of an image of any kind."""
    if _is_pil(img):
        return img.height, img.width
    shape = img.shape
    return (shape[-2], shape[-1]) if _is_tensor(img) else (shape[0], shape[1])


def _channels(img: Any) -> int:
    if _is_pil(img):
        return len(img.getbands())
    if _is_tensor(img):
        return img.shape[-3] if img.ndim >= 3 else 1
    return img.shape[2] if img.ndim == 3 else 1


def _fills(fill: Any, channels: int) -> list[float]:
    """One fill value per channel (torchvision accepts a number or one value per channel)."""
    if fill is None:
        return [0.0] * channels
    if isinstance(fill, numbers.Number):
        return [float(fill)] * channels
    values = [float(v) for v in fill]
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise ValueError(f"fill has {len(values)} values but the image has {channels} channels")
    return values


def _pil_fill(img: Any, fill: Any) -> Any:
    values = _fills(fill, len(img.getbands()))
    if img.mode in ("F", "I") or img.mode.startswith("I;"):
        cast = float if img.mode == "F" else int
        return cast(values[0])
    values = [round(v) for v in values]
    return values[0] if len(values) == 1 else tuple(values)


def _apply_pil(img: Any, fn: Callable[[Any, Any], Any], fill: Any = None) -> Any:
    """Apply `fn(pil_image, fill)` to an image of any kind, returning the same kind.

    uint8 HWC arrays with 1 to 4 channels become one PIL image; float arrays and tensors are
    processed one channel at a time as "F" images and cast back to their dtype.
    """
    _require_pil("this transform")
    if _is_pil(img):
        return fn(img, _pil_fill(img, fill))
    if _is_tensor(img):
        return _wrap_tensor(_apply_planes(img.numpy(), fn, fill, channels_last=False))
    if img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] <= 4):
        single = img.ndim == 3 and img.shape[2] == 1
        pil = Image.fromarray(img[..., 0] if single else img)
        out = np.array(fn(pil, _pil_fill(pil, fill)))
        return out[..., None] if single else out
    return _apply_planes(img, fn, fill, channels_last=True)


def _apply_planes(arr: np.ndarray, fn: Callable, fill: Any, channels_last: bool) -> np.ndarray:
    if channels_last:
        planes = np.moveaxis(arr, -1, 0) if arr.ndim == 3 else arr[None]
        channels = planes.shape[0]
    else:
        if arr.ndim < 2:
            raise ValueError(f"expected a tensor of shape [..., H, W], got {arr.shape}")
        planes = arr.reshape(-1, *arr.shape[-2:])
        channels = arr.shape[-3] if arr.ndim >= 3 else 1
    fills = _fills(fill, channels)
    out = np.stack([
        np.asarray(fn(Image.fromarray(p.astype(np.float32)), fills[i % channels]))
        for i, p in enumerate(planes)
    ])
    if arr.dtype.kind in "iub":
        info = np.iinfo(arr.dtype) if arr.dtype.kind != "b" else None
        out = np.rint(out) if info is None else np.clip(np.rint(out), info.min, info.max)
    out = out.astype(arr.dtype, copy=False)
    if channels_last:
        return np.moveaxis(out, 0, -1) if arr.ndim == 3 else out[0]
    return out.reshape(*arr.shape[:-2], *out.shape[-2:])


def _as_array(img: Any) -> tuple[np.ndarray, int, int]:
    """The pixel array of an image of any kind and its (height axis, width axis)."""
    if _is_pil(img):
        return np.array(img), 0, 1
    if _is_tensor(img):
        return img.numpy(), -2, -1
    return img, 0, 1


def _like(img: Any, array: np.ndarray) -> Any:
    """`array` as the same kind of image as `img` (PIL mode and palette kept)."""
    if _is_pil(img):
        out = Image.fromarray(array)
        if img.mode == "P":  # indices came back as "L": re-attach the palette
            out.putpalette(img.getpalette())
        return out
    return _wrap_tensor(array) if _is_tensor(img) else array


# --------------------------------------------------------------------- functional forms


def to_tensor(pic: Any) -> Any:
    """PIL image or HWC array -> CHW Tensor; uint8 is scaled to float32 in [0, 1]."""
    if _is_pil(pic):
        array = np.array(pic)
        if pic.mode == "1":
            array = array.astype(np.uint8) * 255
    elif isinstance(pic, np.ndarray):
        array = pic
    else:
        raise TypeError(f"ToTensor: expected a PIL image or a NumPy array, got "
                        f"{type(pic).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"ToTensor: expected an HW or HWC image, got shape {array.shape}")
    chw = array.transpose(2, 0, 1)
    if chw.dtype == np.uint8:
        chw = chw.astype(np.float32) / np.float32(255)
    return _wrap_tensor(chw)


def normalize(tensor: Any, mean: Sequence[float], std: Sequence[float], inplace: bool = False
              ) -> Any:
    """(x - mean) / std per channel of a float [..., C, H, W] Tensor or CHW array."""
    arr = tensor.numpy() if _is_tensor(tensor) else np.asarray(tensor)
    if arr.dtype.kind != "f":
        raise TypeError(f"Normalize: expected a float tensor, got dtype {arr.dtype}; apply "
                        "ToTensor() first")
    if arr.ndim < 3:
        raise ValueError(f"Normalize: expected a [..., C, H, W] tensor, got shape {arr.shape}")
    channels = arr.shape[-3]
    mean_a = np.asarray(mean, dtype=arr.dtype).reshape(-1, 1, 1)
    std_a = np.asarray(std, dtype=arr.dtype).reshape(-1, 1, 1)
    for name, values in (("mean", mean_a), ("std", std_a)):
        if len(values) not in (1, channels):
            raise ValueError(f"Normalize: {name} has {len(values)} values but the image has "
                             f"{channels} channels")
    if np.any(std_a == 0):
        raise ValueError(f"Normalize: std must not contain zeros, got {list(std)}")
    if inplace:
        arr -= mean_a
        arr /= std_a
        return tensor
    out = (arr - mean_a) / std_a
    return _wrap_tensor(out) if _is_tensor(tensor) else out


def _pair(size: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) in (1, 2):
        return (int(size[0]), int(size[0])) if len(size) == 1 else (int(size[0]), int(size[1]))
    raise ValueError(f"{what}: size should be an int or a (height, width) pair, got {size!r}")


def _resized_size(h: int, w: int, size: int | Sequence[int], max_size: int | None
                  ) -> tuple[int, int]:
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    target = int(size if isinstance(size, numbers.Integral) else size[0])
    short, long = min(h, w), max(h, w)
    new_short, new_long = target, int(target * long / short)
    if max_size is not None:
        if max_size <= target:
            raise ValueError(f"Resize: max_size ({max_size}) must be larger than size ({target})")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if w <= h else (new_short, new_long)


def resize(img: Any, size: int | Sequence[int],
           interpolation: InterpolationMode | str | int = InterpolationMode.BILINEAR,
           max_size: int | None = None) -> Any:
    """Resize to (h, w), or so that the shorter side is `size` (aspect ratio kept)."""
    _check_image(img, "Resize")
    h, w = _size(img)
    out_h, out_w = _resized_size(h, w, size, max_size)
    if (out_h, out_w) == (h, w):
        return img
    resample = _resample(interpolation)
    return _apply_pil(img, lambda im, _: im.resize((out_w, out_h), resample))


def pad(img: Any, padding: int | Sequence[int], fill: Any = 0, padding_mode: str = "constant"
        ) -> Any:
    """Pad the borders: an int for all, (left/right, top/bottom), or (left, top, right, bottom)."""
    _check_image(img, "Pad")
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError(f"Pad: padding_mode should be constant, edge, reflect or symmetric, "
                         f"got {padding_mode!r}")
    if isinstance(padding, numbers.Integral):
        left = top = right = bottom = int(padding)
    elif isinstance(padding, Sequence) and len(padding) in (1, 2, 4):
        p = [int(x) for x in padding]
        left, top, right, bottom = p * 4 if len(p) == 1 else p * 2 if len(p) == 2 else p
    else:
        raise ValueError(f"Pad: padding should be an int or a sequence of 1, 2 or 4 ints, got "
                         f"{padding!r}")
    array, h_axis, w_axis = _as_array(img)
    widths = [(0, 0)] * array.ndim
    widths[h_axis], widths[w_axis] = (top, bottom), (left, right)
    if padding_mode != "constant":
        return _like(img, np.pad(array, widths, mode=padding_mode))
    out = np.empty([n + a + b for n, (a, b) in zip(array.shape, widths)], dtype=array.dtype)
    if array.ndim == 2:
        out[...] = _fills(fill, 1)[0]
    else:  # one fill value per channel, broadcast along the channel axis
        channel_axis = array.ndim - 3 if _is_tensor(img) else 2
        fill_shape = [1] * array.ndim
        fill_shape[channel_axis] = array.shape[channel_axis]
        out[...] = np.reshape(_fills(fill, array.shape[channel_axis]), fill_shape)
    region = [slice(None)] * array.ndim
    region[h_axis] = slice(top, top + array.shape[h_axis])
    region[w_axis] = slice(left, left + array.shape[w_axis])
    out[tuple(region)] = array
    return _like(img, out)


def crop(img: Any, top: int, left: int, height: int, width: int) -> Any:
    """The (height, width) window at (top, left); outside the image is zero (as PIL crop)."""
    _check_image(img, "crop")
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    h, w = _size(img)
    spill = (max(0, -left), max(0, -top), max(0, left + width - w), max(0, top + height - h))
    if any(spill):
        img = pad(img, list(spill))
        top, left = top + spill[1], left + spill[0]
    array, h_axis, w_axis = _as_array(img)
    region = [slice(None)] * array.ndim
    region[h_axis], region[w_axis] = slice(top, top + height), slice(left, left + width)
    return _like(img, array[tuple(region)].copy())


def center_crop(img: Any, output_size: int | Sequence[int]) -> Any:
    """The central (h, w) window, zero-padded first if the image is smaller."""
    crop_h, crop_w = _pair(output_size, "CenterCrop")
    h, w = _size(img)
    if crop_h > h or crop_w > w:  # as torchvision: pad (extra pixel right/bottom), then crop
        dh, dw = max(crop_h - h, 0), max(crop_w - w, 0)
        img = pad(img, [dw // 2, dh // 2, (dw + 1) // 2, (dh + 1) // 2])
        h, w = _size(img)
    top = round((h - crop_h) / 2.0)
    left = round((w - crop_w) / 2.0)
    return crop(img, top, left, crop_h, crop_w)


def hflip(img: Any) -> Any:
    """Mirror left-right."""
    _check_image(img, "hflip")
    if _is_pil(img):
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array, _, w_axis = _as_array(img)
    return _like(img, np.flip(array, axis=w_axis).copy())


def vflip(img: Any) -> Any:
    """Mirror top-bottom."""
    _check_image(img, "vflip")
    if _is_pil(img):
        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    array, h_axis, _ = _as_array(img)
    return _like(img, np.flip(array, axis=h_axis).copy())


def rotate(img: Any, angle: float,
           interpolation: InterpolationMode | str | int = InterpolationMode.NEAREST,
           expand: bool = False, center: Sequence[float] | None = None, fill: Any = 0) -> Any:
    """Rotate counter-clockwise by `angle` degrees about `center` (default: the middle)."""
    _check_image(img, "rotate")
    resample = _resample(interpolation)
    return _apply_pil(img, lambda im, f: im.rotate(angle, resample, expand, center, fillcolor=f),
                      fill)


def _affine_coefficients(center: Sequence[float], angle: float, translate: Sequence[float],
                         scale: float, shear: Sequence[float]) -> tuple[float, ...]:
    """PIL's AFFINE data: the inverse of T(center + translate) . R . S . Sh . T(-center).

    R rotates clockwise on screen (y points down) by `angle`; Sh shears by shear[0] degrees
    along x and shear[1] along y; the same convention as torchvision's affine.
    """
    a, sx, sy = (math.radians(v) for v in (angle, shear[0], shear[1]))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shear_x = np.array([[1.0, -math.tan(sx)], [0.0, 1.0]])
    shear_y = np.array([[1.0, 0.0], [-math.tan(sy), 1.0]])
    linear = scale * rot @ shear_y @ shear_x
    cx, cy = center
    forward = np.eye(3)
    forward[:2, :2] = linear
    forward[:2, 2] = np.array([cx + translate[0], cy + translate[1]]) - linear @ [cx, cy]
    inverse = np.linalg.inv(forward)
    return tuple(float(v) for v in inverse[:2].ravel())


def affine(img: Any, angle: float, translate: Sequence[float], scale: float,
           shear: float | Sequence[float],
           interpolation: InterpolationMode | str | int = InterpolationMode.NEAREST,
           fill: Any = 0, center: Sequence[float] | None = None) -> Any:
    """Rotate (clockwise, degrees), translate (pixels), scale and shear (degrees) an image."""
    _check_image(img, "affine")
    if scale <= 0:
        raise ValueError(f"affine: scale should be positive, got {scale}")
    shear = (float(shear), 0.0) if isinstance(shear, numbers.Number) else tuple(shear)
    h, w = _size(img)
    center = (w * 0.5, h * 0.5) if center is None else center
    data = _affine_coefficients(center, angle, translate, scale, shear)
    resample = _resample(interpolation)
    return _apply_pil(img, lambda im, f: im.transform(
        im.size, Image.Transform.AFFINE, data, resample, fillcolor=f), fill)


# Luma weights of ITU-R 601-2, as PIL's convert("L").
_GRAY = np.array([0.299, 0.587, 0.114])


def _to_float(img: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Channels-first float32 pixels in [0, 1] of an image, and the way back to its kind."""
    if _is_pil(img):
        mode = img.mode
        if mode not in ("L", "LA", "RGB", "RGBA"):
            raise TypeError(f"colour transforms support PIL modes L, LA, RGB and RGBA, got "
                            f"{mode}; convert the image first")
        chw = np.array(img).reshape(img.height, img.width, -1).transpose(2, 0, 1) / 255.0

        def back(x: np.ndarray) -> Any:
            hwc = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
            return Image.fromarray(hwc[..., 0] if hwc.shape[2] == 1 else hwc)
        return chw.astype(np.float32), back
    arr = img.numpy() if _is_tensor(img) else img
    integer = arr.dtype.kind in "iu"
    if _is_tensor(img):
        chw = arr if arr.ndim >= 3 else arr[None]
    else:
        chw = (arr[..., None] if arr.ndim == 2 else arr).transpose(2, 0, 1)
    chw = chw.astype(np.float32) / 255.0 if integer else chw

    def back(x: np.ndarray) -> Any:
        x = np.clip(x, 0, 1)
        if integer:
            x = np.rint(x * 255)
        x = x.astype(arr.dtype, copy=False)
        if _is_tensor(img):
            return _wrap_tensor(x if arr.ndim >= 3 else x[0])
        hwc = x.transpose(1, 2, 0)
        return hwc[..., 0] if arr.ndim == 2 else hwc
    return chw, back


def _colour(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split channels-first pixels into colour channels and alpha (LA / RGBA)."""
    channels = x.shape[-3]
    if channels in (2, 4):
        return x[..., :-1, :, :], x[..., -1:, :, :]
    return x, None


def _gray(rgb: np.ndarray) -> np.ndarray:
    if rgb.shape[-3] == 1:
        return rgb
    return np.einsum("...chw,c->...hw", rgb, _GRAY.astype(rgb.dtype))[..., None, :, :]


def _adjust(img: Any, fn: Callable[[np.ndarray], np.ndarray]) -> Any:
    x, back = _to_float(img)
    rgb, alpha = _colour(x)
    out = np.clip(fn(rgb), 0, 1).astype(x.dtype, copy=False)
    return back(out if alpha is None else np.concatenate([out, alpha], axis=-3))


def _blend(x: np.ndarray, other: np.ndarray, factor: float) -> np.ndarray:
    return factor * x + (1 - factor) * other


def adjust_brightness(img: Any, factor: float) -> Any:
    return _adjust(img, lambda x: x * factor)


def adjust_contrast(img: Any, factor: float) -> Any:
    return _adjust(img, lambda x: _blend(x, _gray(x).mean(axis=(-3, -2, -1), keepdims=True),
                                         factor))


def adjust_saturation(img: Any, factor: float) -> Any:
    return _adjust(img, lambda x: _blend(x, _gray(x), factor))


def _shift_hue(rgb: np.ndarray, shift: float) -> np.ndarray:
    if rgb.shape[-3] != 3:
        return rgb
    r, g, b = rgb[..., 0, :, :], rgb[..., 1, :, :], rgb[..., 2, :, :]
    value = rgb.max(axis=-3)
    chroma = value - rgb.min(axis=-3)
    safe = np.where(chroma > 0, chroma, 1)
    hue = np.select([chroma == 0, value == r, value == g],
                    [0.0, ((g - b) / safe) % 6, (b - r) / safe + 2], (r - g) / safe + 4) / 6
    hue = (hue + shift) % 1.0
    # HSV back to RGB: each channel is value - chroma * clamp(min(k, 4 - k), 0, 1).
    channels = []
    for n in (5, 3, 1):
        k = (n + hue * 6) % 6
        channels.append(value - chroma * np.clip(np.minimum(k, 4 - k), 0, 1))
    return np.stack(channels, axis=-3)


def adjust_hue(img: Any, hue_factor: float) -> Any:
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"adjust_hue: hue_factor should be in [-0.5, 0.5], got {hue_factor}")
    return _adjust(img, lambda x: _shift_hue(x, hue_factor))


def to_grayscale(img: Any, num_output_channels: int = 1) -> Any:
    """Luma (0.299 R + 0.587 G + 0.114 B) as 1 or 3 identical channels."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"Grayscale: num_output_channels should be 1 or 3, got "
                         f"{num_output_channels}")
    _check_image(img, "Grayscale")
    if _is_pil(img):
        gray = img.convert("L")
        return gray if num_output_channels == 1 else gray.convert("RGB")
    x, _ = _to_float(img)
    luma = _gray(_colour(x)[0])
    out = np.repeat(luma, num_output_channels, axis=-3)
    arr = img.numpy() if _is_tensor(img) else img
    if arr.dtype.kind in "iu":
        out = np.rint(out * 255)
    out = out.astype(arr.dtype, copy=False)
    if _is_tensor(img):
        return _wrap_tensor(out)
    return out.transpose(1, 2, 0) if num_output_channels == 3 or arr.ndim == 3 else out[0]
