"""keras.distribution: data-parallel `fit` across MPI ranks, with Keras 3's names.

Start the processes with `mpirun -n N python train.py` (or `shenjing.distributed.launch`);
in the script::

    keras.distribution.set_distribution(keras.distribution.DataParallel())
    model.fit(x, y, batch_size=64)   # 64 is the global batch; each rank trains on its share

As in Keras 3, `batch_size` is the global batch: every rank takes its contiguous share of
each batch, computes the gradients of its share, and before each optimizer step the gradients
are averaged over the ranks, weighted by the share sizes, so N ranks make the same step as
one process on the whole batch. Rank 0's weights are broadcast on the first step. Validation
and evaluation run whole on every rank (the replicas are identical); the training logs shown
by each rank are its own share's. The averaging runs after backward as one all-reduce per
bucket of weights (the PyTorch-style `DistributedDataParallel` overlaps it with backward).

`fit` calls `local_batch` and `average_gradients` (two lines in keras/training.py); both do
nothing unless a DataParallel distribution is set or its scope is active.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import distributed

__all__ = [
    "DataParallel",
    "Distribution",
    "average_gradients",
    "distribution",
    "initialize",
    "list_devices",
    "local_batch",
    "set_distribution",
]

_BUCKET_BYTES = 25 * 2**20
_current: Distribution | None = None
_synced_models: weakref.WeakSet = weakref.WeakSet()
_shares: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def initialize(job_addresses: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Join the MPI job (Keras 3's multi-host entry point; the addresses come from mpirun)."""
    if job_addresses is not None:
        raise ValueError("keras.distribution.initialize: job_addresses is not used; list the "
                         "hosts in mpirun's host file instead (mpirun --hostfile hosts ...)")
    if not distributed.is_initialized():
        distributed.init_process_group(backend="mpi", world_size=num_processes or -1,
                                       rank=-1 if process_id is None else process_id)


def list_devices(device_type: str | None = None) -> list[str]:
    """One CPU device per MPI rank ("cpu:0", "cpu:1", ...); only "cpu" exists here."""
    if device_type not in (None, "cpu", "CPU"):
        raise ValueError(f"list_devices: device_type {device_type!r} is not available; "
                         f"shenjing runs on the CPU ('cpu')")
    size = distributed.get_world_size() if distributed.is_initialized() else 1
    return [f"cpu:{i}" for i in range(size)]


class Distribution:
    """Base class: how `fit` spreads its work; `scope()` makes it current for a block."""

    @contextlib.contextmanager
    def scope(self) -> Iterator[Distribution]:
        global _current
        previous = _current
        _current = self
        try:
            yield self
        finally:
            _current = previous


class DataParallel(Distribution):
    """Replicate the model on every MPI rank and split each batch between them.

    Args:
        device_mesh: not supported (one replica per rank); pass None.
        devices: the devices to use; must be all of `list_devices()` (one per rank).
        auto_shard_dataset: accepted for Keras compatibility; batches are always split.
    """

    def __init__(self, device_mesh: Any = None, devices: list[str] | None = None,
                 auto_shard_dataset: bool = True) -> None:
        if device_mesh is not None:
            raise ValueError("DataParallel: device_mesh is not supported; shenjing runs one "
                             "replica per MPI rank (start the job with mpirun -n N)")
        initialize()
        available = list_devices()
        if devices is not None and list(devices) != available:
            raise ValueError(f"DataParallel: devices must be all the ranks' devices "
                             f"{available}, got {list(devices)}")
        self.devices = available
        self.auto_shard_dataset = auto_shard_dataset

    @property
    def num_replicas(self) -> int:
        return len(self.devices)

    def __repr__(self) -> str:
        return f"DataParallel(devices={self.devices})"


def set_distribution(value: Distribution | None) -> None:
    """Make `value` the distribution every `fit` uses (None: single process again)."""
    global _current
    if value is not None and not isinstance(value, Distribution):
        raise TypeError(f"set_distribution: expected a keras.distribution.Distribution or None, "
                        f"got {type(value).__name__}")
    _current = value


def distribution() -> Distribution | None:
    """The current distribution (None when training runs in one process)."""
    return _current


def _active() -> DataParallel | None:
    return _current if isinstance(_current, DataParallel) else None


def _take_rows(value: Any, rows: slice) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _take_rows(v, rows) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_take_rows(v, rows) for v in value)
    return value[rows]


def _rows(value: Any) -> int:
    if isinstance(value, dict):
        return _rows(next(iter(value.values())))
    if isinstance(value, (list, tuple)):
        return _rows(value[0])
    return len(value)


def local_batch(model: Any, x: Any, y: Any, sample_weight: Any) -> tuple:
    """This rank's contiguous share of a global batch (unchanged without DataParallel).

    On the model's first step it also makes every replica start from rank 0's weights.
    """
    strategy = _active()
    if strategy is None:
        return x, y, sample_weight
    size, rank = distributed.get_world_size(), distributed.get_rank()
    total = _rows(x)
    if total < size:
        raise ValueError(f"fit under DataParallel: a batch of {total} samples cannot be split "
                         f"over {size} ranks; use a batch_size (and data size) of at least "
                         f"{size} per batch")
    lo, hi = total * rank // size, total * (rank + 1) // size
    rows = slice(lo, hi)
    x, y, sample_weight = (_take_rows(v, rows) for v in (x, y, sample_weight))
    if model not in _synced_models:
        if not getattr(model, "built", True):
            model.predict_on_batch(x)  # build the weights before they are broadcast
        _broadcast_from_rank0(model)
        _synced_models.add(model)
    _shares[model] = (hi - lo) / total
    return x, y, sample_weight


def _broadcast_from_rank0(model: Any) -> None:
    tensors = list(model.parameters())
    if hasattr(model, "buffers"):
        tensors += [b for b in model.buffers() if b is not None]
    works = [distributed.broadcast(t, src=0, async_op=True) for t in tensors]
    for work in works:
        work.wait()


def average_gradients(model: Any, params: list) -> None:
    """Replace each gradient by the share-weighted average over the ranks (no-op without
    DataParallel): sum over ranks of (share of the batch) x (gradient of the share's mean
    loss), which is the gradient of the whole batch's mean loss."""
    if _active() is None or model not in _shares:
        return
    import shenjing

    share = _shares[model]
    for group in _buckets(list(params)):  # the same order on every rank
        dtype = group[0].numpy().dtype
        flat = np.concatenate([(p.grad.numpy() if p.grad is not None else
                                np.zeros(p.shape, dtype)).reshape(-1).astype(dtype, copy=False)
                               for p in group]) * dtype.type(share)
        total, request = distributed.all_reduce_array(flat)
        distributed.wait_all([request], "keras DataParallel gradient all-reduce")
        start = 0
        for p in group:
            n = int(np.prod(p.shape))
            p.grad = shenjing.from_numpy(total[start:start + n].reshape(p.shape).copy())
            start += n


def _buckets(params: list) -> list[list]:
    """Consecutive groups of one dtype and at most _BUCKET_BYTES each."""
    groups: list[list] = []
    size = 0
    for p in params:
        nbytes = p.numpy().nbytes
        if not groups or size + nbytes > _BUCKET_BYTES or \
                p.numpy().dtype != groups[-1][0].numpy().dtype:
            groups.append([])
            size = 0
        groups[-1].append(p)
        size += nbytes
    return groups
