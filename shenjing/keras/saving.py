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
from .architecture import (
    functional_config,
    functional_from_config,
    layer_config,
    model_config,
    model_from_config,
)
from .layers.base import Layer, Weight
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
    # np.require keeps 0-d weights 0-d (ascontiguousarray would make them shape (1,))
    return {path: np.require(w.numpy(), requirements="C") for path, w in
            weight_dict(model).items()}


def _assign(model: Layer, arrays: dict, source: str, skip_mismatch: bool = False,
            error: type[ValueError] = ValueError) -> None:
    """Copy file arrays into the model's weights; names and shapes are all checked first."""
    _check_keys(model, arrays, source, error)
    own = weight_dict(model)
    for path, w in own.items():
        if tuple(np.shape(arrays[path])) != w.shape and not skip_mismatch:
            raise error(f"{source}: weight {path!r} has shape {np.shape(arrays[path])} in the "
                        f"file but {w.shape} in the model")
    for path, w in own.items():
        arr = np.asarray(arrays[path])
        if tuple(arr.shape) == w.shape:
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


def _check_keys(model: Layer, names: Any, source: str, error: type[ValueError]) -> None:
    """Refuse a file whose weight names differ from the model's (before any data is read)."""
    own = weight_dict(model)
    missing = [k for k in own if k not in names]
    unexpected = [k for k in names if k not in own]
    if missing or unexpected:
        raise error(
            f"{source}: the saved weights do not match model {model.name!r}: missing "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}, unexpected "
            f"{unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}. Was the file saved "
            f"from a model with the same layers?")


def _file_error(path: str) -> type[ValueError]:
    """The format error of a model file, judged by its name (for files that are neither)."""
    from ..io.errors import H5FileError, KerasFileError

    return H5FileError if path.endswith((".h5", ".hdf5")) else KerasFileError


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    """Rebuild a model saved by `model.save` (.keras or .h5); it predicts as the original.

    The file is never trusted: sizes are checked before allocation, the config before a layer
    is built, weight shapes against the rebuilt model before an `.h5` dataset is read, and an
    `.h5` may not reach outside itself. A damaged or hostile file raises `KerasFileError`
    (.keras) or `H5FileError` (.h5), ValueErrors whose message names the file.
    """
    from ..io import keras_files
    from ..io.errors import H5FileError, KerasFileError

    path = os.fspath(filepath)
    head = _read_head(path)
    if head.startswith(_ZIP_MAGIC):
        archive = keras_files.read_keras_zip(path)
        return _rebuild(path, archive.config, archive.weight_elements,
                        lambda model: (archive.weights, archive.optimizer), KerasFileError,
                        custom_objects, compile)
    if head.startswith(_HDF5_MAGIC):
        with keras_files.open_h5(path) as h5:
            config = _h5_config(h5)
            datasets = h5.datasets("model_weights")
            opt = h5.datasets("optimizer_weights") if h5.has_group("optimizer_weights") else None

            def read(model: Any) -> tuple:
                where = f"load_model({path!r})"
                _check_keys(model, datasets, where, H5FileError)
                own = weight_dict(model)
                weights = h5.read(datasets, {k: w.shape for k, w in own.items()})
                largest = max((int(np.prod(w.shape)) for w in own.values()), default=0)
                for name, dataset in (opt or {}).items():
                    if int(np.prod(dataset.shape)) > largest:
                        raise H5FileError(f"{where}: optimizer dataset {name!r} has shape "
                                          f"{dataset.shape}, larger than any model weight",
                                          path)
                return weights, h5.read(opt) if opt is not None else None

            return _rebuild(path, config, keras_files.dataset_elements(datasets), read,
                            H5FileError, custom_objects, compile)
    hint = (" It looks like a safetensors weights file: build the model and call "
            "model.load_weights() instead." if path.endswith(".safetensors") else "")
    raise _file_error(path)(f"load_model: cannot read {path!r}: it is neither a .keras archive "
                            f"(zip) nor an HDF5 (.h5) file (first bytes {head!r}).{hint}", path)


