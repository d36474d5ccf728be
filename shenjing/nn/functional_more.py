"""More of torch.nn.functional: softplus, mish, hardtanh, pixel_shuffle, bilinear,
cosine_similarity, group_norm, instance_norm, interpolate and embedding_bag.

These are compositions of existing differentiable ops (their gradients come for free and
are checked against torch in tests/test_nn_more_layers.py); the normalizations reuse the
fused LayerNorm kernel on a reshaped view, which is what makes them cheap.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..autograd import no_grad
from ..ops.bag import SegmentSum
from ..tensor import Tensor, from_numpy, where
from . import functional_base as F

__all__ = ["softplus", "mish", "hardtanh", "relu6", "pixel_shuffle", "pixel_unshuffle",
           "bilinear", "cosine_similarity", "group_norm", "instance_norm", "interpolate",
           "upsample", "upsample_nearest", "upsample_bilinear", "pad_by_index",
           "embedding_bag"]


def _float_input(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor as input, got {type(x).__name__} "
                        f"(wrap arrays with shenjing.tensor(...))")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    return x


def _const(values, like: Tensor) -> Tensor:
    """A constant tensor (no grad) of `like`'s dtype."""
    return from_numpy(np.ascontiguousarray(values, dtype=like.dtype))


# ----------------------------------------------------------------------------- activations


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as torch)."""
    x = _float_input(input, "softplus")
    bx = x * float(beta)
    soft = (bx.clamp(max=float(threshold)).exp()).log1p() / float(beta)
    return where(bx.numpy() > threshold, x, soft)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    x = _float_input(input, "mish")
    return x * softplus(x).tanh()


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped into [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return _float_input(input, "hardtanh").clamp(float(min_val), float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0)


# ----------------------------------------------------------------------------- shapes


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): sub-pixel convolution's rearrangement."""
    r = int(upscale_factor)
    if not isinstance(input, Tensor) or input.ndim < 3 or r < 1 or input.shape[-3] % (r * r):
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"pixel_shuffle(upscale_factor={upscale_factor}): expected an input "
                         f"(*, C * {r * r}, H, W) with at least 3 dimensions, got {got}")
    *lead, c, h, w = input.shape
    oc = c // (r * r)
    x = input.reshape(-1, oc, r, r, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(*lead, oc, h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of pixel_shuffle."""
    r = int(downscale_factor)
    if (not isinstance(input, Tensor) or input.ndim < 3 or r < 1 or input.shape[-1] % r
            or input.shape[-2] % r):
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"pixel_unshuffle(downscale_factor={downscale_factor}): expected an "
                         f"input (*, C, H, W) with H and W divisible by {r}, got {got}")
    *lead, c, h, w = input.shape
    x = input.reshape(-1, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(*lead, c * r * r, h // r, w // r)


_NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_by_index(input: Tensor, pad: Sequence[int], mode: str) -> Tensor:
    """Reflect / replicate / circular padding as one gather per padded dim (its backward
    scatters the gradient back), with torch's limits on the pad widths."""
    x = _float_input(input, f"pad(mode={mode!r})")
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected an even number of pad widths for at most {x.ndim} "
                         f"dims, got {pad}")
    for k in range(len(pad) // 2):
        lo, hi = pad[2 * k], pad[2 * k + 1]
        axis = x.ndim - 1 - k
        n = x.shape[axis]
        if min(lo, hi) < 0:
            raise ValueError(f"pad(mode={mode!r}): negative pad widths are not supported, "
                             f"got {pad}")
        if (mode == "reflect" and max(lo, hi) >= n) or (mode == "circular" and max(lo, hi) > n):
            raise ValueError(f"pad(mode={mode!r}): padding ({lo}, {hi}) of dim {axis} must "
                             f"be {'smaller than' if mode == 'reflect' else 'at most'} its "
                             f"size {n}")
        if lo or hi:
            x = x.index_select(axis, np.pad(np.arange(n), (lo, hi), mode=_NP_MODES[mode]))
    return x


# ----------------------------------------------------------------------------- bilinear


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """y_o = x1^T W_o x2 + b_o over any leading dims; weight (out, in1, in2)."""
    x1, x2 = _float_input(input1, "bilinear"), _float_input(input2, "bilinear")
    o, i, j = weight.shape
    if x1.shape[-1] != i or x2.shape[-1] != j or x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(f"bilinear: expected inputs (*, {i}) and (*, {j}) with the same "
                         f"leading dimensions for weight {tuple(weight.shape)}, got "
                         f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    lead = x1.shape[:-1]
    a = x1.reshape(-1, i) @ weight.permute(1, 0, 2).reshape(i, o * j)  # (B, o*j)
    y = (a.reshape(-1, o, j) * x2.reshape(-1, 1, j)).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, o)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1/|x1| * x2/|x2|) along dim; each norm is clamped at eps without changing its
    gradient, as torch does."""
    x1, x2 = _float_input(x1, "cosine_similarity"), _float_input(x2, "cosine_similarity")

    def unit(x: Tensor) -> Tensor:
        n = x.norm(2, dim=dim, keepdim=True)
        with no_grad():
            shift = n.clamp(min=float(eps)) - n
        return x / (n + shift)

    try:
        return (unit(x1) * unit(x2)).sum(dim)
    except ValueError as e:
        raise ValueError(f"cosine_similarity: inputs of shapes {tuple(x1.shape)} and "
                         f"{tuple(x2.shape)} do not broadcast along dim={dim}: {e}") from None


# ----------------------------------------------------------------------------- norms


def _channel_affine(y: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    shape = (1, -1) + (1,) * (y.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each sample over groups of channels (and all spatial positions)."""
    x = _float_input(input, "group_norm")
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: expected an input (N, C, *) with C divisible by "
                         f"num_groups={num_groups}, got shape {tuple(x.shape)}")
    n = x.shape[0]
    flat = x.reshape(n, num_groups, -1)
    y = F.layer_norm(flat, (flat.shape[-1],), None, None, eps).reshape(x.shape)
    return _channel_affine(y, weight, bias)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample over its spatial positions.

    With `use_input_stats` the running buffers (if given) move towards the batch average of
    the per-instance mean and unbiased variance; otherwise they normalize the input.
    """
    x = _float_input(input, "instance_norm")
    if x.ndim < 3:
        raise ValueError(f"instance_norm: expected an input (N, C, *) with at least one "
                         f"spatial dimension, got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    shape = (1, c) + (1,) * (x.ndim - 2)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are needed when "
                             "use_input_stats=False")
        rm = running_mean.detach().reshape(shape)
        rv = running_var.detach().reshape(shape)
        y = (x - rm) * (rv + float(eps)).rsqrt()
        return _channel_affine(y, weight, bias)
    flat = x.reshape(n, c, -1)
    if running_mean is not None or running_var is not None:
        arr = flat.numpy().astype(np.float64)
        m = float(momentum)
        with no_grad():
            if running_mean is not None:
                batch_mean = arr.mean(-1).mean(0).astype(running_mean.dtype)
                running_mean.mul_(1.0 - m)
                running_mean.add_(from_numpy(batch_mean * m))
            if running_var is not None:
                count = arr.shape[-1]
                unbiased = arr.var(-1) * (count / max(count - 1, 1))
                batch_var = unbiased.mean(0).astype(running_var.dtype)
                running_var.mul_(1.0 - m)
                running_var.add_(from_numpy(batch_var * m))
    y = F.layer_norm(flat, (flat.shape[-1],), None, None, eps).reshape(x.shape)
    return _channel_affine(y, weight, bias)


# ----------------------------------------------------------------------------- interpolate

_MODES = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2,
          "trilinear": 3, "area": 2}


def _output_sizes(x: Tensor, nd: int, size, scale_factor) -> tuple[list, list]:
    spatial = list(x.shape[-nd:])
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: exactly one of size and scale_factor must be given")
    if size is not None:
        out = [int(size)] * nd if isinstance(size, (int, np.integer)) else [int(s) for s in size]
        if len(out) != nd:
            raise ValueError(f"interpolate: size {size} must have {nd} entries for an input "
                             f"with {nd} spatial dimensions (shape {tuple(x.shape)})")
        return out, [None] * nd
    scales = [float(scale_factor)] * nd if not isinstance(scale_factor, Sequence) \
        else [float(s) for s in scale_factor]
    if len(scales) != nd:
        raise ValueError(f"interpolate: scale_factor {scale_factor} must have {nd} entries "
                         f"for an input with {nd} spatial dimensions")
    return [int(math.floor(n * s)) for n, s in zip(spatial, scales)], scales


def _scale(n_in: int, n_out: int, align_corners: bool, factor: float | None) -> float:
    """torch's area_pixel_compute_scale."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / factor if factor is not None and factor > 0 else n_in / n_out


