"""CPU threads for shenjing's own kernels, coordinated with the BLAS library's threads.

NumPy's elementwise loops and copies run on one core, while OpenBLAS runs GEMMs on all of
them; both release the GIL. This module lets a kernel split its work over a small pool of
persistent worker threads (the calling thread included), like torch's intra-op pool.

Public API (stable; other modules may import it):

* ``set_num_threads(n)`` / ``get_num_threads()``: how many threads shenjing's kernels use
  (exported as ``shenjing.set_num_threads``). ``n == 1`` disables the splitting, and is the
  default: measured on a quiet 2-core machine (benchmarks/RESULTS.md), splitting paid off
  only on the Conv1d TextCNN (1.35x -> 1.05x torch's step time) and cost the 2-D CNNs
  (seed-000 CNN 1.03x -> 1.44x), where OpenBLAS's idle workers still spin after every
  2-thread GEMM outside our sections. ``SHENJING_NUM_THREADS=n`` or ``set_num_threads(n)``
  opts in; without threadpoolctl (the optional dependency that controls the BLAS threads)
  the environment default stays 1.
* ``parallel_for(fn, n, grain=1, blas=True)``: calls ``fn(lo, hi)`` on consecutive ranges
  that cover ``range(n)``, each at most ``grain`` long, the ranges dealt out in contiguous
  blocks, one block per thread. Returns when all are done; an exception in any range is
  re-raised. ``blas=False`` says that ``fn`` calls GEMMs: during the section the BLAS
  library runs one thread per caller (the GEMMs are split over our threads instead), so no
  OpenBLAS worker spins against ours. Runs inline (no threads) when threads are off, when
  ``n`` gives fewer than two ranges, or when called from inside a parallel section.
* ``elementwise(fn, out, *inputs)``: ``fn(out_part, *input_parts)`` over L2-sized blocks of
  equally shaped arrays, split along ``out``'s outermost axis in memory (so each block is
  contiguous in a permuted-contiguous layout); runs ``fn(out, *inputs)`` once when the
  arrays are too small to split. Returns ``out``.
* ``worth_splitting(nbytes)``: True when threads are on and ``nbytes`` of memory traffic is
  enough to pay for the hand-off (about 30 µs); kernels call the serial path otherwise.
* ``blas_controllable()``: True when the BLAS thread count can be changed (threadpoolctl
  found the BLAS library); without it, GEMMs should not be split over our threads.

The BLAS thread count is process-wide: a GEMM that another thread of the program starts
during a ``blas=False`` section runs on one thread. A second thread that calls
``parallel_for`` while one section runs gets its ranges run inline, in order.

Results never depend on the thread count beyond float rounding where a caller splits a
reduction (e.g. a weight gradient summed over two halves of the batch).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable

__all__ = ["set_num_threads", "get_num_threads", "parallel_for", "elementwise",
           "worth_splitting", "blas_controllable"]

MIN_SPLIT_BYTES = 1 << 19  # below ~0.5 MB of traffic the hand-off costs more than it saves
BLOCK_BYTES = 1 << 18  # elementwise blocks stay in a 512 KB L2 across an op's passes


def _blas_controller():
    """The BLAS library's thread controller (threadpoolctl's), or None when unavailable."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    try:
        import numpy  # noqa: F401  (loads the BLAS library the controller must find)

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # a broken or unusual installation: run without BLAS control
        return None
    return libs[0] if len(libs) == 1 else None


_BLAS = _blas_controller()


def _default_threads() -> int:
    """SHENJING_NUM_THREADS when set; else 1 (opt-in, see the module docstring)."""
    env = os.environ.get("SHENJING_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return 1


class _Pool:
    """Persistent daemon workers; each takes (fn, ranges, done) jobs from its own queue and
    answers on the job's own `done` queue (so an abandoned call's answer reaches no one)."""

    def __init__(self, workers: int) -> None:
        self.pid = os.getpid()
        self.jobs: list[queue.SimpleQueue] = []
        for _ in range(workers):
            q: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(q,), daemon=True,
                             name="shenjing-cpu").start()
            self.jobs.append(q)

    def _work(self, q: queue.SimpleQueue) -> None:
        _local.inside = True
        while True:
            job = q.get()
            if job is None:
                return
            fn, ranges, done = job
            try:
                for lo, hi in ranges:
                    fn(lo, hi)
                done.put(None)
            except BaseException as e:  # handed to the caller, which re-raises it
                done.put(e)

    def close(self) -> None:
        for q in self.jobs:
            q.put(None)


