"""Keras's image helpers: load_img, img_to_array, array_to_img and save_img (through Pillow).

Pillow is an optional extra; each function imports it when called and says how to install
it when it is missing. Arrays are (height, width, channels) in "channels_last" (Keras's
default) or (channels, height, width) in "channels_first". Files are written atomically.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from ...io.atomic import atomic_write

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img"]

_COLOR_MODES = {"rgb": "RGB", "rgba": "RGBA", "grayscale": "L"}
_FILTERS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil(what: str) -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{what} needs Pillow: pip install 'shenjing[images]' (or "
                          f"pip install pillow)") from None
    return Image


def _data_format(data_format: str | None, what: str) -> str:
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{what}: data_format must be 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format


def _name(path: Any) -> str:
    return repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else \
        f"<{type(path).__name__}>"


def load_img(path: Any, color_mode: str = "rgb", target_size: tuple[int, int] | None = None,
             interpolation: str = "nearest", keep_aspect_ratio: bool = False) -> Any:
    """A PIL image read from `path` (a file path or a binary file-like object), converted to
    `color_mode` ('rgb', 'rgba' or 'grayscale') and resized to `target_size` (height, width)
    with `interpolation`; keep_aspect_ratio crops the centre to the target's ratio first."""
    image_mod = _pil("load_img")
    if color_mode not in _COLOR_MODES:
        raise ValueError(f"load_img: color_mode must be 'rgb', 'rgba' or 'grayscale', got "
                         f"{color_mode!r}")
    if interpolation not in _FILTERS:
        raise ValueError(f"load_img: interpolation must be one of {', '.join(_FILTERS)}, got "
                         f"{interpolation!r}")
    if target_size is not None and (len(target_size) != 2 or
                                    not all(int(n) > 0 for n in target_size)):
        raise ValueError(f"load_img: target_size must be (height, width) of positive ints, "
                         f"got {target_size!r}")
    source = path
    if isinstance(path, (str, os.PathLike)):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"load_img: no image file at {_name(path)}")
        with open(path, "rb") as f:
            source = io.BytesIO(f.read())
    try:
        img = image_mod.open(source)
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"load_img: cannot read an image from {_name(path)}: {e}") from None
    mode = _COLOR_MODES[color_mode]
    if img.mode != mode and not (mode == "L" and img.mode in ("I;16", "I")):
        img = img.convert("RGBA").convert(mode) if img.mode in ("P", "LA", "PA") else \
            img.convert(mode)
    if target_size is not None:
        height, width = int(target_size[0]), int(target_size[1])
        if keep_aspect_ratio:
            img = img.crop(_centre_box(img.width, img.height, width, height))
        if img.size != (width, height):
            img = img.resize((width, height), getattr(image_mod.Resampling,
                                                      interpolation.upper()))
    return img


def _centre_box(w: int, h: int, target_w: int, target_h: int) -> tuple[int, int, int, int]:
    """The largest centred box of the target's aspect ratio inside a w x h image."""
    crop_w = min(w, int(round(h * target_w / target_h)))
    crop_h = min(h, int(round(w * target_h / target_w)))
    left, top = (w - crop_w) // 2, (h - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """A PIL image as a float32 (or `dtype`) array, (h, w, c); grayscale gets c = 1."""
    data_format = _data_format(data_format, "img_to_array")
    arr = np.asarray(img, dtype=np.dtype(dtype or "float32"))
    if arr.ndim == 2:
        arr = arr[..., None]
    elif arr.ndim != 3:
        raise ValueError(f"img_to_array: unsupported image of array shape {arr.shape}")
    return arr.transpose(2, 0, 1) if data_format == "channels_first" else arr


def array_to_img(x: Any, data_format: str | None = None, scale: bool = True,
                 dtype: Any = None) -> Any:
    """A PIL image of a 3-D array with 1 (grayscale), 3 (RGB) or 4 (RGBA) channels; with
    scale=True the values are shifted and stretched to 0..255 first, as Keras does."""
    image_mod = _pil("array_to_img")
    data_format = _data_format(data_format, "array_to_img")
    arr = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.dtype(dtype or
                                                                              "float32"))
    if arr.ndim != 3:
        raise ValueError(f"array_to_img: expected a 3-D image array (height, width, channels), "
                         f"got shape {arr.shape}")
    if data_format == "channels_first":
        arr = arr.transpose(1, 2, 0)
    if scale:
        arr = arr - arr.min()
        peak = arr.max()
        if peak != 0:
            arr = arr / peak
        arr = arr * 255
    channels = arr.shape[2]
    if channels in (3, 4):
        return image_mod.fromarray(arr.astype(np.uint8), "RGB" if channels == 3 else "RGBA")
    if channels == 1:
        if arr.max() > 255:  # 32-bit integer grayscale
            return image_mod.fromarray(arr[:, :, 0].astype(np.int32), "I")
        return image_mod.fromarray(arr[:, :, 0].astype(np.uint8), "L")
    raise ValueError(f"array_to_img: unsupported channel count {channels}; expected 1, 3 or 4")


def save_img(path: Any, x: Any, data_format: str | None = None, file_format: str | None = None,
             scale: bool = True, **kwargs: Any) -> None:
    """Write the image array `x` to `path` (format from file_format or the extension)."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    fmt = file_format or os.path.splitext(os.fspath(path))[1].lstrip(".") or None
    if fmt is None:
        raise ValueError(f"save_img: cannot tell the image format of {_name(path)}; give "
                         f"file_format= or a file extension")
    fmt = {"jpg": "JPEG"}.get(fmt.lower(), fmt.upper())
    if img.mode == "RGBA" and fmt == "JPEG":
        img = img.convert("RGB")  # JPEG has no alpha channel
    try:
        with atomic_write(path) as f:
            img.save(f, format=fmt, **kwargs)
    except (KeyError, ValueError, OSError) as e:
        raise ValueError(f"save_img: cannot write {_name(path)} as {fmt}: {e}") from None
