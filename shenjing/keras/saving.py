"""Saving and loading Keras models: `.keras` (zip), `.h5` (HDF5) and weights-only files.

* `.keras`: a zip holding `metadata.json`, `config.json` (the architecture: layer classes
  and their get_config(), plus the compile configuration) and `model.weights.safetensors`
  (every weight in Keras's layout), and, when the optimizer has state,
  `optimizer.safetensors` + its JSON description, so training can resume.
* `.h5`: the same content in one HDF5 file (root attributes `model_config` and
  `training_config`, weights under `model_weights/`), written with h5py, an optional
  dependency imported only here.
* `.weights.safetensors` / `.weights.h5`: weights only (`save_weights` / `load_weights`).

Weights are keyed by their place in the model (`conv2d/kernel`, `conv2d_1/kernel`, ...: the
snake-cased class name, numbered per parent), not by layer names, so weights saved from one
instance load into another built by the same code. Nothing is ever pickled: architecture is
JSON and tensors are safetensors/HDF5 datasets. Every file is written to a temporary file and
renamed (shenjing.io.atomic), so an interrupted save never leaves a truncated file.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from typing import Any, Iterator

import numpy as np

from .. import __version__
from ..io.atomic import atomic_write
from ..io.safetensors import load as st_load
from ..io.safetensors import save as st_save
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .layers import deserialize as deserialize_layer
from .layers.base import InputLayer, KerasTensor, Layer, Weight, map_structure
from .registry import (
    custom_object_scope,
    get_registered_object,
    register_keras_serializable,
    serialize,
    snake_case,
)

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "weight_dict",
           "model_config", "layer_config", "functional_config", "functional_from_config",
           "register_keras_serializable", "custom_object_scope", "get_registered_object"]

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# --------------------------------------------------------------------------- configs

def layer_config(layer: Layer) -> dict:
    from .models import Model

    if isinstance(layer, Model):
        return model_config(layer)
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def model_config(model: Any) -> dict:
    from .functional import Functional
    from .models import Sequential

    name = "Functional" if isinstance(model, Functional) else type(model).__name__
    cfg = {"class_name": name, "config": model.get_config()}
    if not isinstance(model, (Functional, Sequential)) and model._build_input_shape is not None:
        cfg["build_input_shape"] = _jsonable(model._build_input_shape)
    return cfg


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


def functional_from_config(config: dict, custom_objects: dict | None = None) -> Any:
    from .functional import Functional

    layers: dict[str, Layer] = {}
    outputs: dict[tuple, list] = {}
    pending = []
    for entry in config["layers"]:
        layer = deserialize_layer({"class_name": entry["class_name"],
                                   "config": entry["config"]}, custom_objects)
        layers[entry["name"]] = layer
        if isinstance(layer, InputLayer):
            outputs[(entry["name"], 0)] = [layer.output]
        for pos, node in enumerate(entry.get("inbound_nodes", [])):
            pending.append((entry["name"], pos, node))

    def decode(obj: Any) -> Any:
        if isinstance(obj, dict) and "__keras_tensor__" in obj:
            name, pos, ti = obj["__keras_tensor__"]
            return outputs[(name, pos)][ti]
        return obj

    def ready(obj: Any) -> bool:
        if isinstance(obj, dict) and "__keras_tensor__" in obj:
            name, pos, _ = obj["__keras_tensor__"]
            return (name, pos) in outputs
        if isinstance(obj, (list, tuple)):
            return all(ready(o) for o in obj)
        if isinstance(obj, dict):
            return all(ready(v) for v in obj.values())
        return True

    while pending:
        progress = False
        for item in list(pending):
            name, pos, node = item
            if ready(node["args"]) and ready(node["kwargs"]):
                args = _decode_structure(node["args"], decode)
                kwargs = {k: _decode_structure(v, decode) for k, v in node["kwargs"].items()}
                out = layers[name](args, **kwargs)
                outputs[(name, pos)] = out if isinstance(out, list) else [out]
                pending.remove(item)
                progress = True
        if not progress:
            raise ValueError(f"model config: cannot connect the layers of "
                             f"{config.get('name')!r}; the graph in the file is inconsistent")

    def tensor(ref: list) -> KerasTensor:
        return outputs[(ref[0], ref[1])][ref[2]]

    ins = _map_refs(config["input_layers"], tensor)
    outs = _map_refs(config["output_layers"], tensor)
    return Functional(ins, outs, name=config.get("name"), trainable=config.get("trainable",
                                                                                 True))


def _is_ref(obj: Any) -> bool:
    return isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], str) and \
        isinstance(obj[1], int) and isinstance(obj[2], int)


def _map_refs(obj: Any, fn: Any) -> Any:
    if _is_ref(obj):
        return fn(obj)
    return [_map_refs(o, fn) for o in obj]


def _decode_structure(obj: Any, decode: Any) -> Any:
    if isinstance(obj, dict) and "__keras_tensor__" in obj:
        return decode(obj)
    if isinstance(obj, list):
        return [_decode_structure(o, decode) for o in obj]
    if isinstance(obj, dict):
        return {k: _decode_structure(v, decode) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- weights

def _walk(layer: Layer, prefix: str, seen: set) -> Iterator[tuple[str, Weight]]:
    names: dict[str, int] = {}
    for w in _own_weights(layer):
        key = w.name
        n = names.get(key, 0)
        names[key] = n + 1
        if id(w.params()[0]) not in seen:
            seen.add(id(w.params()[0]))
            yield prefix + (key if n == 0 else f"{key}_{n}"), w
    counts: dict[str, int] = {}
    for child in layer._sublayers():
        base = snake_case(type(child).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        yield from _walk(child, f"{prefix}{base if n == 0 else f'{base}_{n}'}/", seen)


def _own_weights(layer: Layer) -> list:
    own = layer._weight_list
    return [w for w in own if w._created_trainable] + [w for w in own if not
                                                       w._created_trainable]


def weight_dict(model: Layer) -> dict[str, Weight]:
    """Path -> Weight for every weight of the model, in a stable order."""
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built yet, so it has no weights: call "
                         f"model.build(input_shape) or call it on a batch of data first")
    return dict(_walk(model, "", set()))


def _arrays(model: Layer) -> dict[str, np.ndarray]:
    return {path: np.ascontiguousarray(w.numpy()) for path, w in weight_dict(model).items()}


def _assign(model: Layer, arrays: dict, source: str, skip_mismatch: bool = False) -> None:
    own = weight_dict(model)
    missing = [k for k in own if k not in arrays]
    unexpected = [k for k in arrays if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{source}: the saved weights do not match model {model.name!r}: missing "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}, unexpected "
            f"{unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}. Was the file saved "
            f"from a model with the same layers?")
    for path, w in own.items():
        arr = np.asarray(arrays[path])
        if tuple(arr.shape) != w.shape:
            if skip_mismatch:
                continue
            raise ValueError(f"{source}: weight {path!r} has shape {arr.shape} in the file but "
                             f"{w.shape} in the model")
        w.assign(arr)


# --------------------------------------------------------------------------- optimizer state

def _optimizer_state(model: Any) -> tuple[dict, dict] | None:
    opt = getattr(model, "optimizer", None)
    if not isinstance(opt, optimizers_mod.Optimizer) or not opt.built:
        return None
    sd = opt.state_dict()
    arrays, scalars = {}, {}
    for idx, state in sd["impl"]["state"].items():
        for key, value in state.items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                arrays[f"{idx}/{key}"] = np.ascontiguousarray(value)
            else:
                scalars[f"{idx}/{key}"] = float(value)
    groups = [{k: v for k, v in g.items() if k != "params"} for g in sd["impl"]["param_groups"]]
    meta = {"iterations": sd["iterations"], "scalars": scalars,
            "param_groups": json.loads(json.dumps(groups, default=_json_default))}
    return meta, arrays


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def _restore_optimizer(model: Any, meta: dict, arrays: dict) -> None:
    opt = model.optimizer
    if not isinstance(opt, optimizers_mod.Optimizer):
        return
    if not opt.built:
        opt.build(model.parameters())
        opt._owner = model
    state: dict = {}
    for key, value in arrays.items():
        idx, name = key.split("/", 1)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        idx, name = key.split("/", 1)
        state.setdefault(int(idx), {})[name] = np.float32(value)
    groups = opt._impl.state_dict()["param_groups"]
    for g, saved in zip(groups, meta.get("param_groups", [])):
        for k, v in saved.items():
            g[k] = tuple(v) if isinstance(v, list) else v
    opt.load_state_dict({"iterations": meta.get("iterations", 0),
                         "impl": {"state": state, "param_groups": groups}})


# --------------------------------------------------------------------------- compile config

def _compile_config(model: Any) -> dict | None:
    if not getattr(model, "compiled", False):
        return None
    opt = model.optimizer
    cfg: dict = {"optimizer": serialize(opt) if isinstance(opt, optimizers_mod.Optimizer)
                 else None,
                 "loss": losses_mod.serialize_loss(model.compiled_loss)
                 if model.compiled_loss is not None else None,
                 "metrics": []}
    for m in model._metric_ids:
        if isinstance(m, str):
            cfg["metrics"].append(m)
        elif isinstance(m, metrics_mod.Metric):
            try:
                cfg["metrics"].append({"class_name": type(m).__name__, "config": m.get_config()})
            except (TypeError, ValueError):
                pass
    return cfg


def _compile_from_config(model: Any, cfg: dict, custom_objects: dict | None) -> None:
    opt = cfg.get("optimizer")
    optimizer = optimizers_mod.deserialize(opt, custom_objects) if opt else "rmsprop"
    loss = cfg.get("loss")
    loss_obj = losses_mod.deserialize(loss, custom_objects) if loss is not None else None
    metrics = []
    for m in cfg.get("metrics", []):
        metrics.append(m if isinstance(m, str) else metrics_mod.REGISTRY.lookup(
            m["class_name"], custom_objects).from_config(m.get("config", {})))
    model.compile(optimizer=optimizer, loss=loss_obj, metrics=metrics)


# --------------------------------------------------------------------------- save

def _check_target(filepath: Any, overwrite: bool) -> str:
    path = os.fspath(filepath)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a directory (give a file path "
                                f"ending in .keras or .h5)")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False")
    return path


def save_model(model: Any, filepath: Any, overwrite: bool = True,
               include_optimizer: bool = True, **kwargs: Any) -> None:
    """Save a model to .keras (zip of JSON + safetensors) or .h5 (HDF5), atomically."""
    path = _check_target(filepath, overwrite)
    if path.endswith((".weights.safetensors", ".weights.h5")):
        raise ValueError(f"save: {path!r} names a weights-only file; use model.save_weights() "
                         f"for it, or save the whole model to a .keras or .h5 file")
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built yet: call it on data, fit it or "
                         f"build(input_shape) before saving")
    config = model_config(model)
    compile_cfg = _compile_config(model)
    weights = _arrays(model)
    opt_state = _optimizer_state(model) if include_optimizer else None
    if path.endswith(".keras"):
        _save_zip(path, config, compile_cfg, weights, opt_state)
    elif path.endswith((".h5", ".hdf5")):
        _save_h5(path, config, compile_cfg, weights, opt_state)
    else:
        raise ValueError(f"Invalid filepath extension for saving: {path!r}. Add a .keras "
                         f"extension for the native format (recommended) or .h5 for HDF5.")


def _metadata() -> dict:
    return {"keras_version": "3 (shenjing)", "shenjing_version": __version__,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}


def _save_zip(path: str, config: dict, compile_cfg: Any, weights: dict, opt_state: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps(_metadata(), indent=1))
        full = dict(config, compile_config=compile_cfg)
        if opt_state is not None:
            full["optimizer_state"] = opt_state[0]
        zf.writestr("config.json", json.dumps(full, indent=1))
        zf.writestr("model.weights.safetensors", st_save(weights))
        if opt_state is not None:
            zf.writestr("optimizer.safetensors", st_save(opt_state[1]))
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as e:
        raise ImportError("saving or loading .h5 files needs h5py, an optional dependency: "
                          "pip install h5py (or use the .keras format, which needs nothing "
                          "extra)") from e
    return h5py


def _write_group(group: Any, arrays: dict) -> None:
    for key, arr in arrays.items():
        group.create_dataset(key, data=arr)


def _save_h5(path: str, config: dict, compile_cfg: Any, weights: dict, opt_state: Any) -> None:
    h5py = _import_h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "3 (shenjing)"
        f.attrs["backend"] = "shenjing"
        if compile_cfg is not None:
            f.attrs["training_config"] = json.dumps(compile_cfg)
        _write_group(f.create_group("model_weights"), weights)
        if opt_state is not None:
            f.attrs["optimizer_state"] = json.dumps(opt_state[0])
            _write_group(f.create_group("optimizer_weights"), opt_state[1])
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Weights only: .weights.safetensors (or any .safetensors), or .h5 via h5py."""
    path = _check_target(filepath, overwrite)
    weights = _arrays(model)
    if path.endswith(".safetensors"):
        with atomic_write(path, "wb") as f:
            f.write(st_save(weights, metadata={"format": "shenjing.keras weights"}))
    elif path.endswith((".h5", ".hdf5")):
        h5py = _import_h5py()
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            _write_group(f, weights)
        with atomic_write(path, "wb") as f:
            f.write(buf.getvalue())
    else:
        raise ValueError(f"save_weights: the filepath must end in .weights.safetensors (or "
                         f".weights.h5 with h5py), got {path!r}")


