"""A model's architecture as JSON: layer and model configs, and back.

`layer_config` describes any layer or model as {'class_name', 'config'}; `model_from_config`
rebuilds one through the layer registry (Sequential and Functional register themselves
there, custom classes through custom_objects or register_keras_serializable), so this
module, like saving.py, never imports the model classes. A functional model's config lists
its layers and, per layer, the calls (nodes) that connect them.
"""

from __future__ import annotations

from typing import Any

from .layers import REGISTRY as LAYERS
from .layers import deserialize as deserialize_layer
from .layers.base import InputLayer, KerasTensor, Layer, map_structure

__all__ = ["layer_config", "model_config", "model_from_config", "functional_config",
           "functional_from_config"]


def layer_config(layer: Layer) -> dict:
    """{'class_name', 'config'} of a layer or model, with the build shape of a subclassed
    model (which cannot be rebuilt from its config alone)."""
    cfg = {"class_name": layer._config_class_name or type(layer).__name__,
           "config": layer.get_config()}
    build_shape = layer._config_build_shape()
    if build_shape is not None:
        cfg["build_input_shape"] = _jsonable(build_shape)
    return cfg


model_config = layer_config


def model_from_config(config: dict, custom_objects: dict | None = None) -> Any:
    """A model (or layer) from {'class_name': ..., 'config': ...}: the architecture, with
    fresh weights. The class is looked up among the registered layer and model classes
    (custom_objects and register_keras_serializable first)."""
    name = config.get("class_name")
    try:
        LAYERS.lookup(name, custom_objects)
    except ValueError:
        raise ValueError(f"Unknown model class {name!r}: pass it in custom_objects={{'{name}': "
                         f"{name}}} or register it with "
                         f"keras.saving.register_keras_serializable()") from None
    return deserialize_layer(config, custom_objects)


def _jsonable(shape: Any) -> Any:
    if isinstance(shape, (list, tuple)):
        return [_jsonable(s) for s in shape]
    return shape


def functional_config(model: Any) -> dict:
    """Layers, the nodes connecting them and the model's input/output tensors."""
    positions: dict[int, int] = {}
    counts: dict[int, int] = {}
    for node in model._nodes:
        positions[id(node)] = counts.get(id(node.layer), 0)
        counts[id(node.layer)] = positions[id(node)] + 1

    def ref(t: KerasTensor) -> list:
        layer, idx, ti = t._keras_history
        return [layer.name, positions[id(layer._inbound_nodes[idx])], ti]

    def encode(obj: Any) -> Any:
        return {"__keras_tensor__": ref(obj)} if isinstance(obj, KerasTensor) else obj

    layers = []
    for layer in model.layers:
        entry = layer_config(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [
            {"args": map_structure(encode, node.args[0] if node.args else None),
             "kwargs": map_structure(encode, node.kwargs)}
            for node in model._nodes if node.layer is layer and not isinstance(layer,
                                                                               InputLayer)]
        layers.append(entry)
    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": map_structure(ref, model._nested_inputs),
            "output_layers": map_structure(ref, model._nested_outputs)}


def functional_from_config(config: dict, custom_objects: dict | None = None) -> dict:
    """The constructor arguments of a functional model (inputs, outputs, name, trainable)
    from its config: each layer is rebuilt, then called on its saved arguments, nodes in
    dependency order, which records the same graph again."""
    layers: dict[str, Layer] = {}
    calls: dict[tuple, dict] = {}  # (layer name, node position) -> saved call arguments
    for entry in config["layers"]:
        layer = deserialize_layer({"class_name": entry["class_name"],
                                   "config": entry["config"]}, custom_objects)
        layers[entry["name"]] = layer
        for pos, node in enumerate(entry.get("inbound_nodes", [])):
            calls[(entry["name"], pos)] = node
    outputs: dict[tuple, list] = {(name, 0): [layer.output] for name, layer in layers.items()
                                  if isinstance(layer, InputLayer)}

    def tensor(ref: list) -> KerasTensor:
        return outputs[(ref[0], ref[1])][ref[2]]

    for key in _call_order(calls, outputs, config.get("name")):
        args = _decode_structure(calls[key]["args"], tensor)
        kwargs = {k: _decode_structure(v, tensor) for k, v in calls[key]["kwargs"].items()}
        out = layers[key[0]](args, **kwargs)
        outputs[key] = out if isinstance(out, list) else [out]
    return {"inputs": _map_refs(config["input_layers"], tensor),
            "outputs": _map_refs(config["output_layers"], tensor),
            "name": config.get("name"), "trainable": config.get("trainable", True)}


def _call_order(calls: dict[tuple, dict], known: dict, model_name: Any) -> list[tuple]:
    """The saved layer calls in dependency order: a depth-first pass from each call puts
    every call after the calls that produce its arguments (O(number of calls))."""
    order: list[tuple] = []
    state: dict[tuple, str] = {}  # "open" while its parents are visited, then "done"
    for root in calls:
        stack = [(root, False)]
        while stack:
            key, parents_done = stack.pop()
            if key in known or state.get(key) == "done":
                continue
            if parents_done:
                state[key] = "done"
                order.append(key)
                continue
            if key not in calls or state.get(key) == "open":
                raise ValueError(f"model config: cannot connect the layers of {model_name!r}; "
                                 f"the graph in the file is inconsistent (at {key[0]!r})")
            state[key] = "open"
            stack.append((key, True))
            stack.extend((parent, False) for parent in
                         _refs_in((calls[key]["args"], calls[key]["kwargs"])))
    return order


def _refs_in(obj: Any) -> list[tuple]:
    """(layer name, node position) of every saved tensor reference inside `obj`."""
    if isinstance(obj, dict) and "__keras_tensor__" in obj:
        name, pos, _ = obj["__keras_tensor__"]
        return [(name, pos)]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [ref for o in obj for ref in _refs_in(o)]
    return []


def _is_ref(obj: Any) -> bool:
    return isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], str) and \
        isinstance(obj[1], int) and isinstance(obj[2], int)


def _map_refs(obj: Any, fn: Any) -> Any:
    """Saved input/output references (a ref, or lists and dicts of them) -> tensors."""
    if _is_ref(obj):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_refs(v, fn) for k, v in obj.items()}
    if not isinstance(obj, (list, tuple)):
        raise ValueError(f"model config: expected a tensor reference [layer, node, index], "
                         f"got {obj!r}")
    return [_map_refs(o, fn) for o in obj]


def _decode_structure(obj: Any, decode: Any) -> Any:
    """Saved call arguments with each tensor reference replaced by `decode(ref)`."""
    if isinstance(obj, dict) and "__keras_tensor__" in obj:
        return decode(obj["__keras_tensor__"])
    if isinstance(obj, list):
        return [_decode_structure(o, decode) for o in obj]
    if isinstance(obj, dict):
        return {k: _decode_structure(v, decode) for k, v in obj.items()}
    return obj
