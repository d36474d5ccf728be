"""Callbacks that record or react to training: CSVLogger, TensorBoard, LambdaCallback,
TerminateOnNaN."""

from __future__ import annotations

import csv
import os
from typing import Any

import numpy as np

from .base import _HOOKS, Callback
from .monitoring import get_lr

__all__ = ["CSVLogger", "TensorBoard", "LambdaCallback", "TerminateOnNaN"]


class CSVLogger(Callback):
    """Append each epoch's logs as a CSV row (header: epoch, then the sorted log keys)."""

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self._file = None
        self._writer = None
        self._header = True

    def on_train_begin(self, logs=None) -> None:
        self._header = not (self.append and os.path.exists(self.filename)
                            and os.path.getsize(self.filename) > 0)
        self._file = open(self.filename, "a" if self.append else "w", newline="",
                          encoding="utf-8")
        self._writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.sep, extrasaction="ignore")
            if self._header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        for k in self.keys:
            v = logs.get(k, "NA")
            row[k] = f"[{', '.join(map(str, np.ravel(v)))}]" if np.ndim(v) else v
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoard(Callback):
    """Log epoch (and optionally batch) metrics and weight histograms for TensorBoard.

    As in Keras, training values go to `log_dir/train` and validation values to
    `log_dir/validation`, under the tags `epoch_loss`, `epoch_accuracy`, ...
    """

    def __init__(self, log_dir: str = "logs", histogram_freq: int = 0,
                 write_graph: bool = True, write_images: bool = False,
                 write_steps_per_second: bool = False, update_freq: str | int = "epoch",
                 profile_batch: int = 0, embeddings_freq: int = 0,
                 embeddings_metadata: Any = None) -> None:
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"int, got {update_freq!r}")
        self.update_freq = update_freq
        self._writers: dict[str, Any] = {}
        self._step = 0

    def _writer(self, kind: str):
        if kind not in self._writers:
            from ...utils.tensorboard import SummaryWriter

            self._writers[kind] = SummaryWriter(os.path.join(self.log_dir, kind))
        return self._writers[kind]

    def on_train_begin(self, logs=None) -> None:
        self._step = 0

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self._step += 1
        if self.update_freq != "epoch" and self._step % self.update_freq == 0:
            w = self._writer("train")
            for k, v in (logs or {}).items():
                if np.ndim(v) == 0:
                    w.add_scalar(f"batch_{k}", float(v), self._step)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = dict(logs or {})
        if "learning_rate" not in logs and getattr(self.model, "optimizer", None) is not None:
            try:
                logs["learning_rate"] = get_lr(self.model)
            except (ValueError, AttributeError, KeyError, IndexError):
                pass
        for k, v in logs.items():
            if np.ndim(v) != 0:
                continue
            if k.startswith("val_"):
                self._writer("validation").add_scalar(f"epoch_{k[4:]}", float(v), epoch)
            else:
                self._writer("train").add_scalar(f"epoch_{k}", float(v), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            w = self._writer("train")
            for layer in getattr(self.model, "layers", []):
                for weight in getattr(layer, "weights", []):
                    w.add_histogram(f"{layer.name}/{weight.name}", weight.numpy(), epoch)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None) -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}


class LambdaCallback(Callback):
    """A callback from plain functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs) -> None:
        super().__init__()
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in given.items():
            if name not in _HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; known hooks: "
                                f"{', '.join(_HOOKS)}")
            if fn is not None:
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training quietly (with a one-line notice) when the loss becomes NaN or inf."""

    def on_batch_end(self, batch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
