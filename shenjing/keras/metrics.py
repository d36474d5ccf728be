"""Keras metrics: stateful accumulators on NumPy (`metrics=['accuracy', 'precision', 'auc']`).

A metric sees each batch through `update_state(y_true, y_pred, sample_weight)` and reports
the value over everything seen since `reset_state()` through `result()`; `fit` shows those
running values in the progress bar and logs. Metrics never touch the autograd graph: they
work on the arrays of the predictions. `accuracy` is resolved the way Keras 3 resolves it,
from the shapes of the first batch: binary (one output column), sparse (integer labels) or
categorical (one-hot labels).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import autograd
from ..metrics import scores_from_counts
from ..tensor import Tensor, as_tensor
from . import losses as _losses
from .initializers import get as get_initializer
from .metric_state import MetricVariable
from .registry import Registry, snake_case

__all__ = ["Metric", "MetricVariable", "Mean", "Sum", "MeanMetricWrapper", "Accuracy",
           "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Precision", "Recall", "F1Score", "FBetaScore",
           "AUC", "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "BinaryCrossentropy", "KLDivergence", "Hinge",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "get", "resolve"]

REGISTRY = Registry("metric")
EPSILON = 1e-7


def _np(x: Any) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def _weights(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    sw = _np(sample_weight).astype(np.float64).reshape(-1)
    if sw.size != n:
        raise ValueError(f"sample_weight has {sw.size} values for {n} samples")
    return sw


class Metric:
    """Base class: update_state / result / reset_state; `metric(y_true, y_pred)` does both.

    Custom metrics subclass it as in Keras 3: create state with `add_variable` in
    `__init__`, accumulate in `update_state`, report in `result`; the default
    `reset_state` restores every variable's initial value.

    `_direction` ('up', 'down' or None) tells callbacks in mode='auto' whether higher is
    better."""

    _direction: str | None = None

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or snake_case(type(self).__name__)
        self.dtype = dtype
        self._variables: list[MetricVariable] = []
        owner = next(k for k in type(self).__mro__ if "reset_state" in k.__dict__)
        if owner.__module__.startswith("shenjing."):  # a user's reset_state may need
            self.reset_state()                        # variables its __init__ adds later

    def add_variable(self, shape: Any = (), initializer: Any = "zeros", dtype: Any = None,
                     aggregation: str = "sum", name: str | None = None) -> MetricVariable:
        """A state variable of this metric, reset to its initial value by reset_state."""
        shape = tuple(int(s) for s in (shape or ()))
        value = np.asarray(get_initializer(initializer)(shape),
                           dtype=np.dtype(dtype) if dtype else np.float32)
        var = MetricVariable(value.reshape(shape), name or f"variable_{len(self._variables)}")
        self.__dict__.setdefault("_variables", []).append(var)
        return var

    add_weight = add_variable

    @property
    def variables(self) -> list[MetricVariable]:
        return list(self.__dict__.get("_variables", ()))

    def reset_state(self) -> None:
        """Restore the variables made with add_variable (built-in metrics override this)."""
        for var in self.__dict__.get("_variables", ()):
            var.reset()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        raise NotImplementedError  # pragma: no cover

    def result(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        return cls(**config)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            REGISTRY.add(cls)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """The (weighted) mean of the values given to update_state(values, sample_weight)."""

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:  # type: ignore
        v = _np(values).astype(np.float64)
        if sample_weight is None:
            self.total += float(v.sum())
            self.count += v.size
            return
        sw = np.broadcast_to(_np(sample_weight).astype(np.float64).reshape(
            _np(sample_weight).shape + (1,) * (v.ndim - np.ndim(sample_weight))), v.shape)
        self.total += float((v * sw).sum())
        self.count += float(sw.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class Sum(Mean):
    def result(self) -> float:
        return self.total


class MeanMetricWrapper(Mean):
    """The mean over samples of a per-sample function fn(y_true, y_pred, **kwargs)."""

    def __init__(self, fn: Callable, name: str | None = None, dtype: Any = None,
                 **kwargs: Any) -> None:
        self.fn = fn
        self.fn_kwargs = kwargs
        super().__init__(name or fn.__name__, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        with autograd.no_grad():
            values = self.fn(y_true, y_pred, **self.fn_kwargs)
        super().update_state(_np(values), sample_weight)

    def get_config(self) -> dict:
        return {"name": self.name, **self.fn_kwargs}


# --------------------------------------------------------------------------- accuracies

def _match(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        return y_true.reshape(y_true.shape + (1,))
    return y_true


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    y_true, y_pred = _np(y_true), _np(y_pred)
    y_true = _match(y_true, y_pred)
    return np.mean((y_pred > threshold) == (y_true > 0.5), axis=-1)


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    return (np.argmax(_np(y_true), -1) == np.argmax(_np(y_pred), -1)).astype(np.float64)


def _sparse_labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    return y_true


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    y_pred = _np(y_pred)
    labels = _sparse_labels(_np(y_true), y_pred)
    return (np.argmax(y_pred, -1) == labels).astype(np.float64)


def _in_top_k(labels: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    target = np.take_along_axis(y_pred, labels[..., None].astype(np.int64), -1)
    return (np.sum(y_pred > target, -1) < k).astype(np.float64)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    y_pred = _np(y_pred)
    return _in_top_k(np.argmax(_np(y_true), -1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    y_pred = _np(y_pred)
    return _in_top_k(_sparse_labels(_np(y_true), y_pred), y_pred, k)


def _mean_wrapper(fn: Callable, default: str, **fixed: Any) -> Callable:
    def __init__(self, name: str = default, dtype: Any = None, **kwargs: Any) -> None:
        MeanMetricWrapper.__init__(self, fn, name, dtype, **{**fixed, **kwargs})

    return __init__


class _Higher:
    """Mixin: higher values are better (for callbacks in mode='auto')."""

    _direction = "up"


class Accuracy(_Higher, MeanMetricWrapper):
    """Exact equality of y_true and y_pred (Keras's `Accuracy` class, not 'accuracy')."""

    __init__ = _mean_wrapper(lambda t, p: (_match(_np(t), _np(p)) == _np(p)).astype(float),
                             "accuracy")


class BinaryAccuracy(_Higher, MeanMetricWrapper):
    __init__ = _mean_wrapper(binary_accuracy, "binary_accuracy", threshold=0.5)


class CategoricalAccuracy(_Higher, MeanMetricWrapper):
    __init__ = _mean_wrapper(categorical_accuracy, "categorical_accuracy")


class SparseCategoricalAccuracy(_Higher, MeanMetricWrapper):
    __init__ = _mean_wrapper(sparse_categorical_accuracy, "sparse_categorical_accuracy")


class TopKCategoricalAccuracy(_Higher, MeanMetricWrapper):
    __init__ = _mean_wrapper(top_k_categorical_accuracy, "top_k_categorical_accuracy", k=5)


class SparseTopKCategoricalAccuracy(_Higher, MeanMetricWrapper):
    __init__ = _mean_wrapper(sparse_top_k_categorical_accuracy,
                             "sparse_top_k_categorical_accuracy", k=5)


class _LossMetric(MeanMetricWrapper):
    _direction = "down"


def _loss_metric(name: str, fn: Callable, default: str, **fixed: Any) -> type:
    return type(name, (_LossMetric,), {"__init__": _mean_wrapper(fn, default, **fixed)})


MeanSquaredError = _loss_metric("MeanSquaredError", _losses.mean_squared_error,
                                "mean_squared_error")
MeanAbsoluteError = _loss_metric("MeanAbsoluteError", _losses.mean_absolute_error,
                                 "mean_absolute_error")
MeanAbsolutePercentageError = _loss_metric("MeanAbsolutePercentageError",
                                           _losses.mean_absolute_percentage_error,
                                           "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _loss_metric("MeanSquaredLogarithmicError",
                                           _losses.mean_squared_logarithmic_error,
                                           "mean_squared_logarithmic_error")
CategoricalCrossentropy = _loss_metric("CategoricalCrossentropy",
                                       _losses.categorical_crossentropy,
                                       "categorical_crossentropy", from_logits=False)
SparseCategoricalCrossentropy = _loss_metric("SparseCategoricalCrossentropy",
                                             _losses.sparse_categorical_crossentropy,
                                             "sparse_categorical_crossentropy",
                                             from_logits=False)
BinaryCrossentropy = _loss_metric("BinaryCrossentropy", _losses.binary_crossentropy,
                                  "binary_crossentropy", from_logits=False)
KLDivergence = _loss_metric("KLDivergence", _losses.kl_divergence, "kl_divergence")
Hinge = _loss_metric("Hinge", _losses.hinge, "hinge")


class RootMeanSquaredError(Mean):
    _direction = "down"

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = _np(y_pred)
        d = y_pred - _match(_np(y_true), y_pred)
        super().update_state(d * d, sample_weight)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


# --------------------------------------------------------------------------- confusion-based

def _binary_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """y_true as 0/1 with y_pred's shape; integer labels against (N, C) become one-hot."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_pred.ndim >= 2 and y_pred.shape[-1] > 1 and (
            y_true.ndim == y_pred.ndim - 1 or (y_true.ndim == y_pred.ndim
                                               and y_true.shape[-1] == 1)):
        labels = _sparse_labels(y_true, y_pred).astype(np.int64)
        y_true = np.eye(y_pred.shape[-1], dtype=np.float64)[labels]
    y_true = _match(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    return y_true > 0.5, y_pred


class _Confusion(Metric):
    """True/false positives/negatives at a threshold, accumulated over batches."""

    _direction = "up"

    def __init__(self, thresholds: float | None = None, top_k: int | None = None,
                 class_id: int | None = None, name: str | None = None,
                 dtype: Any = None) -> None:
        self.thresholds = 0.5 if thresholds is None else thresholds
        if not np.isscalar(self.thresholds):
            raise NotImplementedError(f"{type(self).__name__}: only one threshold is supported")
        self.top_k, self.class_id = top_k, class_id
        super().__init__(name, dtype)

    def reset_state(self) -> None:
        self.tp = self.fp = self.fn = self.tn = 0.0

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        t, p = _binary_inputs(y_true, y_pred)
        if self.top_k is not None:
            kth = -np.sort(-p, axis=-1)[..., self.top_k - 1: self.top_k]
            pred = p >= kth
        else:
            pred = p > self.thresholds
        if self.class_id is not None:
            t, pred = t[..., self.class_id], pred[..., self.class_id]
        w = _weights(sample_weight, t.shape[0]) if t.ndim else None
        if w is not None:
            w = np.broadcast_to(w.reshape((-1,) + (1,) * (t.ndim - 1)), t.shape)
        else:
            w = np.ones(t.shape)
        self.tp += float(w[t & pred].sum())
        self.fp += float(w[~t & pred].sum())
        self.fn += float(w[t & ~pred].sum())
        self.tn += float(w[~t & ~pred].sum())

    def get_config(self) -> dict:
        return {"name": self.name, "thresholds": self.thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_Confusion):
    """tp / (tp + fp) of predictions thresholded at 0.5 (0 when nothing is predicted)."""

    def result(self) -> float:
        return float(scores_from_counts(self.tp, self.fp, self.fn)[0])


class Recall(_Confusion):
    """tp / (tp + fn) of predictions thresholded at 0.5."""

    def result(self) -> float:
        return float(scores_from_counts(self.tp, self.fp, self.fn)[1])


class FBetaScore(_Higher, Metric):
    """F-beta per class from one-hot (or integer) labels, averaged as `average` says.

    threshold=None marks each sample's highest prediction as the positive class (Keras's
    rule); with one output column it means 0.5. average: None (one value per class),
    'micro', 'macro' or 'weighted'.
    """

    def __init__(self, average: str | None = None, beta: float = 1.0,
                 threshold: float | None = None, name: str = "fbeta_score",
                 dtype: Any = None) -> None:
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: average must be None, 'micro', 'macro' or "
                             f"'weighted', got {average!r}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        super().__init__(name, dtype)

    def reset_state(self) -> None:
        self.tp = self.fp = self.fn = None

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        t, p = _binary_inputs(y_true, y_pred)
        t, p = t.reshape(-1, t.shape[-1]), p.reshape(-1, p.shape[-1])
        if self.threshold is None and p.shape[-1] > 1:
            pred = p >= p.max(-1, keepdims=True)
        else:
            pred = p > (0.5 if self.threshold is None else self.threshold)
        w = _weights(sample_weight, t.shape[0])
        w = np.ones((t.shape[0], 1)) if w is None else w[:, None]
        tp, fp, fn = ((w * (t & pred)).sum(0), (w * (~t & pred)).sum(0),
                      (w * (t & ~pred)).sum(0))
        if self.tp is None:
            self.tp, self.fp, self.fn = tp, fp, fn
        else:
            self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn

    def result(self) -> Any:
        if self.tp is None:
            return 0.0
        tp, fp, fn = self.tp, self.fp, self.fn
        if self.average == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        f = scores_from_counts(tp, fp, fn, self.beta)[2]
        if self.average == "macro":
            return float(np.mean(f))
        if self.average == "weighted":
            support = self.tp + self.fn
            return float(np.sum(f * support) / max(np.sum(support), EPSILON))
        return float(f) if np.ndim(f) == 0 else f

    def get_config(self) -> dict:
        return {"name": self.name, "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    def __init__(self, average: str | None = None, threshold: float | None = None,
                 name: str = "f1_score", dtype: Any = None) -> None:
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("beta")
        return cfg


class AUC(_Higher, Metric):
    """Area under the ROC (or PR) curve, from confusion counts at `num_thresholds` thresholds.

    Keras's approximation, not the exact rank statistic: thresholds evenly spaced in [0, 1]
    (plus -eps and 1+eps), trapezoids for ROC and Davis & Goadrich interpolation for PR.
    Multi-class one-hot outputs are flattened (multi_label=False), as in Keras.
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name: str = "auc", dtype: Any = None,
                 thresholds: Any = None, multi_label: bool = False,
                 from_logits: bool = False, **kwargs: Any) -> None:
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"AUC: unknown summation_method {summation_method!r}")
        if multi_label:
            raise NotImplementedError("AUC: multi_label=True is not supported")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
        else:
            if num_thresholds <= 1:
                raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.thresholds = np.array([0.0 - EPSILON] + inner + [1.0 + EPSILON])
        self.num_thresholds = len(self.thresholds)
        self.curve, self.summation_method = curve, summation_method
        self.from_logits = from_logits
        super().__init__(name, dtype)

    def reset_state(self) -> None:
        n = getattr(self, "num_thresholds", 0)
        self.tp, self.fp, self.fn, self.tn = (np.zeros(n) for _ in range(4))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        t, p = _binary_inputs(y_true, y_pred)
        if self.from_logits:
            p = 1.0 / (1.0 + np.exp(-p))
        w = _weights(sample_weight, t.shape[0]) if t.ndim else None
        w = np.ones(t.shape) if w is None else np.broadcast_to(
            w.reshape((-1,) + (1,) * (t.ndim - 1)), t.shape)
        t, p, w = t.reshape(-1), p.reshape(-1).astype(np.float64), w.reshape(-1)
        for positive, above, below in ((True, "tp", "fn"), (False, "fp", "tn")):
            sel = t == positive
            vals, ws = p[sel], w[sel]
            order = np.argsort(vals)
            vals, cum = vals[order], np.concatenate([[0.0], np.cumsum(ws[order])])
            at_or_below = cum[np.searchsorted(vals, self.thresholds, side="right")]
            setattr(self, above, getattr(self, above) + cum[-1] - at_or_below)
            setattr(self, below, getattr(self, below) + at_or_below)

    def result(self) -> float:
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        n = self.num_thresholds
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._pr_interpolated()

        def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.divide(a, b, out=np.zeros_like(a), where=b != 0)

        if self.curve == "ROC":
            x, y = ratio(fp, fp + tn), ratio(tp, tp + fn)
        else:
            x, y = ratio(tp, tp + fn), ratio(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[: n - 1], y[1:])
        else:
            heights = np.maximum(y[: n - 1], y[1:])
        return float(np.sum((x[: n - 1] - x[1:]) * heights))

    def _pr_interpolated(self) -> float:
        tp, fp, fn = self.tp, self.fp, self.fn
        n = self.num_thresholds
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = np.maximum(p[: n - 1] - p[1:], 0)
        slope = np.divide(dtp, dp, out=np.zeros_like(dtp), where=dp != 0)
        intercept = tp[1:] - slope * p[1:]
        both = (p[: n - 1] > 0) & (p[1:] > 0)
        safe = np.ones_like(dtp)
        np.divide(p[: n - 1], np.maximum(p[1:], 0), out=safe, where=both)
        denom = np.maximum(tp[1:] + fn[1:], 0)
        inc = slope * (dtp + intercept * np.log(safe))
        return float(np.sum(np.divide(inc, denom, out=np.zeros_like(inc), where=denom != 0)))

    def get_config(self) -> dict:
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "from_logits": self.from_logits}


