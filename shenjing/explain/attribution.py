"""Attribution methods (seed 003 §9 Q3): which parts of an input made the model say what it said.

Definitions follow Captum's (Kokhlikyan et al. 2020), so numbers can be compared with it:
  * `saliency`: |d f_target / d x| (Simonyan et al. 2013), or the signed gradient (abs=False);
  * `integrated_gradients`: (x - x') * integral over a in [0, 1] of d f_target / d x at
    x' + a (x - x') (Sundararajan et al. 2017), by Gauss-Legendre quadrature by default, so
    that attributions sum to f(x) - f(x') (completeness);
  * `occlusion`: for each window slid over the input, f(x) - f(x with the window set to the
    baseline), averaged over the windows that cover each element (Zeiler & Fergus 2014);
  * `grad_cam`: ReLU(sum_k mean_spatial(d f / d A_k) A_k) for a conv layer's activations A
    (Selvaraju et al. 2017), upsampled to the input size if asked.
The model is used as it is (call `model.eval()` first); parameter gradients are not touched.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

import shenjing as sj

__all__ = ["saliency", "integrated_gradients", "occlusion", "grad_cam", "ig_alphas",
           "capture_output", "IG_METHODS"]

IG_METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right",
              "riemann_middle")


def _as_array(inputs: Any, what: str) -> np.ndarray:
    if isinstance(inputs, sj.Tensor):
        return inputs.numpy()
    if isinstance(inputs, np.ndarray):
        return inputs
    raise TypeError(f"{what}: expected a Tensor or an ndarray of inputs, got "
                    f"{type(inputs).__name__}")


def class_scores(out: Any) -> sj.Tensor:
    logits = out[0] if isinstance(out, tuple) else out
    if not isinstance(logits, sj.Tensor) or logits.ndim != 2:
        shape = getattr(logits, "shape", None)
        raise ValueError(f"explain: expected the model to return (N, classes) scores, got "
                         f"{type(logits).__name__} of shape {shape}")
    return logits


@contextlib.contextmanager
def frozen_parameters(model: Any) -> Iterator[None]:
    """Parameters stop requiring grad for the duration: no parameter .grad is written."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with sj.enable_grad():
            yield
    finally:
        for p in params:
            p.requires_grad_(True)


def resolve_targets(target: Any, n: int, logits: np.ndarray | None, what: str) -> np.ndarray:
    """One class index per example: given (int or sequence) or the predicted class."""
    if target is None:
        if logits is None:
            raise ValueError(f"{what}: target is required here")
        return logits.argmax(axis=1)
    idx = np.broadcast_to(np.asarray(target), (n,)) if np.ndim(target) == 0 else \
        np.asarray(target)
    if idx.dtype.kind not in "iu" or idx.shape != (n,):
        raise ValueError(f"{what}: target must be an int or {n} ints, got {target!r}")
    return idx.astype(np.int64)


def _check_target_range(idx: np.ndarray, n_classes: int, what: str) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise ValueError(f"{what}: target {idx.tolist()} out of range for {n_classes} classes")


def forward_scores(model: Any, x: np.ndarray) -> np.ndarray:
    with sj.no_grad():
        return class_scores(model(sj.from_numpy(x))).numpy()


def _grad_of_target(model: Any, x: np.ndarray, idx: np.ndarray, what: str) -> tuple:
    """(d f_idx / d x, f_idx(x)) for a batch, one target per row."""
    leaf = sj.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    with frozen_parameters(model):
        logits = class_scores(model(leaf))
        _check_target_range(idx, logits.shape[1], what)
        onehot = np.zeros(logits.shape, dtype=logits.numpy().dtype)
        onehot[np.arange(len(idx)), idx] = 1
        logits.backward(sj.from_numpy(onehot))
    return leaf.grad.numpy(), logits.numpy()[np.arange(len(idx)), idx]


def saliency(model: Any, inputs: Any, target: Any = None, abs: bool = True) -> sj.Tensor:
    """Gradient of the target class score with respect to each input element (Captum's
    Saliency: absolute value by default)."""
    x = _as_array(inputs, "saliency")
    idx = resolve_targets(target, len(x), None if target is not None else forward_scores(model, x),
                   "saliency")
    grad, _ = _grad_of_target(model, x, idx, "saliency")
    return sj.from_numpy(np.abs(grad) if abs else grad)