def _nearest_axis(x: Tensor, axis: int, n_out: int, factor, exact: bool) -> Tensor:
    n_in = x.shape[axis]
    if not exact and n_out % n_in == 0 and (factor is None or factor == n_out // n_in):
        r = n_out // n_in  # whole-number upscaling: a broadcast, whose backward is a sum
        shape = list(x.shape)
        expanded = x.unsqueeze(axis + 1)
        target = shape[:axis + 1] + [r] + shape[axis + 1:]
        return expanded.expand(*target).reshape(*(shape[:axis] + [n_out] + shape[axis + 1:]))
    scale = np.float32(_scale(n_in, n_out, False, factor))
    dst = np.arange(n_out, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    idx = np.minimum(np.floor(dst * scale).astype(np.int64), n_in - 1)
    return x.index_select(axis, idx)


def _linear_axis(x: Tensor, axis: int, n_out: int, align_corners: bool, factor) -> Tensor:
    n_in = x.shape[axis]
    scale = _scale(n_in, n_out, align_corners, factor)
    dst = np.arange(n_out, dtype=np.float64)
    src = dst * scale if align_corners else np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    src = src.astype(x.dtype)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0.astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = n_out
    w1 = w1.reshape(shape)
    lo, hi = x.index_select(axis, i0), x.index_select(axis, i1)
    return lo * _const(1.0 - w1, x) + hi * _const(w1, x)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, *spatial) by nearest or (bi/tri)linear sampling,
    with torch's source-index rules (align_corners both ways, scale_factor vs size)."""
    x = _float_input(input, "interpolate")
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {sorted(_MODES)}, got {mode!r} "
                         f"('bicubic' is not implemented)")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not implemented")
    nd = x.ndim - 2
    if nd < 1 or (_MODES[mode] is not None and _MODES[mode] != nd):
        need = "3-D, 4-D or 5-D" if _MODES[mode] is None else f"{_MODES[mode] + 2}-D"
        raise ValueError(f"interpolate(mode={mode!r}): expected a {need} input (N, C, "
                         f"*spatial), got shape {tuple(x.shape)}")
    if align_corners is not None and (_MODES[mode] is None or mode == "area"):
        raise ValueError("interpolate: align_corners may only be set for the linear modes")
    sizes, factors = _output_sizes(x, nd, size, scale_factor)
    if recompute_scale_factor:
        factors = [None] * nd
    if mode == "area":  # torch: adaptive average pooling to the output size
        return F.adaptive_avg_pool2d(x, tuple(sizes))
    for k, (n_out, f) in enumerate(zip(sizes, factors)):
        axis = 2 + k
        if n_out <= 0:
            raise ValueError(f"interpolate: output size {sizes} must be positive")
        if _MODES[mode] is None:
            x = _nearest_axis(x, axis, n_out, f, mode == "nearest-exact")
        else:
            x = _linear_axis(x, axis, n_out, bool(align_corners), f)
    return x


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, "bilinear", align_corners=True)


