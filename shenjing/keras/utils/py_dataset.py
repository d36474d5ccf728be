"""`keras.utils.PyDataset`: a batch-producing dataset that `fit` reads batch by batch,
optionally with several worker threads filling a bounded queue ahead of training."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator

__all__ = ["PyDataset", "PyDatasetBatches"]


class PyDataset:
    """Subclass it: `__getitem__(index)` returns batch `index` as (x, y) or (x, y, weights),
    `__len__` (or `num_batches`) the number of batches; `on_epoch_end` runs after each epoch.

    `workers` > 1 loads up to `max_queue_size` batches ahead on that many threads (batches
    still arrive in order). `use_multiprocessing=True` is accepted and also runs the workers
    as threads: shenjing never pickles user objects into other processes.
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        for name, v in (("workers", workers), ("max_queue_size", max_queue_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"PyDataset: {name} must be a positive int, got {v!r}")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    def _settings(self) -> tuple[int, bool, int]:
        # subclasses that forget super().__init__ still work, with one worker
        return (getattr(self, "_workers", 1), getattr(self, "_use_multiprocessing", False),
                getattr(self, "_max_queue_size", 10))

    @property
    def workers(self) -> int:
        return self._settings()[0]

    @property
    def use_multiprocessing(self) -> bool:
        return self._settings()[1]

    @property
    def max_queue_size(self) -> int:
        return self._settings()[2]

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) "
                                  f"returning one batch")

    @property
    def num_batches(self) -> int | None:
        if type(self).__len__ is not PyDataset.__len__:
            return len(self)
        return None

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__ (the number of "
                                  f"batches) or the num_batches property")

    def on_epoch_begin(self) -> None:
        """Called before each epoch."""

    def on_epoch_end(self) -> None:
        """Called after each epoch (e.g. to reshuffle)."""


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
        from ..batching import to_numpy, unpack

        self.dataset.on_epoch_begin()
        for batch in self._batches():
            x, y, sw = unpack(batch)
            yield to_numpy(x), to_numpy(y), to_numpy(sw)
        self.dataset.on_epoch_end()
