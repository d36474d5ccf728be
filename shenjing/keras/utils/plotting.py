"""`keras.utils.plot_model`: a model's layer graph drawn to an image by pydot + Graphviz."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["plot_model", "model_to_dot"]

_MISSING = ("plot_model needs the pydot package and the Graphviz `dot` program: "
            "`pip install pydot` and install Graphviz (e.g. `apt-get install graphviz`, "
            "`brew install graphviz`, or https://graphviz.org/download/)")


def _pydot() -> Any:
    try:
        import pydot
    except ImportError as e:
        raise ImportError(f"{_MISSING}; pydot is not installed") from e
    return pydot


def _shape_text(shape: Any) -> str:
    return str(shape).replace("None", "?") if shape is not None else "?"


def _label(layer: Any, out_shape: Any, show_shapes: bool, show_layer_names: bool,
           show_dtype: bool, show_trainable: bool) -> str:
    parts = [f"{layer.name} ({type(layer).__name__})" if show_layer_names
             else type(layer).__name__]
    if show_shapes:
        parts.append(f"output: {_shape_text(out_shape)}")
    if show_dtype:
        parts.append(f"dtype: {getattr(layer, 'dtype', 'float32')}")
    if show_trainable:
        parts.append(f"trainable: {'Y' if getattr(layer, 'trainable', True) else 'N'}")
    return "\n".join(parts)


def _edges(model: Any) -> tuple[list, list[tuple[int, int]]]:
    """The model's layers with their output shapes, and (from, to) index pairs."""
    nodes = getattr(model, "_nodes", None) or []
    if nodes:
        index = {id(n): i for i, n in enumerate(nodes)}
        layers = [(n.layer, n.output_tensors[0].shape if n.output_tensors else None)
                  for n in nodes]
        edges = [(index[id(p)], i) for i, n in enumerate(nodes) for p in n.parent_nodes
                 if id(p) in index]
        return layers, edges
    layers = [(layer, None) for layer in model.layers]
    return layers, [(i, i + 1) for i in range(len(layers) - 1)]


def model_to_dot(model: Any, show_shapes: bool = False, show_dtype: bool = False,
                 show_layer_names: bool = True, rankdir: str = "TB", dpi: int = 200,
                 show_trainable: bool = False, **kwargs: Any) -> Any:
    """A `pydot.Dot` graph with one box per layer call and an arrow per connection."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"plot_model: rankdir must be 'TB' or 'LR', got {rankdir!r}")
    if not hasattr(model, "layers"):
        raise TypeError(f"plot_model: expected a keras Model, got {type(model).__name__}")
    pydot = _pydot()
    dot = pydot.Dot(graph_type="digraph", rankdir=rankdir, dpi=str(dpi))
    dot.set_node_defaults(shape="record", fontname="Helvetica")
    layers, edges = _edges(model)
    for i, (layer, shape) in enumerate(layers):
        text = _label(layer, shape, show_shapes, show_layer_names, show_dtype, show_trainable)
        dot.add_node(pydot.Node(str(i), label='"' + text.replace('"', "'") + '"',
                                shape="box"))
    for a, b in edges:
        dot.add_edge(pydot.Edge(str(a), str(b)))
    return dot


def plot_model(model: Any, to_file: str | os.PathLike = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 200, show_layer_activations: bool = False,
               show_trainable: bool = False, **kwargs: Any) -> Any:
    """Draw `model` to `to_file` (the extension picks the format: .png, .svg, .pdf, .dot).

    Raises ImportError naming pydot and Graphviz when either is missing.
    """
    from ...io.atomic import atomic_write

    dot = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir, dpi,
                       show_trainable)
    path = os.fspath(to_file)
    ext = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        data = dot.create(format=ext)
    except FileNotFoundError as e:
        raise ImportError(f"{_MISSING}; the Graphviz `dot` program was not found") from e
    except Exception as e:  # pydot raises bare exceptions when Graphviz fails
        if "not found" in str(e) or "dot" in str(e).lower() and "PATH" in str(e):
            raise ImportError(f"{_MISSING}; Graphviz failed: {e}") from e
        raise
    with atomic_write(path) as f:
        f.write(data)
    return None