# ----------------------------------------------------------------------------- embedding_bag


def _bag_layout(idx: np.ndarray, offsets, include_last_offset: bool) -> tuple:
    """(flat indices, bag of each index, number of bags) for 2-D or 1-D + offsets input."""
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets must be None for 2-D input (each row is "
                             "one bag)")
        bags, length = idx.shape
        return idx.reshape(-1), np.repeat(np.arange(bags), length), bags
    if idx.ndim != 1:
        raise ValueError(f"embedding_bag: input must be 1-D (with offsets) or 2-D (bags of "
                         f"equal length), got shape {idx.shape}")
    if offsets is None:
        raise ValueError("embedding_bag: 1-D input needs offsets (the start of each bag)")
    off = offsets.numpy() if isinstance(offsets, Tensor) else np.asarray(offsets)
    if off.ndim != 1 or off.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: offsets must be a 1-D integer tensor, got dtype "
                        f"{off.dtype} and shape {off.shape}")
    off = off.astype(np.int64)
    if include_last_offset:
        if off.size == 0 or off[-1] != idx.size:
            raise ValueError(f"embedding_bag: with include_last_offset=True the last offset "
                             f"must equal the number of indices ({idx.size}), got offsets "
                             f"{off.tolist()[-3:]}")
        off = off[:-1]
    ends = np.append(off[1:], idx.size)
    if off.size and (off[0] != 0 or np.any(ends < off) or off[-1] > idx.size):
        raise ValueError(f"embedding_bag: offsets must start at 0 and be non-decreasing within "
                         f"[0, {idx.size}], got {off.tolist()[:8]}")
    return idx, np.repeat(np.arange(off.size), ends - off), off.size


