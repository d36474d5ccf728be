"""Dynamic batching: concurrent requests are merged into one model call.

One worker thread owns the model. A request's examples wait in a queue; the worker takes the
first waiting request, then keeps taking more until `max_batch_size` examples are gathered or
`max_wait_ms` has passed since the first arrived, runs the model once on the concatenation,
and hands each request its own rows. With batching off the worker runs one request at a time.
Running every model call on one thread also keeps grad mode (process-wide in shenjing) and the
model's state away from the request threads.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable

import numpy as np

__all__ = ["Batcher", "Overloaded"]


class Overloaded(RuntimeError):
    """The queue is full or the answer took too long: the client may retry (HTTP 503)."""


class Batcher:
    """Runs `predict(batch) -> outputs` (first axis = examples) for many threads at once."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], *, enabled: bool = True,
                 max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 1024,
                 timeout_s: float = 30.0,
                 on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch_size < 1 or max_wait_ms < 0 or max_queue < 1:
            raise ValueError(f"Batcher: need max_batch_size >= 1, max_wait_ms >= 0 and "
                             f"max_queue >= 1, got {max_batch_size}, {max_wait_ms}, {max_queue}")
        self.predict, self.enabled = predict, enabled
        self.max_batch_size, self.max_wait = max_batch_size, max_wait_ms / 1000.0
        self.timeout_s, self.on_batch = timeout_s, on_batch
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stopped = threading.Event()
        self._worker = threading.Thread(target=self._run, name="shenjing-batcher", daemon=True)
        self._worker.start()

    def submit(self, examples: np.ndarray) -> np.ndarray:
        """The model's outputs for `examples` (blocking); raises what the model raised."""
        if self._stopped.is_set():
            raise Overloaded("the server is shutting down")
        future: Future = Future()
        try:
            self._queue.put_nowait((examples, future))
        except queue.Full:
            raise Overloaded("too many requests waiting; retry later") from None
        try:
            return future.result(timeout=self.timeout_s)
        except TimeoutError:
            future.cancel()
            raise Overloaded(f"no answer within {self.timeout_s:g} s; retry later") from None

    def close(self) -> None:
        self._stopped.set()
        self._queue.put((None, None))
        self._worker.join(timeout=5)

    def _gather(self, first: tuple) -> list[tuple]:
        items, count = [first], len(first[0])
        deadline = time.perf_counter() + self.max_wait
        while self.enabled and count < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else \
                    self._queue.get_nowait()
            except queue.Empty:
                break
            if item[0] is None:  # close() while gathering: finish this batch first
                self._queue.put(item)
                break
            if count + len(item[0]) > self.max_batch_size:
                self._run_batch([item])  # too big to join: answer it on its own, in order
                continue
            items.append(item)
            count += len(item[0])
        return items

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first[0] is None:
                return
            self._run_batch(self._gather(first))

    def _run_batch(self, items: list[tuple]) -> None:
        items = [(x, f) for x, f in items if f.set_running_or_notify_cancel()]
        if not items:
            return
        try:
            batch = items[0][0] if len(items) == 1 else np.concatenate([x for x, _ in items])
            outputs = self.predict(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch))
        except Exception as err:  # noqa: BLE001 - the error goes to each waiting request
            for _, future in items:
                future.set_exception(err)
            return
        start = 0
        for x, future in items:
            future.set_result(outputs[start:start + len(x)])
            start += len(x)