# --------------------------------------------------------------------------- load

def _read_head(path: str) -> bytes:
    if os.path.isdir(path):
        raise ValueError(f"cannot load {path!r}: it is a directory (TensorFlow SavedModel "
                         f"directories are not supported; save to .keras or .h5)")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    with open(path, "rb") as f:
        return f.read(8)


def _h5_arrays(group: Any) -> dict:
    out = {}

    def visit(name: str, obj: Any) -> None:
        if hasattr(obj, "shape") and hasattr(obj, "dtype"):
            out[name] = np.asarray(obj[()])

    group.visititems(visit)
    return out


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    """Rebuild a model saved by `model.save` (.keras or .h5); it predicts as the original."""
    from .models import model_from_config

    path = os.fspath(filepath)
    head = _read_head(path)
    if head.startswith(_ZIP_MAGIC):
        config, weights, opt = _read_zip(path)
    elif head.startswith(_HDF5_MAGIC):
        config, weights, opt = _read_h5(path)
    else:
        hint = (" It looks like a safetensors weights file: build the model and call "
                "model.load_weights() instead." if path.endswith(".safetensors") else "")
        raise ValueError(f"load_model: cannot read {path!r}: it is neither a .keras archive "
                         f"(zip) nor an HDF5 (.h5) file (first bytes {head!r}).{hint}")
    compile_cfg = config.pop("compile_config", None)
    opt_meta = config.pop("optimizer_state", None)
    try:
        model = model_from_config(config, custom_objects)
    except (KeyError, TypeError) as e:
        raise ValueError(f"load_model: the architecture in {path!r} cannot be rebuilt: "
                         f"{type(e).__name__}: {e}") from None
    _assign(model, weights, f"load_model({path!r})")
    if compile and compile_cfg:
        _compile_from_config(model, compile_cfg, custom_objects)
        if opt_meta is not None and opt is not None:
            _restore_optimizer(model, opt_meta, opt)
    return model


