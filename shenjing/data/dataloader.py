"""DataLoader: batches of samples from a data set, optionally decoded in parallel.

Parallel loading uses threads, not processes. Measured on the 1,906-image emoji ImageFolder
(64x64 PNGs, seed 004's Resize(227) + ToTensor, batch 64, one epoch; 2-vCPU dev box, other
sessions running; seconds, median of 5-7 interleaved runs):

    load average        num_workers=0   2 threads   2 processes (fork Pool, pickled batches)
    ~1.5                     2.83          1.61         7.41
    ~8 (busy)                5.94          5.41        14.63

With ToTensor only (no resize; load ~7) threads tie with one thread (0.50 vs 0.51 s) and
processes are slower (0.77 s): decoding a 64x64 PNG is mostly Python overhead that holds the
GIL, so there is nothing to overlap. Threads win where the work is in C
(Pillow's resampling and decoders and NumPy's copies release the GIL); processes lose because
every float32 batch is pickled back to the parent (about 1.2 GB per epoch here) and the pool
forks. Threads also accept unpicklable datasets and transforms (lambdas, open files).

Interrupts: the worker threads are daemon threads that are never joined on the way out, and
the calling thread waits for each batch in short, interruptible slices. Ctrl-C (or `break`, or an
error) ends the loop at once even while a worker sits in a slow or never-returning
`__getitem__`; the abandoned worker finishes its item in the background and then exits, and it
never keeps the process alive (concurrent.futures' pool joins its threads at exit, which made a
stuck item cost three Ctrl-Cs).

Determinism: the batch order comes from the sampler, drawn in the calling thread; random
transforms draw from a generator seeded per batch from (epoch seed, batch number), so a given
seed gives the same batches, sample for sample, whatever `num_workers` is.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import numpy as np

from ..random import Generator, get_rng
from .dataset import Dataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from .transforms import use_rng

__all__ = ["DataLoader", "default_collate", "default_convert"]


def _from_array(array: np.ndarray) -> Any:
    from ..tensor import from_numpy

    return from_numpy(np.ascontiguousarray(array))


def _is_tensor(x: Any) -> bool:
    from ..tensor import Tensor

    return isinstance(x, Tensor)


def _stack(arrays: Sequence[np.ndarray], what: str) -> np.ndarray:
    first = arrays[0].shape
    for position, a in enumerate(arrays):
        if a.shape != first:
            raise ValueError(
                f"default_collate: {what} in a batch must have the same shape to be stacked, "
                f"got {first} at position 0 and {a.shape} at position {position}; resize or crop "
                "them (e.g. transforms.Resize + CenterCrop) or pass a collate_fn that pads"
            )
    return np.stack(arrays)


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch, as torch's default_collate.

    Tensors and NumPy arrays are stacked along a new first dimension; NumPy scalars keep their
    dtype; Python floats become float64, ints int64 and bools bool tensors; strings stay a
    list; dicts, tuples, lists and namedtuples are collated field by field (tuples and lists
    come back as lists, as in torch).
    """
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if _is_tensor(elem):
        return _from_array(_stack([t.numpy() for t in batch], "tensors"))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "USO":
            raise TypeError(f"default_collate: cannot make a tensor of NumPy arrays of dtype "
                            f"{elem.dtype}; expected numbers")
        return _from_array(_stack(batch, "arrays"))
    if isinstance(elem, np.generic):
        return _from_array(np.array(batch))
    if isinstance(elem, bool):
        return _from_array(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return _from_array(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return _from_array(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        sizes = {len(sample) for sample in batch}
        if len(sizes) != 1:
            raise ValueError(f"default_collate: each sample in the batch should have the same "
                             f"number of fields, got lengths {sorted(sizes)}")
        return [default_collate(list(field)) for field in zip(*batch)]
    hint = "; add transforms.ToTensor() to the transform" if "PIL" in type(elem).__module__ else ""
    raise TypeError(
        f"default_collate: batch must contain tensors, NumPy arrays, numbers, strings, dicts or "
        f"lists; found {type(elem).__module__}.{type(elem).__name__}{hint}"
    )


def default_convert(data: Any) -> Any:
    """NumPy arrays to tensors, recursing into containers (torch's default_convert)."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "USO":
        return _from_array(data)
    if isinstance(data, Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return [default_convert(d) for d in data]
    return data


def _gather_arrays(dataset: Dataset, indices: list[int]) -> tuple | None:
    """A batch of a (Subset of a) TensorDataset by one fancy index per tensor, or None.

    Equal to default_collate over the single samples, without a Python loop per sample.
    """
    while type(dataset) is Subset:
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset:
        return None
    arrays = [t.numpy() if _is_tensor(t) else t for t in dataset.tensors]
    if not all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in arrays):
        return None
    index = np.asarray(indices, dtype=np.int64)
    n = len(arrays[0])
    if index.size and (index.min() < -n or index.max() >= n):
        return None  # the per-sample path reports the bad index
    return tuple(_from_array(a[index]) for a in arrays)


def _with_context(error: BaseException, context: str) -> BaseException:
    """A copy of `error` (same type when possible) whose message starts with `context`."""
    message = f"{context}: {type(error).__name__}: {error}"
    try:
        wrapped = type(error)(message)
    except (TypeError, ValueError):  # a constructor that wants other arguments
        return RuntimeError(message)
    return wrapped if message in str(wrapped) else RuntimeError(message)


_WAIT_SLICE_S = 0.1  # the longest the calling thread blocks without a chance to see a signal


def _interruptible_result(future: Future) -> Any:
    """`future.result()`, waiting in short slices so that Ctrl-C is seen at once everywhere."""
    while not wait([future], timeout=_WAIT_SLICE_S, return_when=FIRST_COMPLETED).done:
        pass
    return future.result()


class _DaemonPool:
    """Daemon threads that run submitted calls; closing never waits for a call in progress.

    Unlike concurrent.futures.ThreadPoolExecutor, whose threads are joined at shutdown and at
    interpreter exit, a worker stuck in `__getitem__` can neither delay the loop's end nor keep
    the process alive.
    """

    def __init__(self, num_threads: int) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()
        self.threads = [threading.Thread(target=self._work, name=f"shenjing-data_{i}",
                                         daemon=True) for i in range(num_threads)]
        for thread in self.threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue `fn(*args)`; its result or exception arrives in the returned Future."""
        if self._closed.is_set():
            raise RuntimeError("DataLoader: the worker pool is closed")
        future: Future = Future()
        self._jobs.put((future, fn, args))
        return future

    def close(self) -> None:
        """Ask every worker to stop after its current call; returns without waiting."""
        self._closed.set()
        for _ in self.threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while not self._closed.is_set():
            job = self._jobs.get()
            if job is None or self._closed.is_set():
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as error:  # handed to the calling thread, which re-raises it
                future.set_exception(error)
            else:
                future.set_result(result)
            del future, fn, args, job  # drop the batch before blocking on the next job


class DataLoader:
    """Iterates over a data set in batches, as torch.utils.data.DataLoader.

    Args:
        dataset: a map-style data set (`__getitem__` and `__len__`).
        batch_size: samples per batch.
        shuffle: visit the samples in a new random order each epoch.
        sampler: the order of indices (excludes `shuffle`).
        batch_sampler: yields whole lists of indices (excludes batch_size, shuffle, sampler,
            drop_last).
        num_workers: threads that load and collate batches in parallel; 0 loads in the
            calling thread. The batches are the same whatever the value.
        collate_fn: merges a list of samples into a batch; default `default_collate`.
        pin_memory: accepted for compatibility; there is no GPU memory to pin.
        drop_last: drop the last batch when it is smaller than `batch_size`.
        generator: random stream for shuffling and random transforms.
        prefetch_factor: batches each worker loads ahead.
        seed: shorthand for `generator=shenjing.Generator(seed)`.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        sampler: Sampler | None = None,
        batch_sampler: Sampler | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        generator: Generator | None = None,
        *,
        prefetch_factor: int = 2,
        seed: int | None = None,
    ) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers should be a non-negative integer, got "
                             f"{num_workers!r}")
        if not isinstance(prefetch_factor, int) or prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor should be a positive integer, got "
                             f"{prefetch_factor!r}")
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: pass either seed or generator, not both")
        if seed is not None:
            generator = Generator(seed)
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
        else:
            if sampler is not None and shuffle:
                raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
            if sampler is None:
                sampler = (RandomSampler(dataset, generator=generator) if shuffle
                           else SequentialSampler(dataset))
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size if sampler is not None else None  # None: batch_sampler
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.generator = generator
        self.prefetch_factor = prefetch_factor

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[Any]:
        epoch_seed = int(get_rng(self.generator).integers(2**63))
        batches = enumerate(self.batch_sampler)
        if self.num_workers == 0:
            for number, indices in batches:
                yield self._load_batch(number, list(indices), epoch_seed)
            return
        ahead = self.num_workers * self.prefetch_factor
        pool = _DaemonPool(self.num_workers)
        pending: collections.deque[Future] = collections.deque()
        try:
            for number, indices in batches:
                pending.append(pool.submit(self._load_batch, number, list(indices), epoch_seed))
                if len(pending) >= ahead:
                    yield _interruptible_result(pending.popleft())
            while pending:
                yield _interruptible_result(pending.popleft())
        finally:
            for future in pending:
                future.cancel()
            pool.close()

    def _load_batch(self, number: int, indices: list[int], epoch_seed: int) -> Any:
        """Load and collate one batch; random transforms draw from a per-batch generator."""
        where = threading.current_thread().name
        if self.collate_fn is default_collate:
            batch = _gather_arrays(self.dataset, indices)
            if batch is not None:
                return batch
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([epoch_seed, number])))
        with use_rng(rng):
            samples = []
            for index in indices:
                try:
                    samples.append(self.dataset[index])
                except Exception as e:
                    raise _with_context(e, f"DataLoader: loading dataset index {index} (batch "
                                           f"{number}) failed in thread {where!r}") from e
            try:
                return self.collate_fn(samples)
            except Exception as e:
                shown = indices if len(indices) <= 8 else indices[:8] + ["..."]
                raise _with_context(e, f"DataLoader: collate_fn failed on batch {number} "
                                       f"(dataset indices {shown})") from e
