"""Keras losses on shenjing Tensors: `loss='categorical_crossentropy'`, `keras.losses.MSE`, ...

Keras conventions: `fn(y_true, y_pred)` returns one value per sample (the mean over the last
axis for regression losses); a `Loss` object reduces those with `sample_weight` to a scalar
("sum_over_batch_size": the weighted sum divided by the number of values). Probabilistic
losses take probabilities by default (`from_logits=False`, after a softmax/sigmoid output
layer) and clip them to [1e-7, 1 - 1e-7] as Keras does, so a saturated output gives a large
finite loss, not inf.

When the model's output layer is a softmax, `fit` hands the cross-entropies the logits
instead (`call_fused`): `clamp(log_softmax(z), log(eps), log(1 - eps))` is the same value
and the same gradient as Keras's `log(clip(softmax(z), eps, 1 - eps))`, computed stably and
with fewer ops.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..nn import functional as F
from ..tensor import Tensor, as_tensor
from .registry import Registry, serialize, snake_case

__all__ = ["Loss", "LossFunctionWrapper", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "BinaryCrossentropy", "MeanSquaredError",
           "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
           "KLDivergence", "Hinge", "SquaredHinge", "CategoricalHinge", "Huber", "LogCosh",
           "Poisson", "CosineSimilarity", "categorical_crossentropy",
           "sparse_categorical_crossentropy", "binary_crossentropy", "mean_squared_error",
           "mean_absolute_error", "mean_absolute_percentage_error",
           "mean_squared_logarithmic_error", "kl_divergence", "hinge", "squared_hinge",
           "categorical_hinge", "huber", "log_cosh", "poisson", "cosine_similarity", "get",
           "serialize", "deserialize", "EPSILON"]

EPSILON = 1e-7
FUNCTIONS = Registry("loss function")
REGISTRY = Registry("loss")


# --------------------------------------------------------------------------- helpers

def _as_tensor(x: Any, dtype=None) -> Tensor:
    if isinstance(x, Tensor):
        return x if dtype is None or x.dtype == dtype else x.type(dtype)
    arr = np.asarray(x)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    elif arr.dtype == np.float64 and dtype is None:
        arr = arr.astype(np.float32)
    return as_tensor(arr)


def _float_pair(y_true: Any, y_pred: Any, name: str) -> tuple[Tensor, Tensor]:
    """y_pred as a float Tensor, y_true as a constant of its dtype with a matching rank."""
    y_pred = _as_tensor(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.type(np.float32)
    y_true = _as_tensor(y_true, y_pred.dtype)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape + (1,))
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    if y_true.shape != y_pred.shape:
        hint = ""
        if y_true.ndim == y_pred.ndim - 1 or (y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1):
            hint = (" (integer class labels need 'sparse_categorical_crossentropy', or one-hot "
                    "encode them with keras.utils.to_categorical)")
        raise ValueError(f"{name}: y_true has shape {tuple(y_true.shape)} but y_pred has shape "
                         f"{tuple(y_pred.shape)}; they must match{hint}")
    return y_true, y_pred


def _log_bounds(dtype: np.dtype) -> tuple[float, float]:
    """log(eps) and log(1 - eps) as Keras's clip gives them in `dtype`."""
    one = np.asarray(1.0, dtype)
    return float(np.log(np.asarray(EPSILON, dtype))), float(np.log(one - np.asarray(EPSILON,
                                                                                       dtype)))


def _sparse_labels(y_true: Any, y_pred: Tensor, name: str) -> np.ndarray:
    """Integer labels shaped like y_pred without its class axis, range-checked."""
    labels = np.asarray(y_true.numpy() if isinstance(y_true, Tensor) else y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.shape != y_pred.shape[:-1]:
        hint = (" (one-hot labels need 'categorical_crossentropy')"
                if labels.shape == y_pred.shape else "")
        raise ValueError(f"{name}: y_true has shape {labels.shape} but y_pred has shape "
                         f"{tuple(y_pred.shape)}; expected integer labels of shape "
                         f"{tuple(y_pred.shape[:-1])}{hint}")
    if labels.dtype.kind == "f":
        labels = labels.astype(np.int64)
    n = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"{name}: labels must be integers in [0, {n}) for y_pred with {n} "
                         f"classes; got values in [{labels.min()}, {labels.max()}]")
    return labels


# --------------------------------------------------------------------------- functions

@FUNCTIONS.register("mse", "MSE")
def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_squared_error")
    return F.mse_loss(y_pred, y_true, reduction="none").mean(-1)


@FUNCTIONS.register("mae", "MAE")
def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_absolute_error")
    return F.l1_loss(y_pred, y_true, reduction="none").mean(-1)