# --------------------------------------------------------------------------- lookup

for _name, _cls in [("accuracy", None), ("binary_accuracy", BinaryAccuracy),
                    ("categorical_accuracy", CategoricalAccuracy),
                    ("sparse_categorical_accuracy", SparseCategoricalAccuracy),
                    ("top_k_categorical_accuracy", TopKCategoricalAccuracy),
                    ("sparse_top_k_categorical_accuracy", SparseTopKCategoricalAccuracy),
                    ("precision", Precision), ("recall", Recall), ("auc", AUC),
                    ("f1_score", F1Score), ("fbeta_score", FBetaScore),
                    ("mse", MeanSquaredError), ("mean_squared_error", MeanSquaredError),
                    ("mae", MeanAbsoluteError), ("mean_absolute_error", MeanAbsoluteError),
                    ("mape", MeanAbsolutePercentageError),
                    ("mean_absolute_percentage_error", MeanAbsolutePercentageError),
                    ("msle", MeanSquaredLogarithmicError),
                    ("mean_squared_logarithmic_error", MeanSquaredLogarithmicError),
                    ("rmse", RootMeanSquaredError),
                    ("root_mean_squared_error", RootMeanSquaredError),
                    ("categorical_crossentropy", CategoricalCrossentropy),
                    ("sparse_categorical_crossentropy", SparseCategoricalCrossentropy),
                    ("binary_crossentropy", BinaryCrossentropy), ("kl_divergence", KLDivergence),
                    ("kld", KLDivergence), ("hinge", Hinge)]:
    if _cls is not None:
        REGISTRY.add(_cls, _name)


