"""`image_dataset_from_directory` and `text_dataset_from_directory`: class folders of files
turned into a PyDataset of (inputs, labels) batches that `fit` reads directly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .py_dataset import PyDataset

__all__ = ["DirectoryDataset", "image_dataset_from_directory", "text_dataset_from_directory"]


class DirectoryDataset(PyDataset):
    """Batches of files read on demand; `class_names` and `file_paths` as Keras gives them."""

    def __init__(self, paths: list[str], labels: np.ndarray | None, class_names: list[str],
                 read: Callable[[str], Any], batch_size: int | None, shuffle: bool,
                 seed: int | None, label_mode: str | None) -> None:
        super().__init__()
        self.file_paths, self.class_names = paths, class_names
        self._labels, self._read = labels, read
        self._batch_size = batch_size or max(len(paths), 1)
        self._shuffle, self._rng = shuffle, np.random.default_rng(seed)
        self._label_mode = label_mode
        self._order = np.arange(len(paths))
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.file_paths) // self._batch_size)

    def on_epoch_end(self) -> None:
        if self._shuffle:
            self._order = self._rng.permutation(len(self.file_paths))

    def _encoded(self, idx: np.ndarray) -> np.ndarray:
        y = self._labels[idx]
        if self._label_mode == "categorical":
            return np.eye(len(self.class_names), dtype=np.float32)[y]
        if self._label_mode == "binary":
            return y.astype(np.float32)[:, None]
        return y.astype(np.int32)

    def __getitem__(self, index: int) -> Any:
        idx = self._order[index * self._batch_size:(index + 1) * self._batch_size]
        x = np.stack([self._read(self.file_paths[i]) for i in idx])
        return x if self._labels is None or self._label_mode is None else \
            (x, self._encoded(idx))


def _scan(directory: str | os.PathLike, extensions: tuple[str, ...], class_names: Any,
          what: str) -> tuple[list[str], np.ndarray, list[str]]:
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{what}: {root} is not a folder; expected "
                                f"<directory>/<class name>/<files>")
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    names = list(class_names) if class_names is not None else found
    missing = set(names) - set(found)
    if missing:
        raise ValueError(f"{what}: class_names {sorted(missing)} are not folders of {root}")
    paths, labels = [], []
    for label, name in enumerate(names):
        for dirpath, _, files in sorted(os.walk(root / name)):
            for f in sorted(files):
                if f.lower().endswith(extensions):
                    paths.append(os.path.join(dirpath, f))
                    labels.append(label)
    if not paths:
        raise ValueError(f"{what}: no files ending in {extensions} under {root}/<class>/")
    return paths, np.asarray(labels, np.int64), names


def _subset(paths: list[str], labels: np.ndarray, validation_split: float | None,
            subset: str | None, seed: int | None, what: str) -> list[tuple]:
    if not validation_split:
        if subset is not None:
            raise ValueError(f"{what}: subset={subset!r} needs validation_split")
        return [(paths, labels)]
    if subset not in ("training", "validation", "both"):
        raise ValueError(f"{what}: subset must be 'training', 'validation' or 'both' with "
                         f"validation_split, got {subset!r}")
    if seed is None:
        raise ValueError(f"{what}: validation_split needs a seed so both subsets are cut from "
                         f"the same shuffled order")
    order = np.random.RandomState(seed).permutation(len(paths))
    cut = len(paths) - int(validation_split * len(paths))
    parts = {"training": order[:cut], "validation": order[cut:]}
    chosen = ["training", "validation"] if subset == "both" else [subset]
    return [([paths[i] for i in parts[s]], labels[parts[s]]) for s in chosen]


def _label_mode(label_mode: str | None, n_classes: int, what: str) -> str | None:
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f"{what}: label_mode must be 'int', 'categorical', 'binary' or "
                         f"None, got {label_mode!r}")
    if label_mode == "binary" and n_classes != 2:
        raise ValueError(f"{what}: label_mode='binary' needs exactly 2 classes, found "
                         f"{n_classes}")
    return label_mode


def image_dataset_from_directory(directory: str | os.PathLike, labels: Any = "inferred",
                                 label_mode: str | None = "int", class_names: Any = None,
                                 color_mode: str = "rgb", batch_size: int | None = 32,
                                 image_size: tuple[int, int] = (256, 256), shuffle: bool = True,
                                 seed: int | None = None, validation_split: float | None = None,
                                 subset: str | None = None, interpolation: str = "bilinear",
                                 **kwargs: Any) -> Any:
    """Images (float32, batch x height x width x channels, values 0-255) with labels from
    their class folder; with subset='both', a (training, validation) pair."""
    from PIL import Image

    what = "image_dataset_from_directory"
    modes = {"rgb": "RGB", "grayscale": "L", "rgba": "RGBA"}
    if color_mode not in modes:
        raise ValueError(f"{what}: color_mode must be 'rgb', 'grayscale' or 'rgba', got "
                         f"{color_mode!r}")
    resample = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST,
                "bicubic": Image.BICUBIC}.get(interpolation)
    if resample is None:
        raise ValueError(f"{what}: interpolation must be 'bilinear', 'nearest' or 'bicubic'")
    paths, y, names = _scan(directory, (".png", ".jpg", ".jpeg", ".bmp", ".gif"), class_names,
                            what)
    mode = _label_mode(None if labels is None else label_mode, len(names), what)

    def read(path: str) -> np.ndarray:
        with Image.open(path) as img:
            img = img.convert("RGBA").convert(modes[color_mode]) if img.mode in (
                "P", "LA") else img.convert(modes[color_mode])
            arr = np.asarray(img.resize((image_size[1], image_size[0]), resample), np.float32)
        return arr[..., None] if arr.ndim == 2 else arr

    parts = [DirectoryDataset(p, lab, names, read, batch_size, shuffle, seed, mode)
             for p, lab in _subset(paths, y, validation_split, subset, seed, what)]
    return tuple(parts) if len(parts) == 2 else parts[0]


def text_dataset_from_directory(directory: str | os.PathLike, labels: Any = "inferred",
                                label_mode: str | None = "int", class_names: Any = None,
                                batch_size: int | None = 32, max_length: int | None = None,
                                shuffle: bool = True, seed: int | None = None,
                                validation_split: float | None = None, subset: str | None = None,
                                **kwargs: Any) -> Any:
    """.txt files as batches of strings (a NumPy object array) with class-folder labels."""
    what = "text_dataset_from_directory"
    paths, y, names = _scan(directory, (".txt",), class_names, what)
    mode = _label_mode(None if labels is None else label_mode, len(names), what)

    def read(path: str) -> str:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return text[:max_length] if max_length else text

    parts = [DirectoryDataset(p, lab, names, lambda path: np.asarray(read(path), object),
                              batch_size, shuffle, seed, mode)
             for p, lab in _subset(paths, y, validation_split, subset, seed, what)]
    return tuple(parts) if len(parts) == 2 else parts[0]
