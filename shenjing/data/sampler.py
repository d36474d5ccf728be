"""Samplers: the order in which a DataLoader visits a data set's indices, as torch.utils.data.

Random samplers draw from a `shenjing.random.Generator` when given one, else from the global
stream, so `sj.manual_seed` makes the order reproducible. Each pass draws afresh: two epochs
differ, two runs with the same seed agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized

import numpy as np

from ..random import Generator, get_rng

__all__ = [
    "BatchSampler",
    "DistributedSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
]


class Sampler:
    """Base class: an iterable of indices (or of index lists, for batch samplers)."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


def _check_positive_int(name: str, value: object) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} should be a positive integer, got {value!r}")
    return int(value)


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices, or `num_samples` draws with replacement."""

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if num_samples is not None:
            _check_positive_int("RandomSampler: num_samples", num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        rng = get_rng(self.generator)
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        # Without replacement and num_samples > n, torch chains whole permutations.
        chunks = [rng.permutation(n) for _ in range(-(-self.num_samples // max(n, 1)))]
        order = np.concatenate(chunks)[: self.num_samples] if chunks else np.empty(0, int)
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        order = get_rng(self.generator).permutation(len(self.indices))
        return (self.indices[i] for i in order.tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices drawn with probability proportional to `weights`."""

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or len(w) == 0 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() == 0:
            raise ValueError(
                "WeightedRandomSampler: weights must be a non-empty 1-D sequence of finite, "
                f"non-negative numbers with a positive sum, got shape {w.shape}"
            )
        self.weights = w
        self.num_samples = _check_positive_int("WeightedRandomSampler: num_samples", num_samples)
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                f"from {np.count_nonzero(w)} indices with non-zero weight"
            )
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        p = self.weights / self.weights.sum()
        rng = get_rng(self.generator)
        drawn = rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)
        return iter(drawn.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size`."""

    def __init__(self, sampler: Sampler | Sequence[int], batch_size: int, drop_last: bool) -> None:
        self.sampler = sampler
        self.batch_size = _check_positive_int("BatchSampler: batch_size", batch_size)
        self.drop_last = bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class DistributedSampler(Sampler):
    """This rank's share of a data set's indices, as torch.utils.data.DistributedSampler.

    Every rank draws the same permutation (from `seed + epoch`; call `set_epoch` at the start
    of each epoch for a new order) and takes every `num_replicas`-th index from position
    `rank`. The list is padded with its own first indices to a multiple of `num_replicas`
    (or cut, with `drop_last`), so all ranks see the same number of samples and so run the same
    number of steps, which data-parallel training needs. The partitions are torch's, index for
    index, given the same permutation.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from .. import distributed

            if not distributed.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "shenjing.distributed.init_process_group() first")
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        num_replicas = _check_positive_int("DistributedSampler: num_replicas", num_replicas)
        if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or \
                not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in the "
                             f"interval [0, {num_replicas - 1}]")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"DistributedSampler: seed should be a non-negative integer, got "
                             f"{seed!r}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % num_replicas:
            self.num_samples = -(-(n - num_replicas) // num_replicas)
        else:
            self.num_samples = -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of this epoch (the same on every rank)."""
        self.epoch = int(epoch)

    def permutation(self) -> list[int]:
        """The whole data set's order for the current epoch, before it is split."""
        n = len(self.dataset)
        if not self.shuffle:
            return list(range(n))
        return np.random.default_rng(self.seed + self.epoch).permutation(n).tolist()

    def __iter__(self) -> Iterator[int]:
        indices = self.permutation()
        if self.drop_last:
            indices = indices[: self.total_size]
        elif indices:
            missing = self.total_size - len(indices)
            indices += (indices * -(-missing // len(indices)))[:missing]
        return iter(indices[self.rank: self.total_size: self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples
