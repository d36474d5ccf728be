"""compile / fit / evaluate / predict: Keras's training loop on shenjing's autograd.

`fit` follows Keras 3's order of events (see callbacks.py) with DESIGN.md's fixes. Data may
be NumPy arrays or lists/dicts of arrays (batched by `shenjing.data.DataLoader`, see
batching.py), or a DataLoader / any re-iterable of (x, y[, w]) batches. The logged
`loss` and metrics are running averages over the epoch, as Keras reports them; `val_`
values come from a full pass over the validation data.

A non-finite loss stops training with `NonFiniteLossError` naming the epoch and batch,
raised before that batch's update so the model keeps its last finite weights, unless a
`TerminateOnNaN` callback is given, which stops training quietly as in Keras.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import autograd
from ..tensor import Tensor
from . import distribution as distribution_mod
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .batching import (
    Batches,
    cast_floats,
    class_weights,
    num_samples,
    split_validation,
    to_numpy,
    unpack,
)
from .callbacks import CallbackList, TerminateOnNaN

__all__ = ["Trainer", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def _softmax_np(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    e /= e.sum(-1, keepdims=True)
    return e


def _scalar(value: Any) -> Any:
    """A metric result as a Python float (Tensors and 0-d arrays included)."""
    if isinstance(value, Tensor):
        value = value.numpy()
    arr = np.asarray(value)
    return float(arr) if arr.ndim == 0 else arr


def _per_output(spec: Any, names: list[str], what: str, default: Any) -> list:
    """A compile argument given once, as a list in output order or as a dict by name."""
    if isinstance(spec, dict):
        unknown = set(spec) - set(names)
        if unknown:
            raise ValueError(f"compile: {what} has keys {sorted(unknown)} that are not output "
                             f"names; the outputs are {names}")
        return [spec.get(n, default) for n in names]
    if isinstance(spec, (list, tuple)):
        if what == "metrics" and not any(isinstance(m, (list, tuple, dict)) for m in spec):
            return [list(spec)] * len(names)  # one list of metrics for every output
        if len(spec) != len(names):
            raise ValueError(f"compile: {what} has {len(spec)} entries but the model has "
                             f"{len(names)} outputs {names}")
        return list(spec)
    return [spec if spec is not None else default] * len(names)


class _MultiOutput:
    """The losses, weights and metrics of a model with several outputs, resolved by output
    name at the first batch. Logs as Keras does: loss, <out>_loss, <out>_<metric>."""

    def __init__(self, loss: Any, loss_weights: Any, metrics: Any) -> None:
        self.spec = (loss, loss_weights, metrics)
        self.names: list[str] | None = None

    def _resolve(self, names: list[str], y: Any, pred: list) -> None:
        loss, weights, metrics = self.spec
        self.names = names
        self.losses = [losses_mod.get(v) if v is not None else None
                       for v in _per_output(loss, names, "loss", None)]
        self.weights = [float(w) for w in _per_output(weights, names, "loss_weights", 1.0)]
        per_metrics = _per_output(metrics or [], names, "metrics", [])
        self.loss_trackers = [metrics_mod.Mean(name=f"{n}_loss") for n, lo in
                              zip(names, self.losses) if lo is not None] \
            if len(names) > 1 else []
        self.metric_objs: list[tuple[int, Any]] = []
        for i, ids in enumerate(per_metrics):
            ids = ids if isinstance(ids, (list, tuple)) else [ids]
            for m in ids:
                if m is None:
                    continue
                obj = metrics_mod.resolve(m, np.asarray(y[i]), pred[i]) if y[i] is not None \
                    else metrics_mod.get(m)
                if len(names) > 1:
                    obj.name = f"{names[i]}_{obj.name}"
                self.metric_objs.append((i, obj))

    def trackers(self) -> list:
        if self.names is None:
            return []
        return list(self.loss_trackers) + [m for _, m in self.metric_objs]

    def _targets(self, y: Any) -> list:
        names = self.names
        if y is None:
            return [None] * len(names)
        if isinstance(y, dict):
            unknown = set(y) - set(names)
            if unknown:
                raise ValueError(f"targets have keys {sorted(unknown)} that are not output "
                                 f"names; the outputs are {names}")
            return [y.get(n) for n in names]
        if isinstance(y, (list, tuple)):
            if len(y) != len(names):
                raise ValueError(f"got {len(y)} targets for {len(names)} outputs {names}")
            return list(y)
        if len(names) == 1:
            return [y]
        raise ValueError(f"the model has {len(names)} outputs {names}: give the targets as a "
                         f"list or a dict keyed by output name")

    def compute(self, model: Any, out: Any, y: Any, sw: Any) -> tuple:
        flat = list(out.values()) if isinstance(out, dict) else \
            list(out) if isinstance(out, (list, tuple)) else [out]
        pred = [o.numpy() for o in flat]
        if self.names is None:
            names = model._output_names(out)
            self.names = names
            self._resolve(names, self._targets(y), pred)
        targets = self._targets(y)
        total, self.last = None, []
        for i, (lo, w, t, o) in enumerate(zip(self.losses, self.weights, targets, flat)):
            if lo is None:
                continue
            if t is None:
                raise ValueError(f"no target given for output {self.names[i]!r}, which has "
                                 f"a loss")
            value = lo(t, o, sw)
            self.last.append(float(value.numpy()))
            term = value * w if w != 1.0 else value
            total = term if total is None else total + term
        return total, pred

    def update(self, y: Any, pred: list, sw: Any, n: int) -> None:
        for tracker, value in zip(self.loss_trackers, self.last):
            tracker.update_state(np.asarray(value), sample_weight=np.asarray(n))
        targets = self._targets(y)
        for i, m in self.metric_objs:
            if targets[i] is not None:
                m.update_state(targets[i], pred[i], sw)


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
        self._multi: _MultiOutput | None = None
        self._loss_tracker = metrics_mod.Mean(name="loss")
        self._loss_tracker._direction = "down"
        self._compile_config: dict | None = None

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, weighted_metrics: Any = None, run_eagerly: bool = False,
                steps_per_execution: int = 1, jit_compile: Any = "auto",
                auto_scale_loss: bool = True) -> None:
        """Configure training: optimizer, loss and metrics (names or objects). For models
        with several outputs, loss, loss_weights and metrics may be lists (in output order)
        or dicts keyed by output name; without a loss the model's own add_loss terms are
        minimized."""
        if weighted_metrics is not None:
            raise NotImplementedError("compile: weighted_metrics is not supported")
        self.optimizer = optimizers_mod.get(optimizer)
        if isinstance(self.optimizer, optimizers_mod.Optimizer) and self.optimizer.built and \
                getattr(self.optimizer, "_owner", None) is not self:
            self.optimizer._impl = None  # built for another model: rebuild on our weights
        self.loss = loss
        per_output = isinstance(loss, (list, tuple, dict)) or \
            isinstance(loss_weights, (list, tuple, dict)) or isinstance(metrics, dict)
        self.compiled_loss = losses_mod.get(loss) if loss is not None and \
            not isinstance(loss, (list, tuple, dict)) else None
        if metrics is not None and not isinstance(metrics, (list, tuple, dict)):
            metrics = [metrics]
        self._multi = _MultiOutput(loss, loss_weights, metrics) if per_output else None
        self._metric_ids = [] if isinstance(metrics, dict) else list(metrics or [])
        self._metric_objs = None
        self.compiled = True
        self._compile_config = {"optimizer": optimizer if isinstance(optimizer, str) else None,
                                "loss": loss if isinstance(loss, str) else None,
                                "metrics": [m for m in self._metric_ids if isinstance(m, str)]}

    def _assert_compiled(self, what: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before using the model ({what}).")

    def _output_names(self, out: Any) -> list[str]:
        """Keras's output names: dict keys, else the output layers' names."""
        if isinstance(out, dict):
            return list(out)
        outputs = getattr(self, "_graph_outputs", None)
        flat = list(out) if isinstance(out, (list, tuple)) else [out]
        if outputs and len(outputs) == len(flat):
            return [t._keras_history[0].name for t in outputs]
        return [f"output_{i + 1}" for i in range(len(flat))]

    @property
    def metrics(self) -> list:
        multi = getattr(self, "_multi", None)
        extra = multi.trackers() if multi is not None else []
        return [self._loss_tracker] + extra + list(self._metric_objs or [])

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
            self._output_is_softmax() and self._multi is None
        out = self._run_model(x, training, logits=fused)
        several = isinstance(out, (list, tuple, dict)) and not (
            isinstance(out, (list, tuple)) and len(out) == 1 and self._multi is None)
        if several or self._multi is not None:
            if self._multi is None:
                self._multi = _MultiOutput(self.loss, None, self._metric_ids)
                self._metric_ids = []
            loss, pred = self._multi.compute(self, out, y, sw)
        elif fused:
            values = loss_obj.call_fused(y, out)
            loss = losses_mod.reduce_loss(values, sw, loss_obj.reduction)
            pred = _softmax_np(out.numpy())
        else:
            out = out[0] if isinstance(out, (list, tuple)) else out
            loss = loss_obj(y, out, sw) if loss_obj is not None else None
            pred = out.numpy()
        extra = self.losses
        if loss is None and not extra:
            raise ValueError("the model was compiled without a loss and adds none itself "
                             "(add_loss); pass loss=... to compile()")
        if loss is not None and (not isinstance(loss, Tensor) or loss.numpy().size != 1):
            raise ValueError(f"the loss must reduce to a scalar, got "
                             f"{getattr(loss, 'shape', loss)}")
        if extra:
            total = sum(extra[1:], extra[0])
            loss = total if loss is None else loss + total
        return loss, pred

    def _update_metrics(self, loss_value: float, n: int, y: Any, pred: np.ndarray,
                        sw: Any) -> dict:
        self._loss_tracker.update_state(np.asarray(loss_value), sample_weight=np.asarray(n))
        if self._multi is not None:
            self._multi.update(y, pred, sw, n)
        elif y is not None:
            if self._metric_objs is None:
                self._metric_objs = [metrics_mod.resolve(m, np.asarray(y), pred)
                                     for m in self._metric_ids]
            for m in self._metric_objs:
                m.update_state(y, pred, sw)
        return self._logs()

    def _logs(self) -> dict:
        return {m.name: _scalar(m.result()) for m in self.metrics}

    def _train_step(self, x: Any, y: Any, sw: Any, epoch: int, step: int, steps: Any,
                    raise_on_nan: bool) -> dict:
        opt = self.optimizer
        x, y, sw = distribution_mod.local_batch(self, x, y, sw)  # this rank's share, if any
        loss, pred = self._compute_loss(x, y, sw, training=True)
        value = float(loss.numpy())
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
        distribution_mod.average_gradients(self, params)  # no-op unless DataParallel is set
        opt.step()
        return self._update_metrics(value, num_samples(x), y, pred, sw)

    def _test_step(self, x: Any, y: Any, sw: Any) -> dict:
        with autograd.no_grad():
            loss, pred = self._compute_loss(x, y, sw, training=False)
        return self._update_metrics(float(loss.numpy()), num_samples(x), y, pred, sw)

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
            (x, y, sample_weight), validation_data = split_validation(
                x, y, sample_weight, validation_split)
        batches = Batches(x, y, sample_weight, batch_size, shuffle, steps_per_epoch,
                           class_weight)
        val = None
        if validation_data is not None:
            val = unpack(validation_data) if isinstance(validation_data, (list, tuple)) \
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
        batches = Batches(x, y, sample_weight, batch_size, False, steps, what="evaluate")
        cbs = self._make_callbacks(callbacks, verbose, 1, batches.num_batches, False)
        self.reset_metrics()
        logs: dict = {}
        cbs.on_test_begin()
        for step, (xb, yb, swb) in enumerate(batches):
            cbs.on_test_batch_begin(step)
            logs = self._test_step(xb, yb, swb)
            cbs.on_test_batch_end(step, logs)
        logs = self._logs()
        cbs.on_test_end(logs)
        if return_dict:
            return dict(logs)
        values = [logs[k] for k in logs]
        return values[0] if len(values) == 1 else values

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto",
                steps: int | None = None, callbacks: Any = None) -> Any:
        """The model's outputs as NumPy arrays (inference mode, batch by batch)."""
        verbose = 1 if verbose == "auto" else int(verbose)
        batches = Batches(x, None, None, batch_size, False, steps, what="predict")
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
        if isinstance(outputs[0], dict):
            return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        if isinstance(outputs[0], list):
            return [np.concatenate(parts) for parts in zip(*outputs)]
        return np.concatenate(outputs)

    def predict_on_batch(self, x: Any) -> Any:
        with autograd.no_grad():
            out = self._run_model(cast_floats(to_numpy(x)), False)
        if isinstance(out, dict):
            return {k: o.numpy() for k, o in out.items()}
        if isinstance(out, (list, tuple)):
            return [o.numpy() for o in out]
        return out.numpy()

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict | None = None, return_dict: bool = False) -> Any:
        """One update on one batch; returns the running loss (and metrics)."""
        self._assert_compiled("train_on_batch")
        x, y, sw = cast_floats(to_numpy(x)), cast_floats(to_numpy(y)), to_numpy(sample_weight)
        if class_weight is not None:
            cw = class_weights(np.asarray(y), class_weight)
            sw = cw if sw is None else sw * cw
        logs = self._train_step(x, y, sw, 0, 0, None, True)
        return self._format_logs(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        self._assert_compiled("test_on_batch")
        logs = self._test_step(cast_floats(to_numpy(x)), cast_floats(to_numpy(y)),
                               to_numpy(sample_weight))
        return self._format_logs(logs, return_dict)

    @staticmethod
    def _format_logs(logs: dict, return_dict: bool) -> Any:
        if return_dict:
            return dict(logs)
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

