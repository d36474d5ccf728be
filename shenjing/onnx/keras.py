"""ONNX export of Keras-style models: `model.export(path, format="onnx")` calls this."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["export_keras"]


def _input_shapes(model: Any, input_signature: Any) -> list:
    if input_signature is not None:
        sig = input_signature if isinstance(input_signature, (list, tuple)) and \
            input_signature and isinstance(input_signature[0], (list, tuple)) \
            else [input_signature]
        return [tuple(s) for s in sig]
    try:
        shapes = model.input_shape
    except (AttributeError, ValueError, TypeError):
        shapes = None
    if shapes is None:
        raise ValueError(f"export: {type(model).__name__} has no known input shape; build it "
                         f"first (call it on data or give input_shape) or pass "
                         f"input_signature=(None, 28, 28, 1)")
    return list(shapes) if isinstance(shapes, list) else [tuple(shapes)]


def export_keras(model: Any, filepath: str, input_signature: Any = None,
                 dtype: Any = "float32") -> None:
    """Write a built Keras-style model as ONNX with a dynamic batch axis.

    `input_signature` is an input shape (or a list of them) with None for the batch axis;
    by default the model's own `input_shape` is used. Integer inputs (token ids for an
    Embedding) can be asked for with dtype="int64".
    """
    import shenjing as sj

    from .exporter import export

    shapes = _input_shapes(model, input_signature)
    examples, names, axes = [], [], {}
    for i, shape in enumerate(shapes):
        dims = [2 if d is None else int(d) for d in shape]
        names.append("input" if len(shapes) == 1 else f"input_{i}")
        axes[names[-1]] = {0: "batch"}
        examples.append(sj.from_numpy(np.zeros(dims, dtype=np.dtype(dtype))))
    args = examples[0] if len(examples) == 1 else (examples,)
    export(model, args, filepath, input_names=names, dynamic_axes=axes)
