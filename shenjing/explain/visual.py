"""Drawing an attribution map over its image: a heat colour map blended into the picture."""

from __future__ import annotations

import numpy as np

__all__ = ["heatmap_colors", "overlay"]

# (position, r, g, b): dark blue -> blue -> cyan -> yellow -> red, a jet-like ramp
_STOPS = np.array([(0.0, 0, 0, 128), (0.25, 0, 64, 255), (0.5, 0, 255, 255),
                   (0.75, 255, 255, 0), (1.0, 255, 0, 0)], dtype=np.float64)


def heatmap_colors(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 colours."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0, 1)
    channels = [np.interp(v, _STOPS[:, 0], _STOPS[:, c]) for c in (1, 2, 3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def overlay(image: np.ndarray, attribution: np.ndarray, alpha: float = 0.75,
            scale: int = 1) -> np.ndarray:
    """Blend the attribution map (H, W; scaled to [0, 1] by its own maximum of |value|)
    over the image ((C, H, W) or (H, W) floats in [0, 1]); return (H*scale, W*scale, 3) uint8.
    A pixel's colour weight is alpha * sqrt(map), so weak but non-zero attributions still
    show; where the map is zero the image shows through unchanged."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3:
        img = img.mean(axis=0) if img.shape[0] == 1 else img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    heat = np.abs(np.asarray(attribution, dtype=np.float64))
    if heat.shape != img.shape[:2]:
        raise ValueError(f"overlay: the map has shape {heat.shape}, the image "
                         f"{img.shape[:2]}; they must match")
    peak = heat.max()
    heat = heat / peak if peak > 0 else heat
    weight = alpha * np.sqrt(heat)[..., None]
    blended = (1 - weight) * np.clip(img, 0, 1) * 255 + weight * heatmap_colors(heat)
    out = blended.round().clip(0, 255).astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out