_local = threading.local()
_lock = threading.Lock()
_state = {"threads": _default_threads(), "pool": None}
_busy = threading.Lock()  # one parallel section at a time; other callers run inline


def _after_fork_in_child() -> None:
    global _busy, _lock
    _busy, _lock = threading.Lock(), threading.Lock()
    _state["pool"] = None  # the workers did not survive the fork
    _local.inside = False


os.register_at_fork(after_in_child=_after_fork_in_child)


def set_num_threads(n: int) -> None:
    """Use `n` threads in shenjing's CPU kernels (1 = no splitting), like torch's."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    with _lock:
        if n != _state["threads"] and _state["pool"] is not None:
            _state["pool"].close()
            _state["pool"] = None
        _state["threads"] = n


def get_num_threads() -> int:
    """The number of threads shenjing's CPU kernels use."""
    return _state["threads"]


def blas_controllable() -> bool:
    """True when the BLAS thread count can be set (GEMMs may be split over our threads)."""
    return _BLAS is not None


def worth_splitting(nbytes: int) -> bool:
    """True when threads are on and `nbytes` of traffic pays for handing work to them."""
    return _state["threads"] > 1 and nbytes >= MIN_SPLIT_BYTES and not _inside()


def _inside() -> bool:
    return getattr(_local, "inside", False)


def _pool(workers: int) -> _Pool:
    with _lock:
        pool = _state["pool"]
        if pool is None or pool.pid != os.getpid() or len(pool.jobs) != workers:
            pool = _state["pool"] = _Pool(workers)  # (re)made after fork or a thread change
        return pool


def _blocks(n: int, grain: int, parts: int) -> list[list[tuple[int, int]]]:
    """range(n) in ranges of <= grain, dealt into `parts` contiguous blocks of equal work."""
    pieces = max(parts, -(-n // max(grain, 1)))
    pieces = min(pieces, n)
    bounds = [n * i // pieces for i in range(pieces + 1)]
    ranges = [(bounds[i], bounds[i + 1]) for i in range(pieces)]
    return [ranges[len(ranges) * t // parts:len(ranges) * (t + 1) // parts]
            for t in range(parts)]


def parallel_for(fn: Callable[[int, int], None], n: int, grain: int = 1,
                 blas: bool = True) -> None:
    """Run fn(lo, hi) over ranges covering range(n), split over the threads (see module doc)."""
    threads = _state["threads"]
    if threads > 1 and not _inside() and n > 1:
        blocks = [b for b in _blocks(n, grain, threads) if b]
    else:
        blocks = []
    if len(blocks) < 2:
        for lo, hi in _blocks(n, grain, 1)[0] if n > 0 else []:
            fn(lo, hi)
        return
    if not _busy.acquire(blocking=False):  # another thread of the program is using the pool
        for lo, hi in _blocks(n, grain, 1)[0]:
            fn(lo, hi)
        return
    try:
        _run_blocks(fn, blocks, threads, blas)
    finally:
        _busy.release()


def _run_blocks(fn: Callable[[int, int], None], blocks: list, threads: int,
                blas: bool) -> None:
    pool = _pool(threads - 1)
    blas_before = _BLAS.get_num_threads() if not blas and _BLAS is not None else 1
    if blas_before > 1:
        _BLAS.set_num_threads(1)
    _local.inside = True
    done: queue.SimpleQueue = queue.SimpleQueue()
    try:
        for q, block in zip(pool.jobs, blocks[1:]):
            q.put((fn, block, done))
        error = None
        try:
            for lo, hi in blocks[0]:
                fn(lo, hi)
        except BaseException as e:
            error = e
        for _ in blocks[1:]:  # always wait for every worker before touching shared buffers
            got = done.get()
            if error is None and got is not None:
                error = got
    finally:
        _local.inside = False
        if blas_before > 1:
            _BLAS.set_num_threads(blas_before)
    if error is not None:
        raise error


def elementwise(fn: Callable, out, *inputs):
    """fn(out_block, *input_blocks) over blocks of same-shaped arrays (see module doc)."""
    nbytes = out.nbytes + sum(a.nbytes for a in inputs)
    if out.ndim == 0 or not worth_splitting(nbytes):
        fn(out, *inputs)
        return out
    axis = max(range(out.ndim), key=lambda i: (out.shape[i] > 1, abs(out.strides[i])))
    n = out.shape[axis]
    head = (slice(None),) * axis

    def run(lo: int, hi: int) -> None:
        sel = head + (slice(lo, hi),)
        fn(out[sel], *(a[sel] for a in inputs))

    parallel_for(run, n, grain=max(1, BLOCK_BYTES * n // max(out.nbytes, 1)))
    return out
