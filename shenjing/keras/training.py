"""compile / fit / evaluate / predict: Keras's training loop on shenjing's autograd.

`fit` follows Keras 3's order of events (see callbacks.py) with DESIGN.md's fixes. Data may
be NumPy arrays (batched by slicing; float64 batches are cast to float32 as Keras does,
integer images stay as given and are cast per batch by the first layer), lists/dicts of
arrays for multi-input models, or a shenjing DataLoader / any re-iterable of (x, y[, w])
batches. The logged `loss` and metrics are running averages over the epoch, as Keras
reports them; `val_` values come from a full pass over the validation data.

A non-finite loss stops training with `NonFiniteLossError` naming the epoch and batch,
raised before that batch's update so the model keeps its last finite weights, unless a
`TerminateOnNaN` callback is given, which stops training quietly as in Keras.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import autograd
from ..random import get_rng
from ..tensor import Tensor
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .callbacks import CallbackList, TerminateOnNaN

__all__ = ["Trainer", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


# --------------------------------------------------------------------------- data

def _to_numpy(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return [_to_numpy(v) for v in x]
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return np.asarray(x.numpy())
    return np.asarray(x)


def _num_samples(x: Any) -> int:
    if isinstance(x, (list, tuple)):
        return _num_samples(x[0])
    if isinstance(x, dict):
        return _num_samples(next(iter(x.values())))
    return len(x)


def _take(x: Any, index: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, list):
        return [_take(v, index) for v in x]
    if isinstance(x, dict):
        return {k: _take(v, index) for k, v in x.items()}
    return x[index]


def _cast(x: Any) -> Any:
    """float64 -> float32 (Keras's default float type); everything else unchanged."""
    if isinstance(x, list):
        return [_cast(v) for v in x]
    if isinstance(x, dict):
        return {k: _cast(v) for k, v in x.items()}
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        return x.astype(np.float32)
    return x


def _is_arrays(x: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_arrays(v) for v in x)
    if isinstance(x, dict):
        return all(_is_arrays(v) for v in x.values())
    return isinstance(x, (np.ndarray, Tensor)) or (hasattr(x, "__array__")
                                                   and not hasattr(x, "__next__"))


def _unpack(batch: Any) -> tuple:
    if isinstance(batch, (list, tuple)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return tuple(batch)
    if isinstance(batch, dict) and "x" in batch:
        return batch["x"], batch.get("y"), batch.get("sample_weight")
    return batch, None, None


def _class_weights(y: np.ndarray, class_weight: dict) -> np.ndarray:
    labels = np.argmax(y, -1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    labels = labels.astype(np.int64)
    missing = set(np.unique(labels).tolist()) - set(int(k) for k in class_weight)
    if missing:
        raise ValueError(f"class_weight has no entry for class(es) {sorted(missing)}; it "
                         f"must map every class index to a weight")
    table = np.zeros(max(max(int(k) for k in class_weight), int(labels.max(initial=0))) + 1,
                     np.float32)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    return table[labels]


class _Batches:
    """One pass (or `steps` batches) over arrays or an iterable of batches."""

    def __init__(self, x: Any, y: Any = None, sample_weight: Any = None,
                 batch_size: int | None = 32, shuffle: bool = False, steps: int | None = None,
                 class_weight: dict | None = None, what: str = "fit") -> None:
        self.class_weight = class_weight
        self.steps = steps
        if _is_arrays(x):
            self.arrays = True
            self.x = _to_numpy(x)
            self.y = _to_numpy(y)
            self.sw = _to_numpy(sample_weight)
            self.n = _num_samples(self.x)
            for name, v in (("y", self.y), ("sample_weight", self.sw)):
                if v is not None and _num_samples(v) != self.n:
                    raise ValueError(f"{what}: x has {self.n} samples but {name} has "
                                     f"{_num_samples(v)}; they must have the same length")
            if batch_size is None:
                batch_size = 32
            if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
                raise ValueError(f"{what}: batch_size must be a positive int, got "
                                 f"{batch_size!r}")
            self.batch_size = int(batch_size)
            self.shuffle = shuffle
            self.num_batches = math.ceil(self.n / self.batch_size) if self.n else 0
            if steps is not None:
                self.num_batches = min(self.num_batches, int(steps)) if self.n else 0
        else:
            if y is not None:
                raise ValueError(f"{what}: when x is a DataLoader or another iterable of "
                                 f"batches, y must be None (the batches carry the targets)")
            self.arrays = False
            self.source = x
            self._iterator = None
            try:
                n = len(x)
            except TypeError:
                n = None
            self.num_batches = n if steps is None else (int(steps) if n is None else
                                                         min(n, int(steps)))
            if self.num_batches is None and hasattr(x, "__next__"):
                raise ValueError(f"{what}: a generator or iterator of batches needs "
                                 f"steps_per_epoch (the number of batches per epoch)")

    def __iter__(self):
        if self.arrays:
            order = get_rng().permutation(self.n) if self.shuffle else None
            for b in range(self.num_batches):
                lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.n)
                idx = slice(lo, hi) if order is None else order[lo:hi]
                yield self._finish(_take(self.x, idx), _take(self.y, idx), _take(self.sw, idx))
            return
        it = self._iterator if hasattr(self.source, "__next__") else None
        if it is None:
            it = iter(self.source)
            if hasattr(self.source, "__next__"):
                self._iterator = it
        for b, batch in enumerate(it):
            x, y, sw = _unpack(batch)
            yield self._finish(_to_numpy(x), _to_numpy(y), _to_numpy(sw))
            if self.num_batches is not None and b + 1 >= self.num_batches:
                break

    def _finish(self, x: Any, y: Any, sw: Any) -> tuple:
        x, y = _cast(x), _cast(y)
        if self.class_weight is not None and y is not None:
            cw = _class_weights(np.asarray(y), self.class_weight)
            sw = cw if sw is None else sw * cw
        return x, y, sw


def _split_validation(x: Any, y: Any, sw: Any, split: float) -> tuple:
    if not 0.0 < split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {split}")
    if not _is_arrays(x):
        raise ValueError("validation_split is only supported for NumPy arrays; pass "
                         "validation_data for a DataLoader")
    x, y, sw = _to_numpy(x), _to_numpy(y), _to_numpy(sw)
    n = _num_samples(x)
    at = int(math.floor(n * (1.0 - split)))
    if at == 0 or at == n:
        raise ValueError(f"validation_split={split} leaves an empty training or validation "
                         f"set with {n} samples")
    first, last = slice(0, at), slice(at, n)
    return (_take(x, first), _take(y, first), _take(sw, first)), \
        (_take(x, last), _take(y, last), _take(sw, last))


def _softmax_np(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    e /= e.sum(-1, keepdims=True)
    return e


# --------------------------------------------------------------------------- trainer

class Trainer:
    """compile/fit/evaluate/predict for Model (mixed in; see models.py)."""

    def _init_trainer(self) -> None:
        self.optimizer = None
        self.loss = None
        self.compiled_loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._metric_ids: list = []
        self._metric_objs: list | None = None
        self._loss_tracker = metrics_mod.Mean(name="loss")
        self._loss_tracker._direction = "down"
        self._compile_config: dict | None = None

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, weighted_metrics: Any = None, run_eagerly: bool = False,
                steps_per_execution: int = 1, jit_compile: Any = "auto",
                auto_scale_loss: bool = True) -> None:
        """Configure training: optimizer, loss and metrics (names or objects)."""
        if loss_weights is not None or weighted_metrics is not None:
            raise NotImplementedError("compile: loss_weights and weighted_metrics (multi-output "
                                      "training) are not supported")
        if isinstance(loss, (list, dict)):
            raise NotImplementedError("compile: one loss per output (multi-output training) is "
                                      "not supported; pass a single loss")
        self.optimizer = optimizers_mod.get(optimizer)
        if isinstance(self.optimizer, optimizers_mod.Optimizer) and self.optimizer.built and \
                getattr(self.optimizer, "_owner", None) is not self:
            self.optimizer._impl = None  # built for another model: rebuild on our weights
        self.loss = loss
        self.compiled_loss = losses_mod.get(loss) if loss is not None else None
        if isinstance(metrics, dict):
            raise NotImplementedError("compile: a dict of metrics per output is not supported")
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        self._metric_ids = list(metrics or [])
        self._metric_objs = None
        self.compiled = True
        self._compile_config = {"optimizer": optimizer if isinstance(optimizer, str) else None,
                                "loss": loss if isinstance(loss, str) else None,
                                "metrics": [m for m in self._metric_ids if isinstance(m, str)]}

    def _assert_compiled(self, what: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before using the model ({what}).")
        if self.compiled_loss is None:
            raise ValueError(f"{what}: the model was compiled without a loss; pass "
                             f"loss=... to compile()")

    @property
    def metrics(self) -> list:
        return [self._loss_tracker] + list(self._metric_objs or [])

    @property
    def metrics_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        for m in self.metrics:
            m.reset_state()

    # ------------------------------------------------------------------ steps
    def _compute_loss(self, x: Any, y: Any, sw: Any, training: bool) -> tuple:
        """Forward pass and total loss; returns (loss Tensor, predictions as NumPy)."""
        loss_obj = self.compiled_loss
        fused = isinstance(loss_obj, losses_mod._CrossEntropy) and loss_obj.fusable() and \
            self._output_is_softmax()
        out = self._run_model(x, training, logits=fused)
        if isinstance(out, (list, tuple)):
            raise NotImplementedError("fit: models with several outputs cannot be trained "
                                      "(compile takes one loss)")
        if fused:
            values = loss_obj.call_fused(y, out)
            loss = losses_mod.reduce_loss(values, sw, loss_obj.reduction)
            pred = _softmax_np(out.data)
        else:
            loss = loss_obj(y, out, sw)
            pred = out.data
        if not isinstance(loss, Tensor) or loss.data.size != 1:
            raise ValueError(f"the loss must reduce to a scalar, got "
                             f"{getattr(loss, 'shape', loss)}")
        extra = self.losses
        if extra:
            loss = loss + sum(extra[1:], extra[0])
        return loss, pred

    def _update_metrics(self, loss_value: float, n: int, y: Any, pred: np.ndarray,
                        sw: Any) -> dict:
        self._loss_tracker.update_state(np.asarray(loss_value), sample_weight=np.asarray(n))
        if self._metric_objs is None:
            self._metric_objs = [metrics_mod.resolve(m, np.asarray(y), pred)
                                 for m in self._metric_ids]
        for m in self._metric_objs:
            m.update_state(y, pred, sw)
        return {m.name: m.result() for m in self.metrics}

    def _train_step(self, x: Any, y: Any, sw: Any, epoch: int, step: int, steps: Any,
                    raise_on_nan: bool) -> dict:
        opt = self.optimizer
        loss, pred = self._compute_loss(x, y, sw, training=True)
        value = float(loss.data)
        if not math.isfinite(value) and raise_on_nan:
            where = f"epoch {epoch + 1}, batch {step + 1}" + (f" of {steps}" if steps else "")
            raise NonFiniteLossError(
                f"fit: the loss became {value} at {where}; training stopped before this batch's "
                f"update. Lower the learning rate, check the inputs for NaN/inf, or pass "
                f"keras.callbacks.TerminateOnNaN() to stop quietly instead."
            )
        if isinstance(opt, optimizers_mod.Optimizer):
            if not opt.built:
                opt.build(self.parameters())
                opt._owner = self
            params = opt._params
        else:
            params = [p for group in opt.param_groups for p in group["params"]]
        for p in params:
            p.grad = None
        if loss.requires_grad:
            loss.backward()
        opt.step()
        return self._update_metrics(value, _num_samples(x), y, pred, sw)

    def _test_step(self, x: Any, y: Any, sw: Any) -> dict:
        with autograd.no_grad():
            loss, pred = self._compute_loss(x, y, sw, training=False)
        return self._update_metrics(float(loss.data), _num_samples(x), y, pred, sw)

    def _make_callbacks(self, callbacks: Any, verbose: Any, epochs: int, steps: Any,
                        history: bool) -> CallbackList:
        if isinstance(callbacks, CallbackList):
            return callbacks
        return CallbackList(callbacks, add_history=history, add_progbar=verbose != 0,
                            model=self, verbose=verbose, epochs=epochs, steps=steps)

    # ------------------------------------------------------------------ fit
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", callbacks: list | None = None, validation_split: float = 0.0,
            validation_data: Any = None, shuffle: bool = True, class_weight: dict | None = None,
            sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_batch_size: int | None = None,
            validation_freq: int = 1) -> Any:
        """Train for `epochs` epochs; returns a History whose `.history` holds the curves."""
        self._assert_compiled("fit")
        verbose = 1 if verbose == "auto" else int(verbose)
        if x is None:
            raise ValueError("fit: x (the training data) is required")
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = _split_validation(
                x, y, sample_weight, validation_split)
        batches = _Batches(x, y, sample_weight, batch_size, shuffle, steps_per_epoch,
                           class_weight)
        val = None
        if validation_data is not None:
            val = _unpack(validation_data) if isinstance(validation_data, (list, tuple)) \
                else (validation_data, None, None)
        cbs = self._make_callbacks(callbacks, verbose, epochs, batches.num_batches, True)
        raise_on_nan = TerminateOnNaN not in cbs
        self.stop_training = False
        training_logs: dict = {}
        logs: dict = {}
        cbs.on_train_begin()
        for epoch in range(int(initial_epoch), int(epochs)):
            self.reset_metrics()
            cbs.on_epoch_begin(epoch)
            logs = {}
            for step, (xb, yb, swb) in enumerate(batches):
                cbs.on_train_batch_begin(step)
                logs = self._train_step(xb, yb, swb, epoch, step, batches.num_batches,
                                        raise_on_nan)
                cbs.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if val is not None and (epoch + 1) % max(int(validation_freq), 1) == 0:
                val_logs = self.evaluate(val[0], val[1], batch_size=validation_batch_size or
                                         batch_size, sample_weight=val[2], verbose=0,
                                         steps=validation_steps, callbacks=cbs,
                                         return_dict=True)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if self.stop_training:
                break
        cbs.on_train_end(training_logs)
        return self.history

    # ------------------------------------------------------------------ evaluate / predict
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: Any = "auto", sample_weight: Any = None, steps: int | None = None,
                 callbacks: Any = None, return_dict: bool = False) -> Any:
        """Loss and metrics over the data: [loss, *metrics], a scalar without metrics, or a
        dict with return_dict=True."""
        self._assert_compiled("evaluate")
        verbose = 1 if verbose == "auto" else int(verbose)
        batches = _Batches(x, y, sample_weight, batch_size, False, steps, what="evaluate")
        cbs = self._make_callbacks(callbacks, verbose, 1, batches.num_batches, False)
        self.reset_metrics()
        logs: dict = {}
        cbs.on_test_begin()
        for step, (xb, yb, swb) in enumerate(batches):
            cbs.on_test_batch_begin(step)
            logs = self._test_step(xb, yb, swb)
            cbs.on_test_batch_end(step, logs)
        logs = {m.name: m.result() for m in self.metrics}
        cbs.on_test_end(logs)
        if return_dict:
            return dict(logs)
        values = [logs[k] for k in logs]
        return values[0] if len(values) == 1 else values

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto",
                steps: int | None = None, callbacks: Any = None) -> Any:
        """The model's outputs as NumPy arrays (inference mode, batch by batch)."""
        verbose = 1 if verbose == "auto" else int(verbose)
        batches = _Batches(x, None, None, batch_size, False, steps, what="predict")
        cbs = self._make_callbacks(callbacks, verbose, 1, batches.num_batches, False)
        outputs: list = []
        cbs.on_predict_begin()
        for step, (xb, _, _) in enumerate(batches):
            cbs.on_predict_batch_begin(step)
            outputs.append(self.predict_on_batch(xb))
            cbs.on_predict_batch_end(step, {"outputs": outputs[-1]})
        cbs.on_predict_end()
        if not outputs:
            raise ValueError("predict: the input has no samples")
        if isinstance(outputs[0], list):
            return [np.concatenate(parts) for parts in zip(*outputs)]
        return np.concatenate(outputs)

    def predict_on_batch(self, x: Any) -> Any:
        with autograd.no_grad():
            out = self._run_model(_cast(_to_numpy(x)), False)
        if isinstance(out, (list, tuple)):
            return [o.data for o in out]
        return out.data

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict | None = None, return_dict: bool = False) -> Any:
        """One update on one batch; returns the running loss (and metrics)."""
        self._assert_compiled("train_on_batch")
        x, y, sw = _cast(_to_numpy(x)), _cast(_to_numpy(y)), _to_numpy(sample_weight)
        if class_weight is not None:
            cw = _class_weights(np.asarray(y), class_weight)
            sw = cw if sw is None else sw * cw
        logs = self._train_step(x, y, sw, 0, 0, None, True)
        return self._format_logs(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        self._assert_compiled("test_on_batch")
        logs = self._test_step(_cast(_to_numpy(x)), _cast(_to_numpy(y)),
                               _to_numpy(sample_weight))
        return self._format_logs(logs, return_dict)

    @staticmethod
    def _format_logs(logs: dict, return_dict: bool) -> Any:
        if return_dict:
            return dict(logs)
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

