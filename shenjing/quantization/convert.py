"""Post-training quantization entry points with PyTorch's names, and int8 save/load.

    qmodel = quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=qint8)
    prepared = prepare(model)              # Conv layers observe their inputs
    for x in calibration_batches: prepared(x)
    qmodel = convert(prepared)             # or quantize_static(model, batches)
    save_quantized(qmodel, "m.safetensors"); qmodel = load_quantized(float_model, path)
"""

from __future__ import annotations

import copy
import os
from typing import Any, Iterable

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..serialization import load, save
from ..tensor import Tensor, as_tensor
from .kernels import KERNELS
from .modules import (
    DEFAULT_KERNEL,
    DynamicQuantizedGRU,
    DynamicQuantizedLinear,
    DynamicQuantizedLSTM,
    DynamicQuantizedRNN,
    Observer,
    QuantizedConv1d,
    QuantizedConv2d,
    QuantizedEmbedding,
)

__all__ = ["qint8", "quint8", "quantize_dynamic", "prepare", "convert", "quantize_static",
           "save_quantized", "load_quantized", "model_size_bytes", "set_kernel",
           "QUANTIZED_TYPES"]


class _QDtype(str):
    """torch.qint8 / torch.quint8 stand-ins (they compare equal to their names)."""


qint8 = _QDtype("qint8")
quint8 = _QDtype("quint8")

_DYNAMIC = {nn.Linear: DynamicQuantizedLinear, nn.LSTM: DynamicQuantizedLSTM,
            nn.GRU: DynamicQuantizedGRU, nn.RNN: DynamicQuantizedRNN,
            nn.Embedding: QuantizedEmbedding}
_STATIC = {nn.Conv1d: QuantizedConv1d, nn.Conv2d: QuantizedConv2d}
QUANTIZED_TYPES = {c.__name__: c for c in list(_DYNAMIC.values()) + list(_STATIC.values())}
_FORMAT = "shenjing-quantized/1"


def _check_kernel(kernel: str | None) -> str:
    kernel = DEFAULT_KERNEL if kernel is None else kernel
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return kernel


def _replace(model: nn.Module, pick) -> nn.Module:
    """Swap children (recursively) for pick(child) when it returns a module; exact types,
    so a subclass with its own forward is left alone."""
    for name, child in list(model._modules.items()):
        if child is None:
            continue
        new = pick(child)
        if new is not None:
            setattr(model, name, new)
        else:
            _replace(child, pick)
    return model


def _spec_types(spec: Any, default: set, allowed: dict, what: str) -> set:
    types = set(default if spec is None else spec)
    for t in types:
        if t not in allowed:
            raise TypeError(f"{what}: cannot quantize {getattr(t, '__name__', t)!r}; supported "
                            f"layers are {sorted(c.__name__ for c in allowed)}")
    return types


def quantize_dynamic(model: nn.Module, qconfig_spec: Any = None, dtype: Any = qint8,
                     inplace: bool = False, kernel: str | None = None) -> nn.Module:
    """int8 weights for the listed layer types (default {Linear, LSTM}); activations are
    quantized per batch at run time. Returns a new model unless inplace=True."""
    if str(dtype) != "qint8":
        raise ValueError(f"quantize_dynamic: only dtype=qint8 is supported, got {dtype!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantize_dynamic: expected an nn.Module, got {type(model).__name__}")
    types = _spec_types(qconfig_spec, {nn.Linear, nn.LSTM}, _DYNAMIC, "quantize_dynamic")
    kernel = _check_kernel(kernel)
    model = model if inplace else copy.deepcopy(model)
    model.eval()

    def pick(m):
        if type(m) in types:
            q = _DYNAMIC[type(m)].from_float(m)
            if isinstance(q, DynamicQuantizedLinear):
                q.kernel = kernel
            return q
        return None
    if type(model) in types:
        return pick(model)
    return _replace(model, pick)


