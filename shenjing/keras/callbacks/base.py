"""Keras callbacks: hooks into fit/evaluate/predict, run in Keras's order with DESIGN.md's fixes.

Order of calls in `fit`: on_train_begin; per epoch on_epoch_begin, per batch
on_train_batch_begin / on_train_batch_end, then validation (on_test_begin, on_test_batch_*,
on_test_end) producing `val_` keys, then on_epoch_end; finally on_train_end, which always
receives a dict (`{}` when no epoch ran). Within each hook the progress bar runs first, then
the user's callbacks in the order given, then `History`, so the epoch's progress line is
printed before anything a user callback prints, and History records keys that callbacks add
(e.g. `learning_rate`). `EarlyStopping(restore_best_weights=True)` restores the best weights
at the end of training whatever stopped it (itself, another callback, or the epoch limit).
"""

from __future__ import annotations

from typing import Callable

from ..progbar import Progbar

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]


class Callback:
    """Base class: override any hook; `self.model` and `self.params` are set by fit."""

    def __init__(self) -> None:
        self.params: dict = {}
        self._model = None

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self._model = model

    @property
    def model(self):
        return self._model

    # batch hooks: the train variants default to the legacy on_batch_* as in Keras
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Legacy alias of on_train_batch_begin."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Legacy alias of on_train_batch_end."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the start of each epoch (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the end of each epoch with the epoch's logs, `val_` keys included."""

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_train_begin(self, logs: dict | None = None) -> None:
        pass

    def on_train_end(self, logs: dict | None = None) -> None:
        pass

    def on_test_begin(self, logs: dict | None = None) -> None:
        pass

    def on_test_end(self, logs: dict | None = None) -> None:
        pass

    def on_predict_begin(self, logs: dict | None = None) -> None:
        pass

    def on_predict_end(self, logs: dict | None = None) -> None:
        pass


_HOOKS = ["on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
          "on_epoch_begin", "on_epoch_end", "on_test_batch_begin", "on_test_batch_end",
          "on_predict_batch_begin", "on_predict_batch_end", "on_train_begin", "on_train_end",
          "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end"]


class CallbackList(Callback):
    """The callbacks of one fit/evaluate/predict call, in the order they run.

    The progress bar (when verbose) comes first and History (in fit) last; user callbacks
    keep their order in between. A user-supplied ProgbarLogger or History is used in place
    of the default one.
    """

    def __init__(self, callbacks: list | None = None, add_history: bool = False,
                 add_progbar: bool = False, model=None, **params) -> None:
        super().__init__()
        user = list(callbacks or [])
        for cb in user:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected keras.callbacks.Callback instances, got "
                                f"{type(cb).__name__}")
        progbar = next((c for c in user if isinstance(c, ProgbarLogger)), None)
        history = next((c for c in user if isinstance(c, History)), None)
        middle = [c for c in user if c is not progbar and c is not history]
        if progbar is None and add_progbar:
            progbar = ProgbarLogger()
        if history is None and add_history:
            history = History()
        self.callbacks = ([progbar] if progbar else []) + middle + ([history] if history else [])
        self.history = history
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model) -> None:
        super().set_model(model)
        if self.history is not None:
            model.history = self.history
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __contains__(self, kind: type) -> bool:
        return any(isinstance(c, kind) for c in self.callbacks)


def _make_dispatch(hook: str) -> Callable:
    batch_or_epoch = hook.split("_")[-2] in ("batch", "epoch") or hook in (
        "on_batch_begin", "on_batch_end")

    if batch_or_epoch:
        def dispatch(self, index: int, logs: dict | None = None) -> None:
            logs = {} if logs is None else logs
            for cb in self.callbacks:
                getattr(cb, hook)(index, logs)
    else:
        def dispatch(self, logs: dict | None = None) -> None:
            logs = {} if logs is None else logs
            for cb in self.callbacks:
                getattr(cb, hook)(logs)
    dispatch.__name__ = hook
    return dispatch


for _hook in _HOOKS:
    setattr(CallbackList, _hook, _make_dispatch(_hook))


class History(Callback):
    """Records each epoch's logs: `history.history['loss']`, `history.epoch`."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints `Epoch i/n` and the progress bar (added by fit/evaluate/predict when verbose)."""

    def __init__(self) -> None:
        super().__init__()
        self.verbose = 1
        self.epochs = 1
        self.target = None
        self.progbar: Progbar | None = None
        self._in_fit = False
        self._seen = 0

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.verbose = params.get("verbose", 1)
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _new_bar(self) -> None:
        self._seen = 0
        self.progbar = Progbar(self.target, verbose=self.verbose)

    def _update(self, batch: int, logs: dict | None, finalize: bool = False) -> None:
        if self.progbar is None or not self.verbose:
            return
        logs = logs or {}
        self.progbar.stateful_metrics.update(logs)
        if finalize:
            if self.progbar.target is None:
                self.progbar.target = self._seen
            self.progbar.update(self.progbar.target, list(logs.items()), finalize=True)
        else:
            self._seen = batch + 1
            self.progbar.update(self._seen, list(logs.items()), finalize=False)

    def on_train_begin(self, logs=None) -> None:
        self._in_fit = True

    def on_train_end(self, logs=None) -> None:
        self._in_fit = False

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._new_bar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self._update(batch, logs)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._update(0, logs, finalize=True)

    def on_test_begin(self, logs=None) -> None:
        if not self._in_fit:
            self._new_bar()

    def on_test_batch_end(self, batch: int, logs=None) -> None:
        if not self._in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None) -> None:
        if not self._in_fit:
            self._update(0, logs, finalize=True)

    def on_predict_begin(self, logs=None) -> None:
        self._new_bar()

    def on_predict_batch_end(self, batch: int, logs=None) -> None:
        self._update(batch, None)

    def on_predict_end(self, logs=None) -> None:
        self._update(0, None, finalize=True)