def ig_alphas(n_steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Points in [0, 1] and quadrature weights of Captum's approximation methods."""
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"integrated_gradients: n_steps must be a positive int, got {n_steps!r}")
    i = np.arange(n_steps, dtype=np.float64)
    if method == "gausslegendre":
        roots, weights = np.polynomial.legendre.leggauss(n_steps)
        return 0.5 * (roots + 1), 0.5 * weights
    if method == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError("integrated_gradients: riemann_trapezoid needs n_steps >= 2")
        w = np.full(n_steps, 1.0 / (n_steps - 1))
        w[[0, -1]] *= 0.5
        return i / (n_steps - 1), w
    offsets = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}
    if method not in offsets:
        raise ValueError(f"integrated_gradients: method must be one of {IG_METHODS}, "
                         f"got {method!r}")
    return (i + offsets[method]) / n_steps, np.full(n_steps, 1.0 / n_steps)


def integrated_gradients(model: Any, inputs: Any, target: Any = None, baselines: Any = None,
                         n_steps: int = 50, method: str = "gausslegendre",
                         internal_batch_size: int | None = None,
                         return_convergence_delta: bool = False):
    """Integrated gradients of the target score from `baselines` (zeros by default) to
    `inputs`; with return_convergence_delta, also sum(attributions) - (f(x) - f(x')) per
    example, which is 0 for an exact integral."""
    x = _as_array(inputs, "integrated_gradients")
    base = np.zeros_like(x) if baselines is None else np.broadcast_to(
        _as_array(baselines, "integrated_gradients") if not np.isscalar(baselines)
        else np.asarray(baselines, dtype=x.dtype), x.shape).astype(x.dtype)
    alphas, weights = ig_alphas(n_steps, method)
    idx = resolve_targets(target, len(x), None if target is not None else forward_scores(model, x),
                   "integrated_gradients")
    diff = x - base
    # all scaled inputs, alpha-major as Captum: rows [a0: x0..xN, a1: x0..xN, ...]
    scaled = base[None] + alphas.astype(x.dtype).reshape(-1, *[1] * x.ndim) * diff[None]
    scaled = scaled.reshape(-1, *x.shape[1:])
    targets = np.tile(idx, n_steps)
    chunk = internal_batch_size or len(scaled)
    grads = np.concatenate([
        _grad_of_target(model, scaled[s:s + chunk], targets[s:s + chunk],
                        "integrated_gradients")[0]
        for s in range(0, len(scaled), chunk)]).reshape(n_steps, *x.shape)
    total = np.tensordot(weights, grads.astype(np.float64), axes=(0, 0))
    attributions = (diff * total).astype(x.dtype)
    if not return_convergence_delta:
        return sj.from_numpy(attributions)
    rows = np.arange(len(x))
    gap = (forward_scores(model, x)[rows, idx].astype(np.float64)
           - forward_scores(model, base)[rows, idx])
    delta = attributions.reshape(len(x), -1).sum(axis=1, dtype=np.float64) - gap
    return sj.from_numpy(attributions), sj.from_numpy(delta)


def _window_starts(size: int, window: int, stride: int) -> range:
    return range(0, size - window + 1, stride)


def occlusion(model: Any, inputs: Any, sliding_window_shapes: tuple, strides: Any = None,
              target: Any = None, baselines: float = 0.0,
              perturbations_per_eval: int = 16) -> sj.Tensor:
    """Score drop when a window (shape over the non-batch dims) is replaced by `baselines`,
    slid by `strides` (default: the window, no overlap), averaged per element."""
    x = _as_array(inputs, "occlusion")
    window = tuple(int(w) for w in sliding_window_shapes)
    stride = window if strides is None else (
        (int(strides),) * len(window) if np.isscalar(strides) else tuple(int(s) for s in strides))
    dims = x.shape[1:]
    if len(window) != len(dims) or len(stride) != len(dims) or \
            any(not 0 < w <= d for w, d in zip(window, dims)) or min(stride) < 1:
        raise ValueError(f"occlusion: sliding_window_shapes {window} and strides {stride} must "
                         f"fit the input's example shape {dims}, with positive sizes")
    scores = forward_scores(model, x)
    idx = resolve_targets(target, len(x), scores, "occlusion")
    _check_target_range(idx, scores.shape[1], "occlusion")
    rows = np.arange(len(x))
    base_score = scores[rows, idx]
    total = np.zeros(x.shape, dtype=np.float64)
    count = np.zeros(dims, dtype=np.float64)
    grids = np.meshgrid(*[list(_window_starts(d, w, s)) for d, w, s in zip(dims, window, stride)],
                        indexing="ij")
    corners = np.stack([g.reshape(-1) for g in grids], axis=1)
    for start in range(0, len(corners), perturbations_per_eval):
        group = corners[start:start + perturbations_per_eval]
        batch = np.repeat(x[None], len(group), axis=0)  # (G, N, *dims)
        regions = [tuple(slice(c, c + w) for c, w in zip(corner, window)) for corner in group]
        for g, region in enumerate(regions):
            batch[(g, slice(None)) + region] = baselines
        drop = base_score[None] - forward_scores(model, batch.reshape(-1, *dims)).reshape(
            len(group), len(x), -1)[:, rows, idx]
        for g, region in enumerate(regions):
            total[(slice(None),) + region] += drop[g].reshape(-1, *[1] * len(dims))
            count[region] += 1
    attributions = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return sj.from_numpy(attributions.astype(x.dtype))


