"""`keras.utils.PyDataset`: a batch-producing dataset that `fit` reads batch by batch,
optionally with several worker threads filling a bounded queue ahead of training."""

from __future__ import annotations

from typing import Any

__all__ = ["PyDataset"]


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
