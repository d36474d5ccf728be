"""NumPy preprocessing for tabular and image arrays: scaling, one-hot labels, splitting.

Each scaler returns its statistics next to the scaled array, so the test set is scaled with the
training set's statistics (computing them on the test set leaks information):

    x_train, stats = standardize(x_train)
    x_test, _ = standardize(x_test, stats=stats)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..random import Generator, get_rng

__all__ = ["mean_normalize", "min_max_scale", "standardize", "to_categorical",
           "train_test_split"]

Axis = int | tuple[int, ...] | None


def _float_array(x: Any, what: str) -> np.ndarray:
    """`x` as a float array: float inputs keep their dtype, others become float32."""
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected numbers, got an array of dtype {x.dtype}")
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _check_stats(stats: dict, keys: tuple[str, ...], what: str) -> dict:
    missing = [k for k in keys if k not in stats]
    if missing:
        raise ValueError(f"{what}: stats is missing {missing}; pass the dict returned by "
                         f"{what} on the training data")
    return stats


def _safe_range(span: np.ndarray) -> np.ndarray:
    """Spans of constant features become 1, so they scale to 0 instead of NaN (as sklearn)."""
    return np.where(span == 0, 1, span).astype(span.dtype)


def standardize(x: Any, axis: Axis = 0, stats: dict | None = None
                ) -> tuple[np.ndarray, dict]:
    """(x - mean) / std along `axis` (0: per feature; None: over all values).

    Args:
        x: the data.
        axis: the axis or axes the statistics are taken over.
        stats: {"mean", "std"} from the training data; computed from `x` when None.

    Returns:
        The standardized array and {"mean", "std"} (constant features get std 1).
    """
    x = _float_array(x, "standardize")
    if stats is None:
        stats = {"mean": x.mean(axis=axis, keepdims=True),
                 "std": _safe_range(x.std(axis=axis, keepdims=True))}
    _check_stats(stats, ("mean", "std"), "standardize")
    return ((x - stats["mean"]) / stats["std"]).astype(x.dtype, copy=False), stats


def min_max_scale(x: Any, feature_range: tuple[float, float] = (0.0, 1.0), axis: Axis = 0,
                  stats: dict | None = None) -> tuple[np.ndarray, dict]:
    """Map [min, max] along `axis` linearly onto `feature_range`.

    Returns:
        The scaled array and {"min", "max"}.
    """
    low, high = feature_range
    if not low < high:
        raise ValueError(f"min_max_scale: feature_range should be (low, high) with low < high, "
                         f"got {feature_range}")
    x = _float_array(x, "min_max_scale")
    if stats is None:
        stats = {"min": x.min(axis=axis, keepdims=True), "max": x.max(axis=axis, keepdims=True)}
    _check_stats(stats, ("min", "max"), "min_max_scale")
    unit = (x - stats["min"]) / _safe_range(stats["max"] - stats["min"])
    return (unit * (high - low) + low).astype(x.dtype, copy=False), stats


def mean_normalize(x: Any, axis: Axis = 0, stats: dict | None = None
                   ) -> tuple[np.ndarray, dict]:
    """(x - mean) / (max - min) along `axis`: centred, within [-1, 1].

    Returns:
        The normalized array and {"mean", "min", "max"}.
    """
    x = _float_array(x, "mean_normalize")
    if stats is None:
        stats = {"mean": x.mean(axis=axis, keepdims=True),
                 "min": x.min(axis=axis, keepdims=True), "max": x.max(axis=axis, keepdims=True)}
    _check_stats(stats, ("mean", "min", "max"), "mean_normalize")
    out = (x - stats["mean"]) / _safe_range(stats["max"] - stats["min"])
    return out.astype(x.dtype, copy=False), stats


def to_categorical(y: Any, num_classes: int | None = None, dtype: Any = "float32"
                   ) -> np.ndarray:
    """One-hot encode integer class labels, as keras.utils.to_categorical.

    A trailing axis of size 1 is dropped first, so (N, 1) labels give (N, num_classes).
    """
    if hasattr(y, "numpy") and not isinstance(y, np.ndarray):
        y = y.numpy()
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise TypeError(f"to_categorical: expected integer class labels, got dtype {y.dtype}")
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be non-negative, found {int(y.min())}")
    largest = int(y.max()) if y.size else -1
    if num_classes is None:
        num_classes = largest + 1
    elif largest >= num_classes:
        raise ValueError(f"to_categorical: label {largest} is out of range for "
                         f"num_classes={num_classes}; expected labels in [0, {num_classes - 1}]")
    out = np.zeros((*y.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, y[..., None].astype(np.int64), 1, axis=-1)
    return out


def _take(array: Any, index: np.ndarray) -> Any:
    from ..tensor import Tensor

    if isinstance(array, (np.ndarray, Tensor)):
        return array[index]
    return [array[i] for i in index.tolist()]


def _test_count(n: int, test_size: float | int) -> int:
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"train_test_split: a float test_size should be in (0, 1), got "
                             f"{test_size}")
        count = math.ceil(test_size * n)
    else:
        count = int(test_size)
    if not 0 < count < n:
        raise ValueError(f"train_test_split: test_size={test_size} leaves {count} test and "
                         f"{n - count} training samples out of {n}; both need at least one")
    return count


def _stratified_test_indices(labels: np.ndarray, n_test: int, rng: np.random.Generator
                             ) -> np.ndarray:
    """Per class, a share of the test set proportional to the class size (largest remainder)."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"train_test_split: class {classes[counts.argmin()]!r} has only one "
                         "sample; stratify needs at least two per class")
    exact = counts * n_test / len(labels)
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n_test - take.sum()]] += 1
    picked = [rng.permutation(np.flatnonzero(inverse == c))[: take[c]]
              for c in range(len(classes))]
    return np.concatenate(picked)


def train_test_split(*arrays: Any, test_size: float | int = 0.25, stratify: Any = None,
                     shuffle: bool = True, seed: int | Generator | None = None) -> list[Any]:
    """Split arrays (same first length) into train and test parts, as sklearn's.

    Args:
        arrays: NumPy arrays, Tensors or lists with the same number of samples.
        test_size: fraction (float in (0, 1), rounded up) or number of test samples.
        stratify: labels whose class proportions both parts should keep.
        shuffle: shuffle before splitting (needed for stratify).
        seed: int or Generator for the shuffle; None draws from the global stream.

    Returns:
        [a_train, a_test, b_train, b_test, ...].
    """
    if not arrays:
        raise ValueError("train_test_split: expected at least one array")
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) != 1:
        raise ValueError(f"train_test_split: arrays have different numbers of samples "
                         f"{lengths}")
    n = lengths[0]
    n_test = _test_count(n, test_size)
    if isinstance(seed, Generator):
        rng = seed.rng
    elif seed is None:
        rng = get_rng()
    else:
        rng = np.random.default_rng(seed)
    if stratify is not None:
        if not shuffle:
            raise ValueError("train_test_split: stratify needs shuffle=True")
        labels = np.asarray(stratify.numpy() if hasattr(stratify, "numpy") else stratify)
        if len(labels) != n:
            raise ValueError(f"train_test_split: stratify has {len(labels)} labels for {n} "
                             "samples")
        test = rng.permutation(_stratified_test_indices(labels, n_test, rng))
        mask = np.ones(n, dtype=bool)
        mask[test] = False
        train = rng.permutation(np.flatnonzero(mask))
    else:
        order = rng.permutation(n) if shuffle else np.arange(n)
        train, test = order[: n - n_test], order[n - n_test:]
    out = []
    for a in arrays:
        out += [_take(a, train), _take(a, test)]
    return out