def embedding_bag(input, weight: Tensor, offsets=None, max_norm: float | None = None,
                  norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                  mode: str = "mean", sparse: bool = False, per_sample_weights=None,
                  include_last_offset: bool = False, padding_idx: int | None = None) -> Tensor:
    """Sums, means or maxima of bags of embedding rows, shape (bags, embedding_dim).

    Bags are the rows of a 2-D input or the runs of a 1-D input that start at `offsets`;
    entries equal to padding_idx are left out, and an empty bag gives zeros (as torch).
    An embedding lookup, then a segment sum (ops/bag.py) or a masked max over padded bags.
    """
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if weight.ndim != 2:
        raise ValueError(f"embedding_bag: weight must be 2-D (num_embeddings, embedding_dim), "
                         f"got shape {tuple(weight.shape)}")
    num = weight.shape[0]
    idx = F.check_indices(input, num, "embedding_bag")
    flat, bag_of, bags = _bag_layout(idx, offsets, include_last_offset)
    sample_w = None
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError(f"embedding_bag: per_sample_weights is only supported for "
                             f"mode='sum', got mode={mode!r}")
        if not isinstance(per_sample_weights, Tensor):
            per_sample_weights = from_numpy(np.asarray(per_sample_weights, weight.dtype))
        if tuple(per_sample_weights.shape) != idx.shape:
            raise ValueError(f"embedding_bag: per_sample_weights must have the input's shape "
                             f"{idx.shape}, got {tuple(per_sample_weights.shape)}")
        sample_w = per_sample_weights.reshape(-1)
    pad = F.padding_index(padding_idx, num, "embedding_bag")
    keep = np.arange(flat.size) if pad is None else np.flatnonzero(flat != pad)
    flat, bag_of = flat[keep], bag_of[keep]
    counts = np.bincount(bag_of, minlength=bags)
    if mode == "max":
        return _bag_max(flat, bag_of, counts, weight, max_norm, norm_type)
    rows = F.embedding(flat, weight, max_norm=max_norm, norm_type=norm_type)
    if sample_w is not None:
        rows = rows * sample_w[from_numpy(keep)].reshape(-1, 1)
    out = SegmentSum.apply(rows, counts)  # bag_of is sorted: bags are consecutive runs
    if mode == "mean":
        out = out / _const(np.maximum(counts, 1).reshape(-1, 1), weight)
    return out


def _bag_max(flat: np.ndarray, bag_of: np.ndarray, counts: np.ndarray, weight: Tensor,
             max_norm, norm_type) -> Tensor:
    """Per-bag maximum: gather bags into a (bags, longest, dim) grid, mask the gaps."""
    bags, longest = counts.size, max(int(counts.max(initial=0)), 1)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    grid = np.zeros((bags, longest), np.int64)
    filled = np.zeros((bags, longest), bool)
    pos = np.arange(flat.size) - starts[bag_of]
    grid[bag_of, pos], filled[bag_of, pos] = flat, True
    rows = F.embedding(grid, weight, max_norm=max_norm, norm_type=norm_type)
    masked = where(from_numpy(filled[..., None]), rows, _const(-np.inf, weight))
    best = masked.max(dim=1)[0]
    return where(from_numpy((counts > 0)[:, None]), best, _const(0.0, weight))