@FUNCTIONS.register("mape", "MAPE")
def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_absolute_percentage_error")
    denom = as_tensor(np.maximum(np.abs(y_true.numpy()), EPSILON).astype(y_pred.dtype))
    return 100.0 * ((y_true - y_pred).abs() / denom).mean(-1)


@FUNCTIONS.register("msle", "MSLE")
def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_squared_logarithmic_error")
    d = (y_pred.clamp(min=EPSILON) + 1.0).log() - (y_true.clamp(min=EPSILON) + 1.0).log()
    return (d * d).mean(-1)


@FUNCTIONS.register()
def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "categorical_crossentropy")
    if label_smoothing:
        n = y_pred.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    if from_logits:
        logp = y_pred.log_softmax(axis)
    else:
        p = y_pred / y_pred.sum(axis, keepdim=True)
        logp = p.clamp(EPSILON, 1.0 - EPSILON).log()
    return -(y_true * logp).sum(axis)


@FUNCTIONS.register()
def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1) -> Tensor:
    y_pred = _as_tensor(y_pred)
    if axis not in (-1, y_pred.ndim - 1):
        raise ValueError("sparse_categorical_crossentropy: only axis=-1 is supported")
    labels = np.asarray(y_true.numpy() if isinstance(y_true, Tensor) else y_true)
    keep = None
    if ignore_class is not None:
        keep = labels != ignore_class
        labels = np.where(keep, labels, 0)
    labels = _sparse_labels(labels, y_pred, "sparse_categorical_crossentropy")
    c = y_pred.shape[-1]
    targets = as_tensor(labels.reshape(-1).astype(np.int64))
    if from_logits:
        out = F.cross_entropy(y_pred.reshape(-1, c), targets, reduction="none")
    else:  # Keras normalizes and clips the probabilities before the log
        p = y_pred / y_pred.sum(-1, keepdim=True)
        logp = p.clamp(EPSILON, 1.0 - EPSILON).log()
        out = F.nll_loss(logp.reshape(-1, c), targets, reduction="none")
    out = out.reshape(labels.shape)
    if keep is not None:
        out = out * as_tensor(keep.reshape(out.shape).astype(out.dtype))
    return out


@FUNCTIONS.register()
def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "binary_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        out = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:  # Keras clips the probabilities, so a saturated output gives a finite loss
        out = F.binary_cross_entropy(y_pred.clamp(EPSILON, 1.0 - EPSILON), y_true,
                                     reduction="none")
    return out.mean(axis)


@FUNCTIONS.register("kld", "KLD", "kullback_leibler_divergence")
def kl_divergence(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "kl_divergence")
    log_p = y_pred.clamp(EPSILON, 1.0).log()
    return F.kl_div(log_p, y_true.clamp(EPSILON, 1.0), reduction="none").sum(-1)


def _hinge_labels(y_true: Tensor) -> Tensor:
    """Binary labels {0, 1} become {-1, 1}, as Keras's hinge losses do."""
    v = y_true.numpy()
    if np.all((v == 0) | (v == 1)):
        return y_true * 2.0 - 1.0
    return y_true


@FUNCTIONS.register()
def hinge(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "hinge")
    return F.hinge_loss(y_pred, _hinge_labels(y_true), reduction="none").mean(-1)


@FUNCTIONS.register()
def squared_hinge(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "squared_hinge")
    h = F.hinge_loss(y_pred, _hinge_labels(y_true), reduction="none")
    return (h * h).mean(-1)


@FUNCTIONS.register()
def categorical_hinge(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "categorical_hinge")
    pos = (y_true * y_pred).sum(-1)
    neg = ((1.0 - y_true) * y_pred).amax(-1)
    return (neg - pos + 1.0).relu()


@FUNCTIONS.register()
def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "huber")
    return F.huber_loss(y_pred, y_true, reduction="none", delta=float(delta)).mean(-1)


@FUNCTIONS.register("logcosh")
def log_cosh(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "log_cosh")
    x = y_pred - y_true
    # log(cosh(x)) = x + softplus(-2x) - log(2), stable for large |x|
    return (x + F.softplus(x * -2.0) - math.log(2.0)).mean(-1)


@FUNCTIONS.register()
def poisson(y_true: Any, y_pred: Any) -> Tensor:
    y_true, y_pred = _float_pair(y_true, y_pred, "poisson")
    return (y_pred - y_true * (y_pred + EPSILON).log()).mean(-1)


@FUNCTIONS.register()
def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Tensor:
    """Minus the cosine of the angle between y_true and y_pred (Keras clamps each squared
    norm at 1e-12, i.e. each norm at 1e-6)."""
    y_true, y_pred = _float_pair(y_true, y_pred, "cosine_similarity")
    return -F.cosine_similarity(y_true, y_pred, dim=axis, eps=1e-6)


# --------------------------------------------------------------------------- Loss objects

