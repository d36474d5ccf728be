"""`model.summary()`: the table of layers, output shapes and parameter counts."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["print_summary", "format_shape"]


def format_shape(shape: Any) -> str:
    """(None, 26, 26, 32) as Keras prints it; '?' when unknown, lists for several outputs."""
    if isinstance(shape, list):
        return "[" + ", ".join(format_shape(s) for s in shape) + "]"
    if shape is None:
        return "?"
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _readable_size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def print_summary(model: Any, line_length: int | None, print_fn: Callable,
                  show_trainable: bool) -> None:
    """Print one row per layer of a built model, then the parameter totals."""
    rows = []
    for layer in model.layers:
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        rows.append((f"{layer.name} ({type(layer).__name__})",
                     format_shape(model._layer_output_shape(layer)), params, layer))
    w1 = max([29] + [len(r[0]) + 2 for r in rows])
    w2 = max([26] + [len(r[1]) + 2 for r in rows])
    w3 = max([10] + [len(r[2]) + 2 for r in rows])
    width = line_length or (w1 + w2 + w3 + (12 if show_trainable else 0))
    lines = [f'Model: "{model.name}"', "_" * width,
             " " + "Layer (type)".ljust(w1 - 1) + "Output Shape".ljust(w2) +
             "Param #".ljust(w3) + ("Trainable" if show_trainable else ""), "=" * width]
    for name, shape, params, layer in rows:
        lines.append(" " + name.ljust(w1 - 1) + shape.ljust(w2) + params.ljust(w3) +
                     (("Y" if layer.trainable else "N") if show_trainable else ""))
    total = sum(int(np.prod(w.shape)) for w in model.weights)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    lines.append("=" * width)
    for label, n in (("Total", total), ("Trainable", trainable),
                     ("Non-trainable", total - trainable)):
        lines.append(f"{label} params: {n:,} ({_readable_size(n * 4)})")
    lines.append("_" * width)
    for line in lines:
        print_fn(line)
