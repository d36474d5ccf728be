"""`export`: trace a model, translate the trace to ONNX, check it, and write it atomically."""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..io.atomic import atomic_write
from ..nn import Module
from ..tensor import Tensor, as_tensor
from .emitter import Emitter, UnsupportedOperatorError, elem_type, onnx_helper
from .layers import layer_handler
from .ops import FUNCTION_HANDLERS
from .passes import fold_batch_norm
from .trace import Trace, flatten_tensors, trace_forward

__all__ = ["export", "to_model_proto"]

OPSET = 17
_IR_VERSION = 8  # the IR version that came with opset 17: readable by every current runtime


def export(model: Module, args: Any, f: Any = None, export_params: bool = True,
           verbose: bool = False, training: Any = None, input_names: list | None = None,
           output_names: list | None = None, operator_export_type: Any = None,
           opset_version: int | None = None, do_constant_folding: bool = True,
           dynamic_axes: dict | None = None, keep_initializers_as_inputs: bool | None = None,
           **ignored: Any) -> None:
    """Write `model` as an ONNX file at `f` (a path or a binary file object), like
    `torch.onnx.export`: `args` is the example input (a Tensor or a tuple of them, optionally
    ending with a dict of keyword arguments); `dynamic_axes` maps input/output names to the
    axes whose size may change ({"input": {0: "batch"}} or {"input": [0]}).

    The model is exported in eval mode (its mode is restored afterwards). An op or layer with
    no ONNX translation raises `UnsupportedOperatorError` naming it, and nothing is written.
    """
    if f is None:
        raise TypeError("export: expected a file path or a binary file object as f")
    extra_kwargs = ignored.pop("kwargs", None)  # torch's keyword inputs of the model
    if extra_kwargs:
        args = (tuple(args) if isinstance(args, (tuple, list)) else (args,)) + (
            dict(extra_kwargs),)
    proto = to_model_proto(model, args, input_names=input_names, output_names=output_names,
                           opset_version=opset_version, dynamic_axes=dynamic_axes, check=False)
    data = proto.SerializeToString()
    onnx_helper().checker.check_model(data)  # before anything is written
    if isinstance(f, (str, os.PathLike)):
        with atomic_write(f, "wb") as out:
            out.write(data)
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"export: f must be a path or a binary file object, got "
                        f"{type(f).__name__}")
    if verbose:
        print(onnx_helper().helper.printable_graph(proto.graph))


def to_model_proto(model: Module, args: Any, input_names: list | None = None,
                   output_names: list | None = None, opset_version: int | None = None,
                   dynamic_axes: dict | None = None, check: bool = True):
    """The `onnx.ModelProto` of `model` traced on `args` (see `export`), checked by
    `onnx.checker` unless check=False."""
    onnx = onnx_helper()
    if not isinstance(model, Module):
        raise TypeError(f"export: expected a shenjing nn.Module, got {type(model).__name__}")
    _check_opset(opset_version)
    args, kwargs = _split_args(args)
    n_inputs = len(flatten_tensors(args))
    input_names = _names("input_names", input_names, n_inputs, "input")
    dynamic_axes = _normalize_axes(dynamic_axes or {})
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:  # layers are translated while still in eval mode
        with no_grad():
            first, in_values, out_values = _trace(model, args, kwargs)
            counter = iter(input_names)
            second_args = _other_input(args, counter, dynamic_axes)
            try:
                second, _, _ = _trace(model, second_args, kwargs)
            except (ValueError, TypeError) as e:
                raise ValueError(f"export: the model does not run when the dynamic axes "
                                 f"{dynamic_axes} change size: {e}") from None
            _check_same_graph(first, second)
            output_names = _names("output_names", output_names, len(out_values), "output")
            E = _emit(first, second, in_values, out_values, input_names, output_names)
    finally:
        for m, mode in modes:
            m.training = mode
    fold_batch_norm(E.nodes, E.initializers)

    helper = onnx.helper
    graph_inputs = [helper.make_tensor_value_info(
        name, elem_type(v.dtype), _dims(v, E, dynamic_axes.get(name, {}), name))
        for v, name in zip(in_values, input_names)]
    graph_outputs = [helper.make_tensor_value_info(
        name, elem_type(v.dtype), _dims(v, E, dynamic_axes.get(name, {}), name))
        for v, name in zip(out_values, output_names)]
    used = {i for n in E.nodes for i in n.input}
    inits = [onnx.numpy_helper.from_array(arr, name)
             for name, arr in E.initializers.items() if name in used]
    graph = helper.make_graph(E.nodes, type(model).__name__, graph_inputs, graph_outputs, inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="shenjing")
    proto.ir_version = _IR_VERSION
    if check:
        onnx.checker.check_model(proto)
    return proto


