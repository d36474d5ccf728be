"""Map-style data sets: indexable collections of samples, as torch.utils.data.

A data set only says how to get sample `i` and how many there are; batching, shuffling and
parallel loading are the DataLoader's job.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..random import Generator, get_rng

__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]


class Dataset:
    """Base class: subclasses implement `__getitem__` and `__len__`."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _num_rows(array: Any) -> int:
    shape = getattr(array, "shape", None)
    if shape is None:
        return len(array)
    if len(shape) == 0:
        raise ValueError("TensorDataset: got a 0-d tensor; expected tensors with a first "
                         "(sample) dimension")
    return int(shape[0])


class TensorDataset(Dataset):
    """Samples are the i-th rows of tensors (or NumPy arrays) sharing their first dimension."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        sizes = [_num_rows(t) for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(
                f"TensorDataset: all tensors must have the same first dimension, got sizes "
                f"{sizes}"
            )
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _num_rows(self.tensors[0])


class ConcatDataset(Dataset):
    """The samples of several data sets, one after the other."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one data set, got none")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"ConcatDataset: index out of range for {n} samples")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        offset = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][index - offset]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, (list, tuple)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def _split_lengths(n: int, lengths: Sequence[int | float]) -> list[int]:
    """Absolute lengths from ints, or from fractions summing to 1 (remainders go first)."""
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in lengths):
        counts = [int(x) for x in lengths]
        if any(c < 0 for c in counts):
            raise ValueError(f"random_split: lengths must be non-negative, got {counts}")
        if sum(counts) != n:
            raise ValueError(
                f"random_split: sum of lengths {sum(counts)} does not equal the data set's "
                f"length {n}"
            )
        return counts
    fractions = [float(x) for x in lengths]
    if any(not 0.0 <= f <= 1.0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"random_split: fractions must lie in [0, 1] and sum to 1, got {list(lengths)}; "
            "or pass integer lengths summing to the data set's length"
        )
    counts = [math.floor(n * f) for f in fractions]
    for i in range(n - sum(counts)):  # as torch: hand out the remainder round-robin
        counts[i % len(counts)] += 1
    return counts


def random_split(
    dataset: Dataset, lengths: Sequence[int | float], generator: Generator | None = None
) -> list[Subset]:
    """Split `dataset` into non-overlapping random Subsets of the given lengths.

    Args:
        dataset: the data set to split.
        lengths: sizes (ints summing to `len(dataset)`) or fractions summing to 1.
        generator: random stream; default the global one (`sj.manual_seed`).
    """
    n = len(dataset)
    counts = _split_lengths(n, lengths)
    order = get_rng(generator).permutation(n).tolist()
    subsets, start = [], 0
    for count in counts:
        subsets.append(Subset(dataset, order[start: start + count]))
        start += count
    return subsets
