"""`keras.ops.nn` functions (also reachable as `keras.ops.relu`, ...) over
`shenjing.nn.functional`. Layout is Keras's: channels-last unless `data_format` says
'channels_first'; convolutions and pools move the channel axis at the edges only."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

import shenjing as sj
import shenjing.nn.functional as F

from ...tensor import Tensor
from .core import as_tensor, norm_axis
from .core import axes as _axes
from .numpy import moveaxis

__all__ = [
    "relu", "relu6", "sigmoid", "softmax", "log_softmax", "gelu", "silu", "swish", "elu",
    "selu", "leaky_relu", "softplus", "softsign", "hard_sigmoid", "log_sigmoid", "conv",
    "max_pool", "average_pool", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "one_hot", "moments", "top_k", "in_top_k",
]

EPSILON = 1e-7  # Keras's fuzz factor for probabilities


def _float(x: Any) -> Tensor:
    t = as_tensor(x)
    return t if np.dtype(t.dtype).kind == "f" else t.to(np.dtype("float32"))


def relu(x: Any) -> Tensor:
    return F.relu(_float(x))


def relu6(x: Any) -> Tensor:
    return F.relu6(_float(x))


def sigmoid(x: Any) -> Tensor:
    return F.sigmoid(_float(x))


def softmax(x: Any, axis: int = -1) -> Tensor:
    t = _float(x)
    return F.softmax(t, dim=norm_axis(axis, t.ndim, "softmax"))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    t = _float(x)
    return F.log_softmax(t, dim=norm_axis(axis, t.ndim, "log_softmax"))


def gelu(x: Any, approximate: bool = True) -> Tensor:
    """Keras defaults to the tanh approximation."""
    return F.gelu(_float(x), approximate="tanh" if approximate else "none")


def silu(x: Any) -> Tensor:
    return F.silu(_float(x))


swish = silu


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    return F.elu(_float(x), alpha)


def selu(x: Any) -> Tensor:
    return F.selu(_float(x))


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Tensor:
    return F.leaky_relu(_float(x), negative_slope)


def softplus(x: Any) -> Tensor:
    return F.softplus(_float(x))


def softsign(x: Any) -> Tensor:
    return F.softsign(_float(x))


def hard_sigmoid(x: Any) -> Tensor:
    """Keras 3's hard sigmoid: relu6(x + 3) / 6 (as PyTorch's hardsigmoid)."""
    return F.hardsigmoid(_float(x))


def log_sigmoid(x: Any) -> Tensor:
    return -F.softplus(-_float(x))


def _tuple(v: Any, n: int, what: str) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(i) for i in v)
    if len(v) != n:
        raise ValueError(f"keras.ops.{what}: expected {n} values, got {v}")
    return v


def _channels_first(x: Any, data_format: str | None, what: str) -> tuple[Tensor, bool]:
    t = _float(x)
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"keras.ops.{what}: data_format must be 'channels_last' or "
                         f"'channels_first', got {data_format!r}")
    if t.ndim not in (3, 4):
        raise ValueError(f"keras.ops.{what}: expected a 3-d (batch, steps, channels) or 4-d "
                         f"(batch, height, width, channels) input, got shape {tuple(t.shape)}")
    last = data_format != "channels_first"
    return (moveaxis(t, -1, 1) if last else t), last


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding: the extra pixel goes after (right/bottom)."""
    span = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _pad_same(t: Tensor, kernel: Sequence[int], strides: Sequence[int],
              dilation: Sequence[int], value: float) -> Tensor:
    widths: list[int] = []
    for i in reversed(range(len(kernel))):
        widths += _same_padding(t.shape[2 + i], kernel[i], strides[i], dilation[i])
    return sj.pad(t, widths, value=value) if any(widths) else t


def _check_padding(padding: str, what: str) -> str:
    padding = padding.lower() if isinstance(padding, str) else padding
    if padding not in ("valid", "same"):
        raise ValueError(f"keras.ops.{what}: padding must be 'valid' or 'same', got "
                         f"{padding!r}")
    return padding


def conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
         data_format: str | None = None, dilation_rate: Any = 1) -> Tensor:
    """N-d convolution (1-d, 2-d) with a Keras kernel (*kernel_size, in/groups, out)."""
    padding = _check_padding(padding, "conv")
    t, last = _channels_first(inputs, data_format, "conv")
    w = _float(kernel)
    n = t.ndim - 2
    if w.ndim != n + 2:
        raise ValueError(f"keras.ops.conv: kernel must have {n + 2} dims (*kernel_size, "
                         f"in_channels, out_channels), got shape {tuple(w.shape)}")
    groups, rem = divmod(t.shape[1], w.shape[-2])
    if rem:
        raise ValueError(f"keras.ops.conv: input has {t.shape[1]} channels, which is not a "
                         f"multiple of the kernel's {w.shape[-2]} input channels")
    weight = w.permute(n + 1, n, *range(n))  # (out, in/groups, *kernel_size)
    s, d = _tuple(strides, n, "conv"), _tuple(dilation_rate, n, "conv")
    if padding == "same":
        t = _pad_same(t, tuple(weight.shape[2:]), s, d, 0.0)
    fn = F.conv1d if n == 1 else F.conv2d
    out = fn(t, weight, None, stride=s, padding=0, dilation=d, groups=groups)
    return moveaxis(out, 1, -1) if last else out


