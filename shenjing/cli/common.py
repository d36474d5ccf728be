"""Helpers the subcommands share: the error type, batching, forward passes, progress display."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator

import numpy as np

import shenjing as sj

__all__ = ["CLIError", "Interrupted", "batches", "forward_logits", "predict_proba", "Progress",
           "warn"]


class CLIError(Exception):
    """A mistake in arguments, paths or data: printed as one line on stderr, exit status 1."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C after saving a checkpoint; the message says how to resume.
    `main` prints it as one line on stderr and exits with status 130 (128 + SIGINT)."""


def warn(message: str) -> None:
    """One line on stderr for something skipped, e.g. an optional dependency that is missing."""
    print(f"shenjing: note: {message}", file=sys.stderr, flush=True)


def batches(n: int, batch_size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Index arrays of consecutive batches over `order` (default 0..n-1)."""
    order = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def forward_logits(model, x):
    """The model's logits: zoo models return a Tensor, recurrent ones (logits, state)."""
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def predict_proba(model, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Softmax probabilities over the last axis, in eval mode without a graph (float64)."""
    model.eval()
    parts = []
    with sj.no_grad():
        for idx in batches(len(x), batch_size):
            logits = forward_logits(model, sj.from_numpy(x[idx])).numpy().astype(np.float64)
            z = np.exp(logits - logits.max(-1, keepdims=True))
            parts.append(z / z.sum(-1, keepdims=True))
    return np.concatenate(parts)


def _format_logs(logs: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class Progress:
    """A progress bar over one epoch's batches.

    On a terminal with tqdm installed, a tqdm bar with the running loss and accuracy (tqdm:
    small, no dependencies of its own, the usual choice in PyTorch training loops). Otherwise
    nothing during the epoch, and the Keras-style summary line at its end, so logs and pipes
    get one line per epoch.
    """

    def __init__(self, epoch: int, epochs: int, steps: int, enabled: bool = True,
                 done: int = 0, elapsed: float = 0.0) -> None:
        """`done` steps taking `elapsed` seconds are behind us (an epoch resumed midway)."""
        self.epoch, self.epochs = epoch, epochs
        self.start = time.perf_counter() - elapsed
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=steps, initial=done, desc=f"Epoch {epoch}/{epochs}",
                                unit="batch", leave=False, dynamic_ncols=True)

    def update(self, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
            self.bar.update(1)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def abort(self) -> None:
        """Stop mid-epoch (interrupted): remove the bar, print no summary line."""
        if self.bar is not None:
            self.bar.close()

    def close(self, logs: dict[str, float]) -> float:
        """End the epoch: print its summary line; returns the epoch's wall time in seconds."""
        seconds = self.elapsed()
        if self.bar is not None:
            self.bar.close()
        finite = {k: v for k, v in logs.items() if math.isfinite(v)}
        print(f"Epoch {self.epoch}/{self.epochs} - {seconds:.1f}s - {_format_logs(finite)}",
              flush=True)
        return seconds