# ----------------------------------------------------------------------------- helpers


def _emit(first: Trace, second: Trace, in_values: list, out_values: list, input_names: list,
          output_names: list) -> Emitter:
    """Replay the first trace through the handlers; the graph outputs get their names."""
    E = Emitter(first, second, in_values)
    for v, name in zip(in_values, input_names):
        E.bind(v, name)
        E.reserve(name)
    for name in output_names:
        E.reserve(name)
    for step in first.steps:
        handler = (layer_handler(step.target) if step.kind == "module"
                   else FUNCTION_HANDLERS.get(step.target.__name__))
        if handler is None:
            raise UnsupportedOperatorError(f"export: no ONNX translation for "
                                           f"{_describe(step)}")
        outs = handler(E, step)
        if len(outs) != len(step.outputs):
            raise UnsupportedOperatorError(f"export: {_describe(step)} returned "
                                           f"{len(step.outputs)} tensors, expected "
                                           f"{len(outs)}")
        for v, name in zip(step.outputs, outs):
            E.bind(v, name)
    helper = onnx_helper().helper
    for v, name in zip(out_values, output_names):
        E.nodes.append(helper.make_node("Identity", [E.name(v)], [name], name=E.fresh("output")))
    return E


def _check_opset(opset_version: int | None) -> None:
    if opset_version is None or opset_version == OPSET:
        return
    if not isinstance(opset_version, int) or opset_version > OPSET:
        raise ValueError(f"export: opset_version {opset_version!r} is not supported; "
                         f"shenjing writes opset {OPSET}")
    warnings.warn(f"export: opset_version={opset_version} requested; writing opset {OPSET} "
                  f"(LayerNormalization needs it; every current runtime reads it)",
                  UserWarning, stacklevel=3)


def _split_args(args: Any) -> tuple[tuple, dict]:
    if isinstance(args, Tensor) or isinstance(args, np.ndarray):
        args = (args,)
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"export: args must be a Tensor or a tuple of inputs, got "
                        f"{type(args).__name__}")
    args = tuple(args)
    kwargs: dict = {}
    if args and isinstance(args[-1], dict):
        args, kwargs = args[:-1], dict(args[-1])
        if flatten_tensors(kwargs):
            raise TypeError("export: Tensor inputs given as keyword arguments are not "
                            "supported; pass them positionally in args")
    args = tuple(as_tensor(a) if isinstance(a, np.ndarray) else a for a in args)
    if not any(isinstance(a, Tensor) for a in args):
        raise ValueError("export: args must contain at least one Tensor input")
    return args, kwargs


def _names(what: str, names: list | None, n: int, default: str) -> list:
    if names is None:
        return [default] if n == 1 else [f"{default}_{i}" for i in range(n)]
    names = list(names)
    if len(names) != n or not all(isinstance(x, str) and x for x in names):
        raise ValueError(f"export: {what} must be {n} non-empty strings (one per "
                         f"{'input' if default == 'input' else 'output'} tensor), got {names!r}")
    if len(set(names)) != n:
        raise ValueError(f"export: {what} must be distinct, got {names!r}")
    return names


