"""Image grids with torchvision.utils' names: `make_grid` and `save_image`."""

from __future__ import annotations

import math
import os

import numpy as np

from ..io.atomic import atomic_write
from ..tensor import Tensor, as_tensor

__all__ = ["make_grid", "save_image"]


def _batch(images) -> np.ndarray:
    """(B, C, H, W) float array from a tensor/array of shape (B, C, H, W), (C, H, W) or
    (H, W), or a list of (C, H, W) tensors."""
    if isinstance(images, (list, tuple)):
        images = np.stack([_array(t) for t in images])
    arr = _array(images).astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = arr[None, None]
    elif arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"make_grid: expected images of shape (B, C, H, W), (C, H, W) or "
                         f"(H, W), got {tuple(arr.shape)}")
    if arr.shape[1] == 1:
        arr = np.repeat(arr, 3, axis=1)  # gray to RGB, as torchvision
    return arr


def _array(x) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def _normalize(arr: np.ndarray, value_range, scale_each: bool) -> np.ndarray:
    def scale(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return (np.clip(a, lo, hi) - lo) / max(hi - lo, 1e-5)

    if value_range is not None:
        lo, hi = value_range
        return scale(arr, float(lo), float(hi))
    if scale_each:
        return np.stack([scale(a, float(a.min()), float(a.max())) for a in arr])
    return scale(arr, float(arr.min()), float(arr.max()))


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range: tuple | None = None, scale_each: bool = False,
              pad_value: float = 0.0) -> Tensor:
    """Tile a batch of images into one (3, H', W') image, `nrow` images per row, with
    `padding` pixels of `pad_value` around each, as torchvision.utils.make_grid."""
    if nrow < 1 or padding < 0:
        raise ValueError(f"make_grid: nrow must be >= 1 and padding >= 0, got nrow={nrow}, "
                         f"padding={padding}")
    arr = _batch(tensor)
    if normalize:
        arr = _normalize(arr.copy(), value_range, scale_each)
    b, c, h, w = arr.shape
    if b == 1:
        return as_tensor(arr[0])
    cols = min(nrow, b)
    rows = math.ceil(b / cols)
    hp, wp = h + padding, w + padding
    grid = np.full((c, rows * hp + padding, cols * wp + padding), pad_value, np.float32)
    for k in range(b):
        r, q = divmod(k, cols)
        grid[:, r * hp + padding:r * hp + padding + h, q * wp + padding:q * wp + padding + w] = \
            arr[k]
    return as_tensor(grid)


def save_image(tensor, fp, format: str | None = None, **grid_kwargs) -> None:
    """Write `make_grid(tensor, **grid_kwargs)` as an 8-bit image (values in [0, 1] map to
    0..255, as torchvision), atomically."""
    from PIL import Image

    grid = make_grid(tensor, **grid_kwargs).numpy()
    pixels = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    image = Image.fromarray(pixels)
    path = os.fspath(fp) if isinstance(fp, (str, os.PathLike)) else None
    if path is None:  # a file object
        image.save(fp, format=format)
        return
    fmt = format or os.path.splitext(path)[1].lstrip(".").upper().replace("JPG", "JPEG")
    with atomic_write(path, "wb") as f:
        image.save(f, format=fmt or "PNG")
