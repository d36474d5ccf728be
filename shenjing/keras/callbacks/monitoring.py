"""Callbacks that watch a logged quantity: EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau, and the LearningRateScheduler."""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Callable

import numpy as np

from ... import optim
from ...nn.module import Parameter
from ...optim import lr_scheduler
from .base import Callback

__all__ = ["monitor_mode", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
           "LearningRateScheduler", "get_lr", "set_lr"]


_MAX_HINTS = ("acc", "auc", "precision", "recall", "f1", "fmeasure", "iou", "r2")
_MIN_HINTS = ("loss", "error", "mse", "mae", "mape", "msle", "crossentropy", "hinge",
              "divergence", "poisson", "logcosh", "huber")


def monitor_mode(monitor: str, mode: str, model=None, strict: bool = False) -> str:
    """'min' or 'max' for a monitored quantity: from `mode`, the metric's direction or its name."""
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        warnings.warn(f"mode {mode!r} is unknown, falling back to 'auto'")
    name = monitor[4:] if monitor.startswith("val_") else monitor
    for m in getattr(model, "metrics", None) or []:
        if getattr(m, "name", None) == name and getattr(m, "_direction", None):
            return "max" if m._direction == "up" else "min"
    low = name.lower()
    if any(h in low for h in _MIN_HINTS):
        return "min"
    if any(h in low for h in _MAX_HINTS):
        return "max"
    if strict:
        raise ValueError(
            f"cannot tell whether monitor={monitor!r} should be minimized or maximized; pass "
            f"mode='max' to act on its highest value or mode='min' on its lowest"
        )
    return "min"


class _Monitor(Callback):
    """Shared logic of callbacks that watch one logged quantity."""

    _strict = False

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        super().__init__()
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self._op: str | None = None
        self.best: float = np.inf

    def _setup(self) -> None:
        if self._op is None:
            self._op = monitor_mode(self.monitor, self.mode, self.model, self._strict)
            self.best = np.inf if self._op == "min" else -np.inf

    def _is_improvement(self, current: float, reference: float) -> bool:
        if self._op == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def _current(self, logs: dict | None) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} is conditioned on metric `{self.monitor}`, which is "
                f"not available. Available metrics are: {', '.join(logs or {}) or 'none'}",
                stacklevel=3,
            )
            return None
        return float(value)


class EarlyStopping(_Monitor):
    """Stop training when `monitor` has stopped improving for `patience` epochs."""

    _strict = True

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0
        self._op = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._setup()
        current = self._current(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_WEIGHT_SUFFIXES = (".weights.safetensors", ".weights.h5", ".safetensors", ".h5")


class ModelCheckpoint(_Monitor):
    """Save the model (or its weights) each epoch, or only when `monitor` improves.

    `filepath` may hold `{epoch:02d}` and any log key, e.g. "ckpt-{epoch:02d}-{val_loss:.2f}.keras".
    Every save is atomic (temporary file + rename), so a crash never leaves a half-written
    checkpoint.
    """

    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: str | int = "epoch",
                 initial_value_threshold: float | None = None) -> None:
        super().__init__(monitor, mode)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int "
                             f"(a number of batches), got {save_freq!r}")
        self.save_freq = save_freq
        suffixes = _WEIGHT_SUFFIXES if save_weights_only else _MODEL_SUFFIXES
        if not self.filepath.endswith(suffixes):
            what = "weights" if save_weights_only else "model"
            raise ValueError(f"ModelCheckpoint: with save_weights_only={save_weights_only} the "
                             f"filepath must end in one of {', '.join(suffixes)} ({what} "
                             f"format); got filepath={self.filepath!r}")
        self.initial_value_threshold = initial_value_threshold
        self._batches = 0
        self._epoch = 0

    def on_train_begin(self, logs=None) -> None:
        self._op = None
        self._setup()
        if self.initial_value_threshold is not None:
            self.best = float(self.initial_value_threshold)
        self._batches = 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self.save_freq != "epoch":
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _path(self, epoch: int, batch: int | None, logs: dict) -> str:
        try:
            fields = {k: v for k, v in logs.items()}
            if batch is not None:
                fields["batch"] = batch + 1
            return self.filepath.format(epoch=epoch + 1, **fields)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f'ModelCheckpoint: failed to format the filepath '
                             f'"{self.filepath}". Reason: {e!r} (available keys: epoch, '
                             f'{", ".join(logs)})') from None

    def _write(self, path: str) -> None:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def _save(self, epoch: int, batch: int | None, logs: dict) -> None:
        path = self._path(epoch, batch, logs)
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {path}")
            self._write(path)
            return
        current = self._current(logs)
        if current is None:
            return
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
            self._write(path)
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")


