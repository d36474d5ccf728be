"""Gradient clipping and parameter/vector conversion (torch.nn.utils).

Clipping fights exploding gradients (SEEDS: 002 §2.2.10): `clip_grad_norm_` rescales all
gradients together so their joint norm is at most `max_norm`, `clip_grad_value_` clamps
each element.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ...tensor import Tensor, as_tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]


def _as_list(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale the gradients in place so that their total `norm_type` norm (the norm of the
    per-parameter norms) is at most `max_norm`; return the total norm before clipping."""
    grads = [p.grad.numpy() for p in _as_list(parameters) if p.grad is not None]
    norm_type = float(norm_type)
    if not grads:
        return as_tensor(np.asarray(0.0, dtype=np.float32))
    dtype = grads[0].dtype
    if math.isinf(norm_type):
        norms = [np.max(np.abs(g)) if g.size else 0.0 for g in grads]
        total = float(max(norms))
    else:
        norms = [_vector_norm(g, norm_type) for g in grads]
        total = float(np.sum(np.asarray(norms, dtype=np.float64) ** norm_type) **
                      (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is non-finite ({total}), so it cannot be clipped; set "
                           f"error_if_nonfinite=False to skip this check")
    coef = min(float(max_norm) / (total + 1e-6), 1.0)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return as_tensor(np.asarray(total, dtype=dtype))


def _vector_norm(g: np.ndarray, p: float) -> float:
    if p == 2.0:
        flat = g.reshape(-1)
        return math.sqrt(float(np.dot(flat, flat)))
    if p == 1.0:
        return float(np.sum(np.abs(g), dtype=np.float64))
    return float(np.sum(np.abs(g, dtype=np.float64) ** p) ** (1.0 / p))


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    v = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            np.clip(p.grad.numpy(), -v, v, out=p.grad.numpy())


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (a copy)."""
    params = _as_list(parameters)
    if not params:
        return as_tensor(np.zeros(0, dtype=np.float32))
    return as_tensor(np.concatenate([p.numpy().reshape(-1) for p in params]))


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, got {type(vec).__name__}")
    params = _as_list(parameters)
    total = sum(p.numpy().size for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: expected a 1-D vector of {total} elements "
                         f"(the parameters' total size), got shape {tuple(vec.shape)}")
    start = 0
    for p in params:
        n = p.numpy().size
        p.numpy()[...] = vec.numpy()[start:start + n].reshape(p.shape)
        start += n


# torch's sub-namespaces: nn.utils.prune, nn.utils.rnn (pad_sequence, PackedSequence, ...)
from . import fusion, prune, rnn  # noqa: E402,F401