def _pool(inputs: Any, pool_size: Any, strides: Any, padding: str, data_format: str | None,
          what: str, mode: str) -> Tensor:
    padding = _check_padding(padding, what)
    t, last = _channels_first(inputs, data_format, what)
    n = t.ndim - 2
    k = _tuple(pool_size, n, what)
    s = k if strides is None else _tuple(strides, n, what)
    pool = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d,
            ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d}[(mode, n)]
    if padding == "valid":
        out = pool(t, k, s)
    elif mode == "max":
        out = pool(_pad_same(t, k, s, (1,) * n, -math.inf), k, s)
    else:  # average over the real pixels only: mean of padded x / mean of a padded mask
        ones = sj.from_numpy(np.ones((1, 1, *t.shape[2:]), np.dtype(t.dtype)))
        out = pool(_pad_same(t, k, s, (1,) * n, 0.0), k, s) / \
            pool(_pad_same(ones, k, s, (1,) * n, 0.0), k, s)
    return moveaxis(out, 1, -1) if last else out


def max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
             data_format: str | None = None) -> Tensor:
    return _pool(inputs, pool_size, strides, padding, data_format, "max_pool", "max")


def average_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None) -> Tensor:
    return _pool(inputs, pool_size, strides, padding, data_format, "average_pool", "avg")


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Tensor:
    """Elementwise binary cross-entropy (no reduction); probabilities are clipped to
    [1e-7, 1 - 1e-7] as Keras does."""
    y, p = _float(target), _float(output)
    if tuple(y.shape) != tuple(p.shape):
        raise ValueError(f"keras.ops.binary_crossentropy: target shape {tuple(y.shape)} and "
                         f"output shape {tuple(p.shape)} must match")
    if from_logits:
        return F.binary_cross_entropy_with_logits(p, y, reduction="none")
    return F.binary_cross_entropy(sj.clamp(p, EPSILON, 1.0 - EPSILON), y, reduction="none")


def categorical_crossentropy(target: Any, output: Any, from_logits: bool = False,
                             axis: int = -1) -> Tensor:
    """Cross-entropy over `axis` between one-hot (or soft) targets and probabilities or
    logits; probabilities are renormalised and clipped as Keras does."""
    y, p = _float(target), _float(output)
    if tuple(y.shape) != tuple(p.shape):
        raise ValueError(f"keras.ops.categorical_crossentropy: target shape "
                         f"{tuple(y.shape)} and output shape {tuple(p.shape)} must match")
    a = norm_axis(axis, p.ndim, "categorical_crossentropy")
    if from_logits:
        log_p = F.log_softmax(p, dim=a)
    else:
        p = p / sj.sum(p, dim=a, keepdim=True)
        log_p = sj.log(sj.clamp(p, EPSILON, 1.0 - EPSILON))
    return -sj.sum(y * log_p, dim=a)


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False,
                                    axis: int = -1) -> Tensor:
    """Cross-entropy with integer class targets (one per position) over `axis`."""
    p = _float(output)
    y = as_tensor(target)
    if y.ndim == p.ndim and y.shape[-1] == 1:
        y = y.reshape(*y.shape[:-1])
    a = norm_axis(axis, p.ndim, "sparse_categorical_crossentropy")
    if from_logits:
        log_p = F.log_softmax(p, dim=a)
    else:
        p = p / sj.sum(p, dim=a, keepdim=True)
        log_p = sj.log(sj.clamp(p, EPSILON, 1.0 - EPSILON))
    return F.nll_loss(moveaxis(log_p, a, 1) if p.ndim > 1 else log_p, y.long(),
                      reduction="none")


def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = "float32") -> Tensor:
    """One-hot vectors of integer `x` along a new `axis` (out-of-range classes give zeros)."""
    labels = as_tensor(x).numpy().astype(np.int64)
    out = (labels[..., None] == np.arange(int(num_classes))).astype(dtype)
    return as_tensor(np.moveaxis(out, -1, axis) if axis != -1 else out)


def moments(x: Any, axes: Any = None, keepdims: bool = False,
            synchronized: bool = False) -> tuple:
    """Mean and (population) variance of `x` over `axes`."""
    t = _float(x)
    dims = _axes(axes, t.ndim, "moments")
    mean = sj.mean(t, dim=dims, keepdim=True)
    variance = sj.mean(sj.square(t - mean), dim=dims, keepdim=keepdims)
    if not keepdims:
        mean = sj.mean(t, dim=dims, keepdim=False)
    return mean, variance


def top_k(x: Any, k: int, sorted: bool = True) -> tuple[Tensor, Tensor]:  # noqa: A002
    """The k largest values along the last axis and their indices (largest first; ties
    keep the earlier index); values carry the gradient."""
    t = as_tensor(x)
    if not 0 < int(k) <= t.shape[-1]:
        raise ValueError(f"keras.ops.top_k: k must be in [1, {t.shape[-1]}], got {k}")
    values, indices = sj.topk(t, int(k), t.ndim - 1)
    return values, indices.to(np.dtype("int32"))


def in_top_k(targets: Any, predictions: Any, k: int) -> Tensor:
    """Whether each target class is among the k largest predictions of its row."""
    p = as_tensor(predictions).numpy()
    y = as_tensor(targets).numpy().astype(np.int64)
    target_score = np.take_along_axis(p, y[:, None], axis=1)
    return as_tensor((p > target_score).sum(axis=1) < int(k))
