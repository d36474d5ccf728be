"""Explanations of a model's predictions (seed 003 §9 Q3), with Captum's definitions.

    from shenjing import explain
    explain.saliency(model, x, target=3)
    explain.integrated_gradients(model, x, target=3, n_steps=50)
    explain.occlusion(model, x, sliding_window_shapes=(1, 4, 4), strides=2)
    explain.grad_cam(model, x, layer=model[3])
    explain.token_attributions(text_model, token_ids)   # per token, for text models

`shenjing explain CHECKPOINT IMAGE --method integrated_gradients --out map.png` draws the map
over the image; `shenjing explain CHECKPOINT --text "..."` colours a text's tokens.
"""

from .attribution import (
                          IG_METHODS,
                          capture_output,
                          grad_cam,
                          ig_alphas,
                          integrated_gradients,
                          occlusion,
                          saliency,
)
from .text import find_embedding, token_attributions, tokens_to_ansi, tokens_to_html
from .visual import heatmap_colors, overlay

__all__ = ["saliency", "integrated_gradients", "occlusion", "grad_cam", "token_attributions",
           "tokens_to_ansi", "tokens_to_html", "overlay", "heatmap_colors", "ig_alphas",
           "capture_output", "find_embedding", "IG_METHODS"]