def get(identifier: Any) -> Metric:
    """A Metric for a name (named as given, as Keras does), a Metric, a class or a function."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        cls = REGISTRY.lookup(identifier)
        metric = cls()
        if identifier == "f1_score":
            # per-class F1 vectors do not fit a progress bar or a History curve: the string
            # form reports the macro average (F1Score(average=None) is still available)
            metric = F1Score(average="macro")
        metric.name = identifier
        return metric
    if isinstance(identifier, dict):
        cls = REGISTRY.lookup(identifier["class_name"])
        return cls.from_config(identifier.get("config", {}))
    if callable(identifier):
        return MeanMetricWrapper(_tensor_or_numpy(identifier), name=identifier.__name__)
    raise TypeError(f"metric: expected a name such as 'accuracy', a keras.metrics.Metric or a "
                    f"function(y_true, y_pred), got {identifier!r}")


def _tensor_or_numpy(fn: Callable) -> Callable:
    """A user metric function may use Tensor ops (like a loss): give it Tensors."""

    def wrapped(y_true: Any, y_pred: Any) -> np.ndarray:
        out = fn(as_tensor(np.asarray(_np(y_true))), as_tensor(_np(y_pred)))
        return _np(out)

    wrapped.__name__ = getattr(fn, "__name__", "metric")
    return wrapped


def resolve(identifier: Any, y_true: np.ndarray, y_pred: np.ndarray) -> Metric:
    """Keras 3's rule for 'accuracy'/'acc' and 'crossentropy'/'ce' given the batch shapes."""
    if identifier in ("accuracy", "acc", "crossentropy", "ce"):
        binary = y_pred.shape[-1] == 1 if y_pred.ndim else True
        sparse = y_true.ndim < y_pred.ndim or (
            y_true.ndim and y_true.shape[-1] == 1 and y_pred.shape[-1] > 1)
        if identifier in ("accuracy", "acc"):
            cls = BinaryAccuracy if binary else (
                SparseCategoricalAccuracy if sparse else CategoricalAccuracy)
        else:
            cls = BinaryCrossentropy if binary else (
                SparseCategoricalCrossentropy if sparse else CategoricalCrossentropy)
        return cls(name=identifier)
    return get(identifier)