def _normalize_axes(dynamic_axes: dict) -> dict:
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"export: dynamic_axes must be a dict, got {type(dynamic_axes).__name__}")
    out = {}
    for name, axes in dynamic_axes.items():
        if isinstance(axes, dict):
            out[name] = {int(a): str(n) for a, n in axes.items()}
        elif isinstance(axes, (list, tuple)):
            out[name] = {int(a): f"{name}_dim{int(a)}" for a in axes}
        else:
            raise TypeError(f"export: dynamic_axes[{name!r}] must be a dict or a list of axes, "
                            f"got {type(axes).__name__}")
    return out


def _trace(model: Module, args: tuple, kwargs: dict) -> tuple:
    return trace_forward(model, args, kwargs, lambda m: layer_handler(m) is not None)


def _other_input(obj: Any, names, dynamic_axes: dict) -> Any:
    """The second trace's input: every dynamic axis one longer, and different values."""
    if isinstance(obj, (tuple, list)):
        return type(obj)(_other_input(o, names, dynamic_axes) for o in obj)
    if not isinstance(obj, Tensor):
        return obj
    name = next(names)
    arr = obj.numpy()
    for axis in sorted(dynamic_axes.get(name, {})):
        if not -arr.ndim <= axis < arr.ndim:
            raise ValueError(f"export: dynamic axis {axis} of input {name!r} is out of range "
                             f"for shape {tuple(arr.shape)}")
        arr = np.concatenate([arr, np.take(arr, [0], axis=axis)], axis=axis)
    if arr.size > 1:  # other values, so that input-dependent constants show up
        order = np.random.default_rng(20261203).permutation(arr.size)
        arr = arr.reshape(-1)[order].reshape(arr.shape)
    if arr.dtype.kind == "f":
        arr = (arr * -1.25 + 0.25).astype(arr.dtype)
    return as_tensor(np.ascontiguousarray(arr))


def _check_same_graph(first: Trace, second: Trace) -> None:
    same = len(first.steps) == len(second.steps) and len(first.values) == len(second.values)
    same = same and all(s.target is t.target for s, t in zip(first.steps, second.steps))
    if not same:
        raise ValueError("export: the model runs different ops for different inputs (Python "
                         "control flow on tensor values or sizes); it cannot be exported as one "
                         "graph")
    for s, t in zip(first.steps, second.steps):
        for key, val in s.attrs.items():
            if not _same_arrays(val, t.attrs.get(key)):
                raise UnsupportedOperatorError(
                    f"export: {_describe(s)} takes {key!r} as a plain array that depends on the "
                    f"input; call it with Tensor inputs (or use the nn layer) to export it")


def _same_arrays(a: Any, b: Any) -> bool:
    """Whether the arrays inside two attributes (nested in tuples too) are equal."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return (isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(_same_arrays(x, y) for x, y in zip(a, b)))
    return True


def _describe(step) -> str:
    if step.kind == "module":
        return f"layer {type(step.target).__name__}"
    cls = step.target
    return f"op '{getattr(cls, 'op_name', cls.__name__.lower())}' ({cls.__name__})"


def _dims(v, E: Emitter, named: dict, name: str) -> list:
    dyn = set(E.dynamic_dims(v)) | {a % max(len(v.shape), 1) for a in named}
    dims: list = []
    for i, n in enumerate(v.shape):
        if i in dyn:
            dims.append(named.get(i, named.get(i - len(v.shape), f"{name}_dim{i}")))
        else:
            dims.append(int(n))
    return dims


def model_bytes(model: Module, args: Any, **kwargs: Any) -> bytes:
    """The serialized ONNX model (for tests and in-memory use)."""
    buf = io.BytesIO()
    export(model, args, buf, **kwargs)
    return buf.getvalue()