@contextlib.contextmanager
def capture_output(layer: Any, replace: Any = None) -> Iterator[dict]:
    """While active, record `layer`'s output in ``box["output"]`` as a fresh leaf that
    requires grad (so its gradient can be read after backward); `replace(output)`, if given,
    supplies the tensor to use instead (a forward hook, removed on leaving)."""
    box: dict = {}

    def swap(output):
        value = replace(output) if replace is not None else output.numpy()
        leaf = sj.from_numpy(np.ascontiguousarray(value)).requires_grad_(True)
        box["output"] = leaf
        return leaf

    handle = layer.register_forward_hook(lambda module, args, output: swap(output))
    try:
        yield box
    finally:
        handle.remove()


def _resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) -> (N, H, W), align_corners=False as torch's interpolate."""
    n, h, w = maps.shape
    H, W = size

    def coords(out_n: int, in_n: int):
        src = np.clip((np.arange(out_n) + 0.5) * in_n / out_n - 0.5, 0, in_n - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, in_n - 1)
        return lo, hi, src - lo

    y0, y1, fy = coords(H, h)
    x0, x1, fx = coords(W, w)
    top = maps[:, y0][:, :, x0] * (1 - fx) + maps[:, y0][:, :, x1] * fx
    bottom = maps[:, y1][:, :, x0] * (1 - fx) + maps[:, y1][:, :, x1] * fx
    return top * (1 - fy)[None, :, None] + bottom * fy[None, :, None]


def grad_cam(model: Any, inputs: Any, layer: Any, target: Any = None, relu: bool = True,
             upsample: bool = True) -> sj.Tensor:
    """Grad-CAM of a conv `layer` (a Module inside `model`): (N, H, W) at the input's size
    when `upsample`, else (N, h, w) at the layer's."""
    x = _as_array(inputs, "grad_cam")
    if not any(m is layer for m in model.modules()):
        raise ValueError(f"grad_cam: layer {type(layer).__name__} is not part of the model")
    idx = resolve_targets(target, len(x), None if target is not None else forward_scores(model, x),
                   "grad_cam")
    leaf = sj.from_numpy(np.ascontiguousarray(x))
    with frozen_parameters(model), capture_output(layer) as box:
        logits = class_scores(model(leaf))
        _check_target_range(idx, logits.shape[1], "grad_cam")
        acts = box.get("output")
        if acts is None or acts.ndim < 3:
            raise ValueError("grad_cam: the layer must produce (N, C, ...) activations, got "
                             f"{None if acts is None else tuple(acts.shape)}")
        onehot = np.zeros(logits.shape, dtype=logits.numpy().dtype)
        onehot[np.arange(len(idx)), idx] = 1
        logits.backward(sj.from_numpy(onehot))
    a, g = acts.numpy().astype(np.float64), acts.grad.numpy().astype(np.float64)
    spatial = tuple(range(2, a.ndim))
    cam = (g.mean(axis=spatial, keepdims=True) * a).sum(axis=1)
    if relu:
        cam = np.maximum(cam, 0)
    if upsample and cam.ndim == 3 and x.ndim == 4:
        cam = _resize_bilinear(cam, x.shape[2:])
    return sj.from_numpy(cam.astype(x.dtype))