_REDUCTIONS = ("sum_over_batch_size", "sum", "none", "mean", None, "auto")


def reduce_loss(values: Tensor, sample_weight: Any, reduction: str | None) -> Tensor:
    """Apply sample weights (broadcast over trailing axes) and a Keras reduction."""
    if sample_weight is not None:
        sw = np.asarray(sample_weight.numpy() if isinstance(sample_weight, Tensor)
                        else sample_weight, dtype=values.dtype)
        while sw.ndim > values.ndim and sw.shape[-1] == 1:
            sw = sw.reshape(sw.shape[:-1])
        sw = sw.reshape(sw.shape + (1,) * (values.ndim - sw.ndim))
        values = values * as_tensor(sw)
    if reduction in ("none", None):
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean" and sample_weight is not None:
        total = float(np.sum(np.broadcast_to(sw, values.shape)))
        return values.sum() / max(total, EPSILON)
    return values.mean()


class Loss:
    """Base class: `loss(y_true, y_pred, sample_weight=None)` -> scalar Tensor."""

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size",
                 dtype: Any = None) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"'sum_over_batch_size', 'sum', 'mean' or 'none', got {reduction!r}")
        self.name = name or snake_case(type(self).__name__)
        self.reduction = "sum_over_batch_size" if reduction == "auto" else reduction
        self.dtype = dtype

    def call(self, y_true: Any, y_pred: Any) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        return reduce_loss(self.call(y_true, y_pred), sample_weight, self.reduction)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        return cls(**config)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            REGISTRY.add(cls)


class LossFunctionWrapper(Loss):
    """A Loss from a function `fn(y_true, y_pred, **kwargs)` returning per-sample values."""

    def __init__(self, fn: Callable, name: str | None = None,
                 reduction: str = "sum_over_batch_size", **kwargs) -> None:
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction)
        self.fn = fn
        self.fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        out = self.fn(y_true, y_pred, **self.fn_kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"loss {self.name!r} must return a shenjing Tensor (built from "
                            f"y_pred with Tensor ops so it can be differentiated), got "
                            f"{type(out).__name__}")
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), **self.fn_kwargs}


def _wrapper(fn: Callable, default_name: str, **fixed: Any) -> type:
    """A LossFunctionWrapper subclass with Keras's constructor signature for `fn`."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = default_name,
                 **kwargs: Any) -> None:
        unknown = set(kwargs) - set(fixed)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(unknown)}")
        LossFunctionWrapper.__init__(self, fn, name=name, reduction=reduction,
                                     **{**fixed, **kwargs})

    return __init__


class _CrossEntropy(LossFunctionWrapper):
    """Cross-entropies that `fit` may evaluate on logits when the output is a softmax."""

    sparse = False

    @property
    def from_logits(self) -> bool:
        return bool(self.fn_kwargs.get("from_logits", False))

    def fusable(self) -> bool:
        return (not self.from_logits and self.fn_kwargs.get("axis", -1) == -1
                and not self.fn_kwargs.get("ignore_class"))

    def call_fused(self, y_true: Any, logits: Tensor) -> Tensor:
        """Per-sample loss from the logits of a softmax output (see the module docstring).

        With class-index (or exactly one-hot) targets this is nn's fused cross-entropy
        clamped to [-log(1 - eps), -log(eps)], which is -log(clip(p_y, eps, 1 - eps)) in value
        and gradient; soft or smoothed targets clamp each log-probability instead.
        """
        lo, hi = _log_bounds(logits.dtype)
        smoothing = self.fn_kwargs.get("label_smoothing", 0.0)
        if self.sparse:
            labels = _sparse_labels(y_true, logits, self.name)
        else:
            labels = None if smoothing else _one_hot_labels(y_true, logits)
        if labels is not None:
            c = logits.shape[-1]
            ce = F.cross_entropy(logits.reshape(-1, c),
                                 as_tensor(labels.reshape(-1).astype(np.int64, copy=False)),
                                 reduction="none")
            return ce.clamp(-hi, -lo).reshape(labels.shape)
        logp = logits.log_softmax(-1).clamp(lo, hi)
        y_true, _ = _float_pair(y_true, logits, self.name)
        if smoothing:
            y_true = y_true * (1.0 - smoothing) + smoothing / logits.shape[-1]
        return -(y_true * logp).sum(-1)


def _one_hot_labels(y_true: Any, logits: Tensor) -> np.ndarray | None:
    """Class indices when y_true is exactly one-hot with logits' shape, else None."""
    y = np.asarray(y_true.numpy() if isinstance(y_true, Tensor) else y_true)
    if y.shape != logits.shape or not np.all((y == 0) | (y == 1)) or \
            not np.all(y.sum(-1) == 1):
        return None
    return y.argmax(-1)


