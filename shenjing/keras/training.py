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
            pred = _softmax_np(out.numpy())
        else:
            loss = loss_obj(y, out, sw)
            pred = out.numpy()
        if not isinstance(loss, Tensor) or loss.numpy().size != 1:
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
        if isinstance(outputs[0], list):
            return [np.concatenate(parts) for parts in zip(*outputs)]
        return np.concatenate(outputs)

    def predict_on_batch(self, x: Any) -> Any:
        with autograd.no_grad():
            out = self._run_model(cast_floats(to_numpy(x)), False)
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

