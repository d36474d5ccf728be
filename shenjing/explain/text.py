"""Per-token attributions for text models, shown as coloured tokens (ANSI or HTML).

Token ids are not differentiable, so attributions are taken at the embedding layer's output
(Captum's LayerIntegratedGradients on the embedding): each token's score is the sum over the
embedding dimension of integrated gradients from a baseline embedding (zeros) to the token's
embedding. The scores of a text then add up to f(text) - f(baseline).
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np

import shenjing as sj

from .attribution import (
    capture_output,
    class_scores,
    forward_scores,
    frozen_parameters,
    ig_alphas,
    resolve_targets,
)

__all__ = ["token_attributions", "tokens_to_ansi", "tokens_to_html", "find_embedding"]


def find_embedding(model: Any) -> Any:
    """The model's first nn.Embedding layer."""
    from ..nn import Embedding

    for module in model.modules():
        if isinstance(module, Embedding):
            return module
    raise ValueError(f"token_attributions: {type(model).__name__} has no nn.Embedding layer; "
                     f"pass the layer to attribute at as embedding=")


def token_attributions(model: Any, token_ids: Any, target: Any = None, embedding: Any = None,
                       method: str = "integrated_gradients", n_steps: int = 50,
                       return_convergence_delta: bool = False):
    """(N, L) scores, one per token: integrated gradients summed over the embedding dimension
    ("integrated_gradients"), or the L2 norm of the score's gradient at each token's embedding
    ("saliency")."""
    ids = token_ids.numpy() if isinstance(token_ids, sj.Tensor) else np.asarray(token_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"token_attributions: expected (N, L) integer token ids, got "
                         f"{ids.dtype} of shape {ids.shape}")
    if method not in ("integrated_gradients", "saliency"):
        raise ValueError(f"token_attributions: method must be 'integrated_gradients' or "
                         f"'saliency', got {method!r}")
    layer = embedding if embedding is not None else find_embedding(model)
    with capture_output(layer) as box:
        scores = forward_scores(model, ids)
    emb = box["output"].numpy()
    idx = resolve_targets(target, len(ids), scores, "token_attributions")
    alphas, weights = (np.ones(1), np.ones(1)) if method == "saliency" else ig_alphas(n_steps)
    steps = len(alphas)
    scaled = alphas.astype(emb.dtype).reshape(-1, *[1] * emb.ndim) * emb[None]
    with frozen_parameters(model), capture_output(
            layer, replace=lambda _: scaled.reshape(-1, *emb.shape[1:])) as box:
        logits = class_scores(model(sj.from_numpy(np.tile(ids, (steps, 1)))))
        rows = np.tile(idx, steps)
        if rows.max() >= logits.shape[1] or rows.min() < 0:
            raise ValueError(f"token_attributions: target out of range for {logits.shape[1]} "
                             f"classes")
        onehot = np.zeros(logits.shape, dtype=logits.numpy().dtype)
        onehot[np.arange(len(rows)), rows] = 1
        logits.backward(sj.from_numpy(onehot))
    grads = box["output"].grad.numpy().reshape(steps, *emb.shape).astype(np.float64)
    if method == "saliency":
        return sj.from_numpy(np.linalg.norm(grads[0], axis=-1))
    per_token = (emb * np.tensordot(weights, grads, axes=(0, 0))).sum(axis=-1)
    if not return_convergence_delta:
        return sj.from_numpy(per_token)
    with capture_output(layer, replace=lambda out: np.zeros_like(out.numpy())):
        base = forward_scores(model, ids)
    r = np.arange(len(ids))
    delta = per_token.sum(axis=1) - (scores[r, idx] - base[r, idx])
    return sj.from_numpy(per_token), sj.from_numpy(delta)


def _normalized(scores: Sequence[float]) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    peak = np.abs(s).max() if s.size else 0.0
    return s / peak if peak > 0 else np.zeros_like(s)


def _rgb(weight: float) -> tuple[int, int, int]:
    """White to green for positive evidence, white to red for negative."""
    fade = int(round(255 * (1 - min(abs(weight), 1.0))))
    return (fade, 255, fade) if weight >= 0 else (255, fade, fade)


def tokens_to_ansi(tokens: Sequence[str], scores: Sequence[float]) -> str:
    """Tokens on a background coloured by their score (24-bit ANSI colour escapes)."""
    parts = []
    for token, w in zip(tokens, _normalized(scores)):
        r, g, b = _rgb(w)
        parts.append(f"\x1b[48;2;{r};{g};{b}m\x1b[38;2;0;0;0m{token}\x1b[0m")
    return " ".join(parts)


def tokens_to_html(tokens: Sequence[str], scores: Sequence[float]) -> str:
    """Tokens as <span>s coloured by their score, each with its score as a tooltip."""
    spans = []
    for token, raw, w in zip(tokens, scores, _normalized(scores)):
        r, g, b = _rgb(w)
        spans.append(f'<span style="background-color:rgb({r},{g},{b})" '
                     f'title="{float(raw):.4g}">{html.escape(str(token))}</span>')
    return '<p style="font-family:monospace;line-height:1.8">' + " ".join(spans) + "</p>"