class CategoricalCrossentropy(_CrossEntropy):
    __init__ = _wrapper(categorical_crossentropy, "categorical_crossentropy",
                        from_logits=False, label_smoothing=0.0, axis=-1)


class SparseCategoricalCrossentropy(_CrossEntropy):
    sparse = True
    __init__ = _wrapper(sparse_categorical_crossentropy, "sparse_categorical_crossentropy",
                        from_logits=False, ignore_class=None, axis=-1)


class BinaryCrossentropy(LossFunctionWrapper):
    __init__ = _wrapper(binary_crossentropy, "binary_crossentropy", from_logits=False,
                        label_smoothing=0.0, axis=-1)


class MeanSquaredError(LossFunctionWrapper):
    __init__ = _wrapper(mean_squared_error, "mean_squared_error")


class MeanAbsoluteError(LossFunctionWrapper):
    __init__ = _wrapper(mean_absolute_error, "mean_absolute_error")


class MeanAbsolutePercentageError(LossFunctionWrapper):
    __init__ = _wrapper(mean_absolute_percentage_error, "mean_absolute_percentage_error")


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    __init__ = _wrapper(mean_squared_logarithmic_error, "mean_squared_logarithmic_error")


class KLDivergence(LossFunctionWrapper):
    __init__ = _wrapper(kl_divergence, "kl_divergence")


class Hinge(LossFunctionWrapper):
    __init__ = _wrapper(hinge, "hinge")


class SquaredHinge(LossFunctionWrapper):
    __init__ = _wrapper(squared_hinge, "squared_hinge")


class CategoricalHinge(LossFunctionWrapper):
    __init__ = _wrapper(categorical_hinge, "categorical_hinge")


class Huber(LossFunctionWrapper):
    __init__ = _wrapper(huber, "huber_loss", delta=1.0)


class LogCosh(LossFunctionWrapper):
    __init__ = _wrapper(log_cosh, "log_cosh")


class Poisson(LossFunctionWrapper):
    __init__ = _wrapper(poisson, "poisson")


class CosineSimilarity(LossFunctionWrapper):
    __init__ = _wrapper(cosine_similarity, "cosine_similarity", axis=-1)


for _fn, _cls in [(mean_squared_error, MeanSquaredError), (mean_absolute_error, MeanAbsoluteError),
                  (mean_absolute_percentage_error, MeanAbsolutePercentageError),
                  (mean_squared_logarithmic_error, MeanSquaredLogarithmicError),
                  (categorical_crossentropy, CategoricalCrossentropy),
                  (sparse_categorical_crossentropy, SparseCategoricalCrossentropy),
                  (binary_crossentropy, BinaryCrossentropy), (kl_divergence, KLDivergence),
                  (hinge, Hinge), (squared_hinge, SquaredHinge),
                  (categorical_hinge, CategoricalHinge), (huber, Huber), (log_cosh, LogCosh),
                  (poisson, Poisson), (cosine_similarity, CosineSimilarity)]:
    REGISTRY.add(_cls, _fn.__name__)
REGISTRY.add(MeanSquaredError, "mse", "MSE")
REGISTRY.add(MeanAbsoluteError, "mae", "MAE")
REGISTRY.add(MeanAbsolutePercentageError, "mape")
REGISTRY.add(MeanSquaredLogarithmicError, "msle")
REGISTRY.add(KLDivergence, "kld", "kullback_leibler_divergence")
REGISTRY.add(LogCosh, "logcosh")
REGISTRY.add(Huber, "huber_loss")

MSE = mse = mean_squared_error
MAE = mae = mean_absolute_error
MAPE = mape = mean_absolute_percentage_error
MSLE = msle = mean_squared_logarithmic_error
KLD = kld = kl_divergence


def get(identifier: Any) -> Loss:
    """A Loss object for a name, a Loss, a Loss class or a function fn(y_true, y_pred)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        return REGISTRY.lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise TypeError(f"loss: expected a name such as 'categorical_crossentropy', a "
                    f"keras.losses.Loss or a function(y_true, y_pred), got {identifier!r}")


def deserialize(config: Any, custom_objects: dict | None = None) -> Loss:
    if isinstance(config, dict):
        cls = REGISTRY.lookup(config["class_name"], custom_objects)
        return cls.from_config(config.get("config", {}))
    if isinstance(config, str):
        try:
            return get(REGISTRY.lookup(config, custom_objects))
        except ValueError:
            return LossFunctionWrapper(FUNCTIONS.lookup(config, custom_objects))
    return get(config)


def serialize_loss(loss: Loss) -> Any:
    """The JSON form of a compiled loss; a wrapped plain function is saved by name."""
    if type(loss) is LossFunctionWrapper:
        return serialize(loss.fn)
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


serialize = serialize
