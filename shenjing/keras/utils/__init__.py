"""`keras.utils`: to_categorical, pad_sequences, PyDataset, plot_model, split_dataset,
set_random_seed, normalize, Progbar, the image helpers (load_img, img_to_array, array_to_img,
save_img) and the serialization registry."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from ...data.preprocessing import to_categorical
from ...random import manual_seed
from ..progbar import Progbar
from ..registry import custom_object_scope, get_registered_object, register_keras_serializable
from .dataset_utils import split_dataset
from .directory import image_dataset_from_directory, text_dataset_from_directory
from .image_utils import array_to_img, img_to_array, load_img, save_img
from .plotting import model_to_dot, plot_model
from .py_dataset import PyDataset
from .sequence import pad_sequences

Sequence = PyDataset  # Keras 2's name for the same idea

__all__ = ["to_categorical", "Progbar", "set_random_seed", "normalize", "pad_sequences",
           "PyDataset", "Sequence", "plot_model", "model_to_dot", "split_dataset",
           "image_dataset_from_directory", "text_dataset_from_directory",
           "register_keras_serializable", "custom_object_scope", "get_registered_object",
           "load_img", "img_to_array", "array_to_img", "save_img"]


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's global and shenjing's generators (weights, dropout, shuffling)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"set_random_seed: expected an int seed, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    manual_seed(int(seed))


def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    """Scale `x` to unit L-`order` norm along `axis` (zero vectors stay zero)."""
    x = np.asarray(x)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    norm = np.where(norm == 0, 1, norm)
    return (x / norm).astype(x.dtype if x.dtype.kind == "f" else np.float32)