def _read_zip(path: str) -> tuple:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for required in ("config.json", "model.weights.safetensors"):
                if required not in names:
                    raise ValueError(f"load_model: {path!r} is a zip archive but not a .keras "
                                     f"model: it has no {required}")
            config = json.loads(zf.read("config.json"))
            weights = st_load(zf.read("model.weights.safetensors"))
            opt = st_load(zf.read("optimizer.safetensors")) if "optimizer.safetensors" in \
                names else None
    except zipfile.BadZipFile as e:
        raise ValueError(f"load_model: {path!r} is not a valid .keras file (a damaged or "
                         f"truncated zip archive: {e})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"load_model: the config.json in {path!r} is not valid JSON: "
                         f"{e}") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"load_model: the config.json in {path!r} does not describe a model")
    return config, weights, opt


def _read_h5(path: str) -> tuple:
    h5py = _import_h5py()
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise ValueError(f"load_model: {path!r} is an HDF5 file without a model "
                                 f"configuration (a weights-only file? use "
                                 f"model.load_weights())")
            raw = f.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            if "training_config" in f.attrs:
                tc = f.attrs["training_config"]
                config["compile_config"] = json.loads(tc.decode() if isinstance(tc, bytes)
                                                      else tc)
            if "optimizer_state" in f.attrs:
                config["optimizer_state"] = json.loads(f.attrs["optimizer_state"])
            if "model_weights" not in f:
                raise ValueError(f"load_model: {path!r} has no model_weights group")
            weights = _h5_arrays(f["model_weights"])
            opt = _h5_arrays(f["optimizer_weights"]) if "optimizer_weights" in f else None
    except OSError as e:
        raise ValueError(f"load_model: {path!r} is not a readable HDF5 file (damaged or "
                         f"truncated?): {e}") from None
    return config, weights, opt


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False) -> None:
    """Load weights saved by save_weights (or the weights inside a .keras / .h5 model file)."""
    path = os.fspath(filepath)
    head = _read_head(path)
    if head.startswith(_ZIP_MAGIC):
        _, arrays, _ = _read_zip(path)
    elif head.startswith(_HDF5_MAGIC):
        h5py = _import_h5py()
        try:
            with h5py.File(path, "r") as f:
                arrays = _h5_arrays(f["model_weights"] if "model_weights" in f else f)
        except OSError as e:
            raise ValueError(f"load_weights: {path!r} is not a readable HDF5 file: {e}") \
                from None
    else:
        try:
            with open(path, "rb") as f:
                arrays = st_load(f.read())
        except ValueError as e:
            raise ValueError(f"load_weights: cannot read {path!r} as safetensors: {e}") \
                from None
    _assign(model, arrays, f"load_weights({path!r})", skip_mismatch)
