"""Keras masks of the (batch, steps) kind: which steps of a sequence are real.

Keras keeps a mask on the tensor a layer returns (`_keras_mask`); shenjing's Tensors take
no extra attributes, so the mask is kept here under a weak reference to the tensor.
Embedding(mask_zero=True) and Masking create masks, most layers pass them on, and the
recurrent layers skip the masked steps.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ...tensor import Tensor

__all__ = ["set_keras_mask", "get_keras_mask", "mask_array"]

_MASKS: dict[int, tuple] = {}  # id(tensor) -> (weakref to it, (batch, steps) bool mask)
_MAX_MASKS = 256


def set_keras_mask(tensor: Tensor, mask: np.ndarray | None) -> None:
    """Attach a Keras mask to a tensor (Keras keeps it on the tensor as `_keras_mask`)."""
    if mask is None:
        return
    _MASKS[id(tensor)] = (weakref.ref(tensor), np.asarray(mask, dtype=bool))
    while len(_MASKS) > _MAX_MASKS:  # masks live for one forward pass
        _MASKS.pop(next(iter(_MASKS)))


def get_keras_mask(tensor: Any) -> np.ndarray | None:
    """The Keras mask attached to `tensor`, or None."""
    entry = _MASKS.get(id(tensor)) if isinstance(tensor, Tensor) else None
    return entry[1] if entry is not None and entry[0]() is tensor else None


def mask_array(mask: Any) -> np.ndarray:
    """A mask given as a Tensor, array or list -> a bool ndarray."""
    return (mask.numpy() if isinstance(mask, Tensor) else np.asarray(mask)).astype(bool)