def _h5_config(h5: Any) -> dict:
    """The model config of an open `.h5` (with its compile config and optimizer state)."""
    if not h5.has_attr("model_config"):
        raise h5.fail("an HDF5 file without a model configuration (a weights-only file? use "
                      "model.load_weights())")
    config = h5.attr_json("model_config")
    if not isinstance(config, dict):
        raise h5.fail(f"attribute 'model_config' must be a JSON object, got "
                      f"{type(config).__name__}")
    if h5.has_attr("training_config"):
        config["compile_config"] = h5.attr_json("training_config")
    if h5.has_attr("optimizer_state"):
        config["optimizer_state"] = h5.attr_json("optimizer_state")
    if not h5.has_group("model_weights"):
        raise h5.fail("it has no model_weights group")
    return config


def _rebuild(path: str, config: Any, file_elements: int, read_weights: Any,
             error: type[ValueError], custom_objects: dict | None, compile: bool) -> Any:
    """Build the model from a file's config (checked first), then fill in its weights."""
    from ..io import limits
    from ..io.errors import ModelConfigError

    where = f"load_model({path!r})"
    if not isinstance(config, dict) or "class_name" not in config:
        raise error(f"{where}: the config does not describe a model (expected an object with "
                    "a 'class_name')", path)
    compile_cfg = config.pop("compile_config", None)
    opt_meta = config.pop("optimizer_state", None)
    try:
        needed = limits.check_model_config(config, where)
        limits.check_config_against_weights(needed, file_elements, where)
    except ModelConfigError as e:
        raise error(str(e), path) from None
    try:
        model = model_from_config(config, custom_objects)
    except Exception as e:  # any constructor may trip over a hostile value
        raise error(f"{where}: the architecture in the file cannot be rebuilt: "
                    f"{type(e).__name__}: {str(e)[:500]}", path) from e
    if not getattr(model, "built", False):
        raise error(f"{where}: the architecture in the file builds a model without weights "
                    "(no input shape); expected the config of a built model", path)
    weights, opt = read_weights(model)
    _assign(model, weights, where, error=error)
    if compile and compile_cfg:
        try:
            if not isinstance(compile_cfg, dict):
                raise TypeError(f"expected an object, got {type(compile_cfg).__name__}")
            _compile_from_config(model, compile_cfg, custom_objects)
            if opt_meta is not None and opt is not None:
                if not isinstance(opt_meta, dict):
                    raise TypeError(f"optimizer state must be an object, got "
                                    f"{type(opt_meta).__name__}")
                _restore_optimizer(model, opt_meta, opt)
        except Exception as e:  # compile and optimizer configs come from the file too
            raise error(f"{where}: the compile configuration or optimizer state in the file "
                        f"is invalid: {type(e).__name__}: {str(e)[:500]}", path) from e
    return model


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False) -> None:
    """Load weights saved by save_weights (or the weights inside a .keras / .h5 model file).

    A damaged or hostile file raises its format's error (`KerasFileError`, `H5FileError`,
    `SafetensorsError`); weights that do not fit the model raise ValueError naming them.
    """
    from ..io import keras_files
    from ..io.errors import SafetensorsError

    path = os.fspath(filepath)
    head = _read_head(path)
    where = f"load_weights({path!r})"
    if head.startswith(_ZIP_MAGIC):
        arrays = keras_files.read_keras_zip(path).weights
    elif head.startswith(_HDF5_MAGIC):
        with keras_files.open_h5(path) as h5:
            datasets = h5.datasets("model_weights" if h5.has_group("model_weights") else None)
            _check_keys(model, datasets, where, ValueError)

            def mismatch(name: str, found: tuple, want: tuple) -> None:
                if not skip_mismatch:
                    raise ValueError(f"{where}: weight {name!r} has shape {found} in the file "
                                     f"but {want} in the model")

            expected = {k: w.shape for k, w in weight_dict(model).items()}
            arrays = h5.read(datasets, expected, mismatch)
        if skip_mismatch:
            arrays = {**{k: np.zeros((0,)) for k in datasets if k not in arrays}, **arrays}
    else:
        try:
            with open(path, "rb") as f:
                arrays = st_load(f.read())
        except SafetensorsError as e:
            raise SafetensorsError(f"load_weights: cannot read {path!r} as safetensors: {e}",
                                   path) from None
    _assign(model, arrays, where, skip_mismatch)
