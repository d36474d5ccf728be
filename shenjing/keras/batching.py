"""Batches of training data for fit/evaluate/predict.

Data may be NumPy arrays (or lists/dicts of arrays for multi-input models), batched by
`shenjing.data.DataLoader`, or a DataLoader / any re-iterable of (x, y[, w]) batches,
consumed as given. Batches arrive as NumPy arrays: float64 cast to float32 as Keras does,
integer images kept (the first layer casts them).
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator

import numpy as np

from ..data import DataLoader, TensorDataset, default_collate
from ..random import Generator
from ..tensor import Tensor
from .utils.py_dataset import PyDataset

__all__ = ["Batches", "ArrayBatches", "IterableBatches", "split_validation", "to_numpy",
           "num_samples", "cast_floats", "class_weights", "unpack"]


def _to_numpy(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, Tensor):
        return x.numpy()
    if isinstance(x, (list, tuple)):
        return [_to_numpy(v) for v in x]
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return np.asarray(x.numpy())
    return np.asarray(x)


def _num_samples(x: Any) -> int:
    if isinstance(x, (list, tuple)):
        return _num_samples(x[0])
    if isinstance(x, dict):
        return _num_samples(next(iter(x.values())))
    return len(x)


def _take(x: Any, index: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, list):
        return [_take(v, index) for v in x]
    if isinstance(x, dict):
        return {k: _take(v, index) for k, v in x.items()}
    return x[index]


def _cast(x: Any) -> Any:
    """float64 -> float32 (Keras's default float type); everything else unchanged."""
    if isinstance(x, list):
        return [_cast(v) for v in x]
    if isinstance(x, dict):
        return {k: _cast(v) for k, v in x.items()}
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        return x.astype(np.float32)
    return x


def _is_arrays(x: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_arrays(v) for v in x)
    if isinstance(x, dict):
        return all(_is_arrays(v) for v in x.values())
    return isinstance(x, (np.ndarray, Tensor)) or (hasattr(x, "__array__")
                                                   and not hasattr(x, "__next__"))


def unpack(batch: Any) -> tuple:
    if isinstance(batch, (list, tuple)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return tuple(batch)
    if isinstance(batch, dict) and "x" in batch:
        return batch["x"], batch.get("y"), batch.get("sample_weight")
    return batch, None, None


def _class_weights(y: np.ndarray, class_weight: dict) -> np.ndarray:
    labels = np.argmax(y, -1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    labels = labels.astype(np.int64)
    missing = set(np.unique(labels).tolist()) - set(int(k) for k in class_weight)
    if missing:
        raise ValueError(f"class_weight has no entry for class(es) {sorted(missing)}; it "
                         f"must map every class index to a weight")
    table = np.zeros(max(max(int(k) for k in class_weight), int(labels.max(initial=0))) + 1,
                     np.float32)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    return table[labels]


def _collate_keeping_strings(samples: list) -> list:
    """default_collate per column, except that string columns (for TextVectorization or
    StringLookup as a model's first layer) stay NumPy arrays of strings."""
    return [np.stack(column) if np.asarray(column[0]).dtype.kind in "USO"
            else default_collate(list(column)) for column in zip(*samples)]


class ArrayBatches:
    """Arrays (or lists/dicts of arrays) cut into batches by `shenjing.data.DataLoader`.

    x, y and sample_weight are flattened into one `TensorDataset`, so the loader gathers each
    batch with one fancy index per array (shuffled each epoch with shenjing's global
    generator when `shuffle`), and every batch is put back into the caller's structure.
    """

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int | None,
                 shuffle: bool, steps: int | None, what: str) -> None:
        x, y, sw = _to_numpy(x), _to_numpy(y), _to_numpy(sample_weight)
        n = _num_samples(x)
        for name, v in (("y", y), ("sample_weight", sw)):
            if v is not None and _num_samples(v) != n:
                raise ValueError(f"{what}: x has {n} samples but {name} has "
                                 f"{_num_samples(v)}; they must have the same length")
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"{what}: batch_size must be a positive int, got {batch_size!r}")
        self._structure = (x, y, sw)
        leaves = _leaves(self._structure)
        # unshuffled passes (evaluate, predict) leave shenjing's global random stream alone
        strings = any(isinstance(v, np.ndarray) and v.dtype.kind in "USO" for v in leaves)
        self.loader = DataLoader(TensorDataset(*leaves), batch_size=int(batch_size),
                                 shuffle=shuffle, generator=None if shuffle else Generator(0),
                                 collate_fn=_collate_keeping_strings if strings else None) \
            if n else None
        self.num_batches = 0 if not n else len(self.loader) if steps is None else \
            min(len(self.loader), int(steps))

    def __iter__(self) -> Iterator[tuple]:
        if self.loader is None:
            return
        for b, batch in enumerate(self.loader):
            if b >= self.num_batches:
                break
            yield _rebuild(self._structure, iter([t if isinstance(t, np.ndarray) else t.numpy()
                                                  for t in batch]))


class IterableBatches:
    """A DataLoader, generator or other iterable of (x, y[, sample_weight]) batches."""

    def __init__(self, source: Any, steps: int | None, what: str) -> None:
        self.source = source
        self._iterator = None
        try:
            n = len(source)
        except TypeError:
            n = None
        self.num_batches = n if steps is None else (int(steps) if n is None else
                                                     min(n, int(steps)))
        if self.num_batches is None and hasattr(source, "__next__"):
            raise ValueError(f"{what}: a generator or iterator of batches needs "
                             f"steps_per_epoch (the number of batches per epoch)")

    def __iter__(self) -> Iterator[tuple]:
        it = self._iterator if hasattr(self.source, "__next__") else None
        if it is None:  # a generator is consumed across epochs, a DataLoader restarted
            it = iter(self.source)
            if hasattr(self.source, "__next__"):
                self._iterator = it
        for b, batch in enumerate(it):
            x, y, sw = unpack(batch)
            yield _to_numpy(x), _to_numpy(y), _to_numpy(sw)
            if self.num_batches is not None and b + 1 >= self.num_batches:
                break


class Batches:
    """One epoch's batches for fit/evaluate/predict: float64 cast to float32 (Keras's
    default float type) and class weights folded into the sample weights."""

    def __init__(self, x: Any, y: Any = None, sample_weight: Any = None,
                 batch_size: int | None = 32, shuffle: bool = False, steps: int | None = None,
                 class_weight: dict | None = None, what: str = "fit") -> None:
        if _is_arrays(x):
            self.source: Any = ArrayBatches(x, y, sample_weight, batch_size, shuffle, steps,
                                            what)
        elif y is not None:
            raise ValueError(f"{what}: when x is a DataLoader or another iterable of "
                             f"batches, y must be None (the batches carry the targets)")
        elif isinstance(x, PyDataset):  # fed batch by batch, by index (workers read ahead)
            self.source = PyDatasetBatches(x, steps, what)
        else:
            self.source = IterableBatches(x, steps, what)
        self.num_batches = self.source.num_batches
        self.class_weight = class_weight

    def __iter__(self) -> Iterator[tuple]:
        for x, y, sw in self.source:
            x, y = _cast(x), _cast(y)
            if self.class_weight is not None and y is not None:
                cw = _class_weights(np.asarray(y), self.class_weight)
                sw = cw if sw is None else sw * cw
            yield x, y, sw


def _leaves(obj: Any) -> list[np.ndarray]:
    """The arrays inside nested tuples, lists and dicts, in order (None skipped)."""
    if obj is None:
        return []
    if isinstance(obj, (list, tuple)):
        return [a for o in obj for a in _leaves(o)]
    if isinstance(obj, dict):
        return [a for k in obj for a in _leaves(obj[k])]
    return [obj]


def _rebuild(like: Any, arrays: Iterator) -> Any:
    """`like`'s structure with its arrays taken in order from `arrays` (inverse of _leaves)."""
    if like is None:
        return None
    if isinstance(like, (list, tuple)):
        return type(like)(_rebuild(o, arrays) for o in like)
    if isinstance(like, dict):
        return {k: _rebuild(v, arrays) for k, v in like.items()}
    return next(arrays)


def split_validation(x: Any, y: Any, sw: Any, split: float) -> tuple:
    if not 0.0 < split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {split}")
    if not _is_arrays(x):
        raise ValueError("validation_split is only supported for NumPy arrays; pass "
                         "validation_data for a DataLoader")
    x, y, sw = _to_numpy(x), _to_numpy(y), _to_numpy(sw)
    n = _num_samples(x)
    at = int(math.floor(n * (1.0 - split)))
    if at == 0 or at == n:
        raise ValueError(f"validation_split={split} leaves an empty training or validation "
                         f"set with {n} samples")
    first, last = slice(0, at), slice(at, n)
    return (_take(x, first), _take(y, first), _take(sw, first)), \
        (_take(x, last), _take(y, last), _take(sw, last))



to_numpy, num_samples, cast_floats, class_weights = _to_numpy, _num_samples, _cast, _class_weights


class PyDatasetBatches:
    """One epoch of a PyDataset's batches for fit/evaluate/predict, in index order."""

    def __init__(self, dataset: PyDataset, steps: int | None, what: str) -> None:
        n = dataset.num_batches
        if n is None and steps is None:
            raise ValueError(f"{what}: a PyDataset without __len__ or num_batches needs "
                             f"steps_per_epoch (the number of batches per epoch)")
        if n is not None and (not isinstance(n, int) or n < 0):
            raise ValueError(f"{what}: the PyDataset's length must be a non-negative int, "
                             f"got {n!r}")
        self.dataset = dataset
        self.num_batches = n if steps is None else (int(steps) if n is None
                                                    else min(n, int(steps)))

    def _batches(self) -> Iterator[Any]:
        workers, _, queue_size = self.dataset._settings()
        if workers <= 1:
            for i in range(self.num_batches):
                yield self.dataset[i]
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque[Future] = deque()
            nxt = 0
            while nxt < self.num_batches or pending:
                while nxt < self.num_batches and len(pending) < queue_size:
                    pending.append(pool.submit(self.dataset.__getitem__, nxt))
                    nxt += 1
                yield pending.popleft().result()

    def __iter__(self) -> Iterator[tuple]:
        self.dataset.on_epoch_begin()
        for batch in self._batches():
            x, y, sw = unpack(batch)
            yield to_numpy(x), to_numpy(y), to_numpy(sw)
        self.dataset.on_epoch_end()
