"""`keras.utils.split_dataset`: cut arrays (or tuples/dicts of arrays) into two parts."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["split_dataset"]


def _leaves_len(data: Any) -> int:
    if isinstance(data, (list, tuple)):
        lengths = {_leaves_len(d) for d in data}
        if len(lengths) != 1:
            raise ValueError(f"split_dataset: the arrays have different lengths {lengths}")
        return lengths.pop()
    if isinstance(data, dict):
        return _leaves_len(tuple(data.values()))
    return len(data)


def _take(data: Any, index: np.ndarray) -> Any:
    if isinstance(data, tuple):
        return tuple(_take(d, index) for d in data)
    if isinstance(data, dict):
        return {k: _take(v, index) for k, v in data.items()}
    return np.asarray(data)[index]


def _count(size: Any, n: int, name: str) -> int | None:
    if size is None:
        return None
    if isinstance(size, float) and 0.0 < size < 1.0:
        return int(round(size * n))
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and 0 < size <= n:
        return int(size)
    raise ValueError(f"split_dataset: {name} must be a float in (0, 1) or an int in [1, {n}], "
                     f"got {size!r}")


def split_dataset(dataset: Any, left_size: Any = None, right_size: Any = None,
                  shuffle: bool = False, seed: int | None = None) -> tuple:
    """Split a NumPy array, or a tuple/dict of them, into (left, right) by sizes given as
    fractions or counts (one may be None: the rest); `shuffle` mixes samples first."""
    n = _leaves_len(dataset)
    left, right = _count(left_size, n, "left_size"), _count(right_size, n, "right_size")
    if left is None and right is None:
        left = int(round(0.5 * n))
    if left is None:
        left = n - right
    if right is None:
        right = n - left
    if left + right > n:
        raise ValueError(f"split_dataset: left ({left}) + right ({right}) samples exceed the "
                         f"{n} available")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    return _take(dataset, order[:left]), _take(dataset, order[left:left + right])
