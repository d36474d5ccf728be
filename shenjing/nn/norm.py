"""Normalization layers: BatchNorm1d/2d (running statistics as buffers) and LayerNorm.

Each forward is one fused op (`shenjing.ops.nn_ops.BatchNorm` / `LayerNorm`) with an
analytic backward. Buffers, their names and their update rule follow torch: the running
variance is updated with the unbiased batch variance while the batch is normalized with
the biased one; `momentum=None` keeps a cumulative average over `num_batches_tracked`.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, as_tensor
from . import functional as F
from . import functional_more as FM
from .layers import _dtype, _positive_int
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
           "InstanceNorm2d"]


class _BatchNorm(Module):
    """Shared body of BatchNorm1d/2d; subclasses say which input ranks they accept."""

    _ranks: tuple = ()
    _layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None, *,
                 bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", name)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dt))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", as_tensor(np.zeros(num_features, dt)))
            self.register_buffer("running_var", as_tensor(np.ones(num_features, dt)))
            self.register_buffer("num_batches_tracked", as_tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.numpy()[...] = 0
            self.running_var.numpy()[...] = 1
            self.num_batches_tracked.numpy()[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            self.weight.numpy()[...] = 1
        if self.bias is not None:
            self.bias.numpy()[...] = 0

    def _check_input(self, x) -> None:
        c = self.num_features
        if not isinstance(x, Tensor) or x.ndim not in self._ranks or x.shape[1] != c:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__}({c}): expected input of shape "
                             f"{self._layout.format(c=c)}, got {got}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.numpy())
        use_batch_stats = self.training or self.running_mean is None
        keep_running = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if keep_running else None,
                            self.running_var if keep_running else None, self.weight,
                            self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) inputs over N (and L)."""

    _ranks = (2, 3)
    _layout = "(N, {c}) or (N, {c}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) inputs over N, H and W."""

    _ranks = (4,)
    _layout = "(N, {c}, H, W)"


class LayerNorm(Module):
    """Normalize each sample over its trailing `normalized_shape` dims, then scale and shift
    elementwise (weight ones, bias zeros)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else \
            tuple(normalized_shape)
        self.normalized_shape = tuple(_positive_int(n, "normalized_shape", "LayerNorm")
                                      for n in shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dt = _dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dt))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        shape = self.normalized_shape
        k = len(shape)
        if not isinstance(x, Tensor) or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"LayerNorm({shape}): expected input whose last {k} dimension(s) "
                             f"are {shape}, got shape {got}")
        return F.layer_norm(x, shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalize each sample over groups of channels and their positions; per-channel
    affine (weight ones, bias zeros)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.num_groups = _positive_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _positive_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.eps, self.affine = eps, affine
        dt = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dt))
            self.bias = Parameter(np.zeros(num_channels, dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        c = self.num_channels
        if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[1] != c:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"GroupNorm({self.num_groups}, {c}): expected input of shape "
                             f"(N, {c}, *), got {got}")
        return FM.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_BatchNorm):
    """Per-sample, per-channel normalization over positions; torch's defaults (no affine, no
    running statistics) and buffer names. An unbatched input (C, *) is accepted."""

    _spatial = 1

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x: Tensor) -> Tensor:
        c, nd = self.num_features, self._spatial
        if not isinstance(x, Tensor) or x.ndim not in (nd + 1, nd + 2) or x.shape[-nd - 1] != c:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            dims = "L" if nd == 1 else "H, W"
            raise ValueError(f"{type(self).__name__}({c}): expected input of shape "
                             f"(N, {c}, {dims}) or ({c}, {dims}), got {got}")
        unbatched = x.ndim == nd + 1
        if unbatched:
            x = x.unsqueeze(0)
        use_input_stats = self.training or not self.track_running_stats
        y = FM.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             use_input_stats, 0.0 if self.momentum is None else self.momentum,
                             self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of (N, C, L) or (C, L)."""

    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of (N, C, H, W) or (C, H, W)."""

    _spatial = 2