def get_lr(model) -> float:
    opt = getattr(model, "optimizer", None)
    if opt is None:
        raise ValueError("the model has no optimizer: call model.compile(optimizer=...) first")
    if hasattr(opt, "learning_rate"):
        return float(opt.learning_rate)
    return float(opt.param_groups[0]["lr"])


def set_lr(model, lr: float) -> None:
    opt = model.optimizer
    if hasattr(opt, "learning_rate"):
        opt.learning_rate = float(lr)
    else:
        for group in opt.param_groups:
            group["lr"] = float(lr)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by `factor` when `monitor` stalls for `patience` epochs.

    The decisions are made by the core's `optim.lr_scheduler.ReduceLROnPlateau`, stepped
    once per epoch on a one-group optimizer that holds the model's learning rate. Keras counts
    differently: it reduces when `wait >= patience` (the scheduler when more than `patience`
    bad epochs passed) and its cooldown's last epoch already counts, so the scheduler gets
    patience - 1 and cooldown - 1; `min_delta` is its absolute threshold.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs) -> None:
        super().__init__(monitor, mode, min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got {factor}")
        if "epsilon" in kwargs:
            self.min_delta = abs(float(kwargs.pop("epsilon")))
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected arguments {sorted(kwargs)}")
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.wait = 0
        self.cooldown_counter = 0
        self._holder: optim.Optimizer | None = None
        self._scheduler: lr_scheduler.ReduceLROnPlateau | None = None

    def on_train_begin(self, logs=None) -> None:
        self._op = None
        self._setup()
        self.wait = 0
        self.cooldown_counter = 0
        self._holder = optim.SGD([Parameter(np.zeros(1, np.float32))], lr=get_lr(self.model))
        self._scheduler = lr_scheduler.ReduceLROnPlateau(
            self._holder, mode=self._op, factor=self.factor,
            patience=max(self.patience - 1, 0), threshold=self.min_delta,
            threshold_mode="abs", cooldown=max(self.cooldown - 1, 0), min_lr=self.min_lr,
            eps=0.0)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs if logs is not None else {}
        logs["learning_rate"] = get_lr(self.model)
        current = self._current(logs)
        if current is None:
            return
        if self._scheduler is None:
            self.on_train_begin()
        group = self._holder.param_groups[0]
        old = group["lr"] = get_lr(self.model)
        self._scheduler.step(current)
        self.best = self._scheduler.best
        self.wait = self._scheduler.num_bad_epochs
        self.cooldown_counter = self._scheduler.cooldown_counter
        if group["lr"] != old:
            set_lr(self.model, group["lr"])
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{group['lr']}.")


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to `schedule(epoch, lr)`
    (or `schedule(epoch)`)."""

    def __init__(self, schedule: Callable, verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose
        try:
            params = [p for p in inspect.signature(schedule).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
            self._two_args = len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
        except (TypeError, ValueError):
            self._two_args = True

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        lr = get_lr(self.model)
        lr = self.schedule(epoch, lr) if self._two_args else self.schedule(epoch)
        if not isinstance(lr, (float, int, np.floating, np.integer)) or isinstance(lr, bool):
            raise ValueError(f"LearningRateScheduler: the schedule function must return a "
                             f"float, got {lr!r} for epoch {epoch}")
        set_lr(self.model, float(lr))
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs is not None:
            logs["learning_rate"] = get_lr(self.model)
