"""Loss functions (torch.nn.functional names) and their Module forms (torch.nn names).

The functions check shapes and dtypes at the user's call and hand the work to one fused op
in `shenjing.ops.loss`. `hinge_loss` (with margin 0: the perceptron criterion) has no torch
counterpart; the others follow torch's formulas, defaults and reductions.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..ops import loss as L
from ..tensor import Tensor, as_tensor, tensor
from .module import Module

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "hinge_loss",
           "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
           "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "HingeLoss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, op: str, allowed: tuple = _REDUCTIONS) -> str:
    if reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{op}: reduction must be one of {names}, got {reduction!r}")
    return reduction


def _input(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    return x


def _array(t) -> np.ndarray:
    return t.numpy() if isinstance(t, Tensor) else np.asarray(t)


def _const(t, dtype, op: str, name: str) -> np.ndarray | None:
    """A weight-like argument as an array of the input's dtype (never differentiated)."""
    if t is None:
        return None
    arr = _array(t)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{op}: {name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def _target_like(x: Tensor, target, op: str, same_shape: bool) -> Tensor:
    """The target as a Tensor of x's dtype; a shape mismatch raises (same_shape) or warns
    and broadcasts, as torch does."""
    if not isinstance(target, Tensor):
        target = as_tensor(np.asarray(target))
    if target.dtype != x.dtype:
        if target.dtype.kind not in "fiub":
            raise TypeError(f"{op}: target must be numeric, got dtype {target.dtype}")
        target = target.to(x.dtype)
    if target.shape != x.shape:
        msg = (f"{op}: target has shape {tuple(target.shape)} but the input has shape "
               f"{tuple(x.shape)}")
        if same_shape:
            raise ValueError(msg + "; they must be the same (e.g. reshape the target with "
                             ".view_as(input))")
        try:
            np.broadcast_shapes(target.shape, x.shape)
        except ValueError:
            raise ValueError(msg + ", and the two cannot be broadcast together") from None
        warnings.warn(msg + "; they will be broadcast, which is likely not what you want",
                      stacklevel=3)
    return target


# ----------------------------------------------------------------------------- class scores


def _class_layout(x: Tensor, op: str) -> tuple:
    """(number of classes C, the target's expected batch shape) for an input (C,),
    (N, C) or (N, C, d1, ...)."""
    if x.ndim == 0:
        raise ValueError(f"{op}: expected an input of shape (N, C) or (N, C, d1, ...), got a "
                         f"0-d tensor")
    if x.ndim == 1:
        return x.shape[0], ()
    return x.shape[1], (x.shape[0],) + tuple(x.shape[2:])


def _scores_2d(x: Tensor) -> Tensor:
    """Class scores as (M, C) rows: (C,) -> (1, C); (N, C, d...) -> class axis last."""
    if x.ndim == 1:
        return x.reshape(1, x.shape[0])
    if x.ndim == 2:
        return x
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    return x.permute(perm).reshape(-1, x.shape[1])


def _class_targets(x: Tensor, target, op: str, ignore_index: int) -> tuple:
    """(the class-index target as a flat int array, whether any entry equals ignore_index),
    or (None, False) when `target` holds class probabilities (a float tensor of the
    input's shape). Raises on shape or range errors."""
    c, batch = _class_layout(x, op)
    t = _array(target)
    if t.dtype.kind == "f":
        if t.shape == x.shape:
            return None, False
        if t.shape == batch:
            raise TypeError(f"{op}: target has dtype {t.dtype} and shape {t.shape}: class-index "
                            f"targets must be integers (call target.long()), probability "
                            f"targets must have the input's shape {tuple(x.shape)}")
        raise ValueError(f"{op}: probability target has shape {t.shape} but must have the "
                         f"input's shape {tuple(x.shape)}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices (int64) or float class "
                        f"probabilities, got dtype {t.dtype}")
    if t.shape != batch:
        hint = (f"; for one-hot or probability targets pass a float tensor of shape "
                f"{tuple(x.shape)}" if t.shape == x.shape else "")
        raise ValueError(f"{op}: target has shape {t.shape} but class-index targets must have "
                         f"shape {batch} (the input's shape {tuple(x.shape)} without the class "
                         f"dimension){hint}")
    flat = t.reshape(-1)
    if not flat.size:
        return flat, False
    lo, hi = int(np.minimum.reduce(flat)), int(np.maximum.reduce(flat))
    if lo < 0 or hi >= c:
        bad = flat[(flat != ignore_index) & ((flat < 0) | (flat >= c))]
        if bad.size:
            raise IndexError(f"{op}: target contains class index {int(bad[0])} but the input "
                             f"has {c} classes (valid indices are 0..{c - 1}, or "
                             f"ignore_index={ignore_index})")
    return flat, lo <= ignore_index <= hi


def _class_weight(weight, x: Tensor, c: int, op: str) -> np.ndarray | None:
    w = _const(weight, x.dtype, op, "weight")
    if w is not None and w.shape != (c,):
        raise ValueError(f"{op}: weight has shape {w.shape} but the input has {c} classes; "
                         f"expected shape ({c},)")
    return w


def _rows_to_batch(loss: Tensor, batch: tuple, reduction: str) -> Tensor:
    return loss.reshape(batch) if reduction == "none" else loss


def cross_entropy(input: Tensor, target, weight=None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Log-softmax + negative log-likelihood in one op.

    `target` holds class indices (int, shape = input's without the class dim 1) or class
    probabilities (float, the input's shape). Supports per-class `weight`, `ignore_index`
    (index targets), `label_smoothing` and reductions 'mean', 'sum', 'none', as torch.
    """
    op = "cross_entropy"
    x = _input(input, op)
    _check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    c, batch = _class_layout(x, op)
    w = _class_weight(weight, x, c, op)
    flat, ignoring = _class_targets(x, target, op, ignore_index)
    z = _scores_2d(x)
    if flat is None:
        t = _target_like(x, target, op, same_shape=True)
        loss = L.CrossEntropyProbs.apply(z, _scores_2d(t), weight=w,
                                         label_smoothing=float(label_smoothing),
                                         reduction=reduction)
    else:
        loss = L.CrossEntropy.apply(z, target=flat, weight=w,
                                    ignore_index=int(ignore_index) if ignoring else None,
                                    label_smoothing=float(label_smoothing), reduction=reduction)
    return _rows_to_batch(loss, batch, reduction)


def nll_loss(input: Tensor, target, weight=None, *, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C, ...) at class-index targets."""
    op = "nll_loss"
    x = _input(input, op)
    _check_reduction(reduction, op)
    c, batch = _class_layout(x, op)
    w = _class_weight(weight, x, c, op)
    flat, ignoring = _class_targets(x, target, op, ignore_index)
    if flat is None:
        raise TypeError(f"{op}: target must hold integer class indices, got a float tensor; "
                        f"use cross_entropy for probability targets")
    loss = L.NllLoss.apply(_scores_2d(x), target=flat, weight=w,
                           ignore_index=int(ignore_index) if ignoring else None,
                           reduction=reduction)
    return _rows_to_batch(loss, batch, reduction)


# ----------------------------------------------------------------------------- pointwise


def _pointwise(fn, input, target, op: str, reduction: str, same_shape: bool = False,
               allowed: tuple = _REDUCTIONS, **params) -> Tensor:
    x = _input(input, op)
    _check_reduction(reduction, op, allowed)
    t = _target_like(x, target, op, same_shape)
    return fn.apply(x, t, reduction=reduction, **params)


def mse_loss(input: Tensor, target, *, reduction: str = "mean") -> Tensor:
    """Mean squared error (x - y)^2."""
    return _pointwise(L.MseLoss, input, target, "mse_loss", reduction)


def l1_loss(input: Tensor, target, *, reduction: str = "mean") -> Tensor:
    """Mean absolute error |x - y|."""
    return _pointwise(L.L1Loss, input, target, "l1_loss", reduction)


def huber_loss(input: Tensor, target, *, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Quadratic within `delta` of the target, linear (slope delta) beyond."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return _pointwise(L.HuberLoss, input, target, "huber_loss", reduction, delta=float(delta))


def smooth_l1_loss(input: Tensor, target, *, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Huber loss divided by beta: quadratic within beta, |d| - beta/2 beyond."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    return _pointwise(L.SmoothL1Loss, input, target, "smooth_l1_loss", reduction,
                      beta=float(beta))


def binary_cross_entropy(input: Tensor, target, weight=None, *,
                         reduction: str = "mean") -> Tensor:
    """-w (y log p + (1 - y) log(1 - p)) for probabilities p; logs clamped at -100."""
    op = "binary_cross_entropy"
    x = _input(input, op)
    if x.numpy().size and (x.numpy().min() < 0 or x.numpy().max() > 1):
        raise ValueError(f"{op}: all elements of input should be between 0 and 1 "
                         f"(probabilities; found values in [{float(x.numpy().min()):.4g}, "
                         f"{float(x.numpy().max()):.4g}]); use binary_cross_entropy_with_logits "
                         f"for raw scores")
    return _pointwise(L.BceLoss, x, target, op, reduction, same_shape=True,
                      weight=_const(weight, x.dtype, op, "weight"))


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, *,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable op; `pos_weight` weighs positives."""
    op = "binary_cross_entropy_with_logits"
    x = _input(input, op)
    return _pointwise(L.BceWithLogitsLoss, x, target, op, reduction, same_shape=True,
                      weight=_const(weight, x.dtype, op, "weight"),
                      pos_weight=_const(pos_weight, x.dtype, op, "pos_weight"))


def kl_div(input: Tensor, target, *, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || input) with `input` given as log-probabilities ('batchmean' divides the
    sum by the batch size, matching the mathematical definition)."""
    op = "kl_div"
    if reduction == "mean":
        warnings.warn("kl_div: reduction 'mean' divides the total loss by both the batch size "
                      "and the support size; 'batchmean' divides only by the batch size and "
                      "matches the KL divergence's definition", stacklevel=2)
    return _pointwise(L.KlDivLoss, input, target, op, reduction,
                      allowed=_REDUCTIONS + ("batchmean",), log_target=bool(log_target))


def hinge_loss(input: Tensor, target, margin: float = 1.0, *, reduction: str = "mean") -> Tensor:
    """max(0, margin - y * s) for scores s and labels y in {-1, +1}.

    margin=0 is the perceptron criterion max(0, -y f(x)) of a single-layer perceptron.
    """
    op = "hinge_loss"
    x = _input(input, op)
    y = _array(target)
    if y.size and not np.all(np.abs(y) == 1):
        vals = np.unique(y)[:5].tolist()
        raise ValueError(f"{op}: target labels must be -1 or +1, got values {vals} (map 0/1 "
                         f"labels with 2 * y - 1)")
    return _pointwise(L.HingeLoss, x, target, op, reduction, same_shape=True,
                      margin=float(margin))


# ----------------------------------------------------------------------------- modules


def _buffer(value) -> Tensor | None:
    """A weight argument as a buffer: Tensors are kept as given (as torch does)."""
    if value is None or isinstance(value, Tensor):
        return value
    return tensor(value)


class _Loss(Module):
    """A loss module: stores its reduction and options and calls the functional form."""

    _allowed = _REDUCTIONS

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction, type(self).__name__, self._allowed)


class _WeightedLoss(_Loss):
    """A loss with an optional per-class `weight`, kept as a buffer as in torch."""

    def __init__(self, weight=None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))


class CrossEntropyLoss(_WeightedLoss):
    """cross_entropy as a module: logits (N, C, ...) and class indices or probabilities."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target) -> Tensor:
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, *, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target) -> Tensor:
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class MSELoss(_Loss):
    def forward(self, input: Tensor, target) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input: Tensor, target) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Tensor, target) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class BCELoss(_WeightedLoss):
    def forward(self, input: Tensor, target) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    def __init__(self, weight=None, *, reduction: str = "mean", pos_weight=None) -> None:
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input: Tensor, target) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight,
                                                reduction=self.reduction,
                                                pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    _allowed = _REDUCTIONS + ("batchmean",)

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class HingeLoss(_Loss):
    """hinge_loss as a module; HingeLoss(margin=0.0) is the perceptron criterion."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input: Tensor, target) -> Tensor:
        return hinge_loss(input, target, self.margin, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"