def prepare(model: nn.Module, qconfig_spec: Any = None, inplace: bool = False) -> nn.Module:
    """Wrap each Conv1d/Conv2d in an Observer that records its input range; run the result
    on calibration data, then `convert` it."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare: expected an nn.Module, got {type(model).__name__}")
    types = _spec_types(qconfig_spec, set(_STATIC), _STATIC, "prepare")
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    if type(model) in types:
        return Observer(model)
    return _replace(model, lambda m: Observer(m) if type(m) in types else None)


def convert(model: nn.Module, inplace: bool = False, kernel: str | None = None) -> nn.Module:
    """Replace each calibrated Observer by the static int8 layer (weights per channel)."""
    kernel = _check_kernel(kernel)
    model = model if inplace else copy.deepcopy(model)

    def pick(m):
        if isinstance(m, Observer):
            return _STATIC[type(m.module)].from_observed(m, kernel)
        return None
    if isinstance(model, Observer):
        return pick(model)
    return _replace(model, pick)


def quantize_static(model: nn.Module, calibration_data: Iterable, qconfig_spec: Any = None,
                    num_batches: int | None = None, kernel: str | None = None,
                    dynamic_spec: Any = ()) -> nn.Module:
    """prepare + calibrate on batches (x, or (x, y, ...)) + convert; then, if given,
    `dynamic_spec` layer types (e.g. {nn.Linear}) are quantized dynamically too."""
    prepared = prepare(model, qconfig_spec)
    seen = 0
    with no_grad():
        for batch in calibration_data:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            prepared(x if isinstance(x, Tensor) else as_tensor(np.asarray(x)))
            seen += 1
            if num_batches is not None and seen >= num_batches:
                break
    if seen == 0:
        raise ValueError("quantize_static: calibration_data gave no batches")
    out = convert(prepared, inplace=True, kernel=kernel)
    if dynamic_spec:
        out = quantize_dynamic(out, set(dynamic_spec), inplace=True, kernel=kernel)
    return out


def set_kernel(model: nn.Module, kernel: str) -> nn.Module:
    """Switch every int8 GEMM layer of a quantized model to "int" or "dequant"."""
    kernel = _check_kernel(kernel)
    for m in model.modules():
        if isinstance(m, (DynamicQuantizedLinear, QuantizedConv1d, QuantizedConv2d)):
            m.kernel = kernel
    return model


# ----------------------------------------------------------------------------- save / load


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer in the state dict (what a checkpoint stores)."""
    total = 0
    for v in model.state_dict().values():
        total += (v.numpy() if hasattr(v, "numpy") else np.asarray(v)).nbytes
    return total


def save_quantized(model: nn.Module, path: str | os.PathLike) -> None:
    """safetensors (int8 tensors stay int8) + JSON saying which layers are quantized."""
    layers = {name: {"type": type(m).__name__, "config": m.config()}
              for name, m in model.named_modules() if type(m).__name__ in QUANTIZED_TYPES}
    state = {k: v.numpy() if hasattr(v, "numpy") else np.asarray(v)
             for k, v in model.state_dict().items()}
    save({"format": _FORMAT, "layers": layers, "state": state}, path)


def _build(type_name: str, config: dict) -> nn.Module:
    cls = QUANTIZED_TYPES[type_name]
    if cls in (DynamicQuantizedLSTM, DynamicQuantizedGRU, DynamicQuantizedRNN):
        return cls(cls.float_type(**config))
    if cls in (QuantizedConv1d, QuantizedConv2d):
        return cls(config["in_channels"], config["out_channels"], config["kernel_size"],
                   config["stride"], config["pads"], config["dilation"], config["groups"],
                   config["bias"])
    return cls(**config)


def load_quantized(model: nn.Module, path: str | os.PathLike,
                   kernel: str | None = None) -> nn.Module:
    """Rebuild a quantized model saved by `save_quantized` on its float architecture
    (`model`, a fresh instance: weights are replaced) and load its int8 state."""
    obj = load(path)
    if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
        raise ValueError(f"load_quantized: {path} is not a shenjing quantized model "
                         f"(expected format {_FORMAT!r})")
    layers = obj["layers"]
    for spec in layers.values():
        if spec.get("type") not in QUANTIZED_TYPES:
            raise ValueError(f"load_quantized: {path}: unknown layer type {spec.get('type')!r}")
    model = copy.deepcopy(model)
    for name, spec in layers.items():
        new = _build(spec["type"], spec["config"])
        if name == "":
            model = new
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
    model.load_state_dict(obj["state"])
    model.eval()
    return set_kernel(model, kernel) if kernel else model
