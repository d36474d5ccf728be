"""Record what a model's forward pass does, as a list of steps an ONNX emitter can replay.

Two hooks are installed for the duration of one forward pass (and removed afterwards, even
on error): `Module.__call__`, so that layers the exporter knows by type (Linear, Conv, LSTM,
Embedding, ...) are recorded whole from their public attributes, and `Function.apply`, the
single entry point of every differentiable op, so that custom `forward` code is recorded op
by op. Inside a layer recorded whole, nothing below it is recorded.

Every Tensor the pass touches becomes a `Value`. Tensors that no recorded step produced
(parameters, buffers, tensors made inside `forward`) are constants: their array is captured.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..autograd import Function
from ..nn import Module
from ..tensor import Tensor

__all__ = ["Value", "Step", "Trace", "trace_forward"]

_LOCK = threading.Lock()  # the hooks are process-wide: one trace at a time


@dataclass
class Value:
    """One tensor of the traced graph: its position, shape and dtype in this trace."""

    index: int
    shape: tuple
    dtype: np.dtype
    const: np.ndarray | None = None  # the captured array when no recorded step produced it
    param_name: str | None = None  # the model's name for a parameter or buffer


@dataclass
class Step:
    """One recorded call: a Module recorded whole, or one Function.apply."""

    kind: str  # "module" or "function"
    target: Any  # the Module instance or the Function subclass
    inputs: list  # Values, None, or plain Python/NumPy objects (nested tuples kept)
    attrs: dict
    outputs: list = field(default_factory=list)  # Values (a flat list)


class Trace:
    """The steps of one forward pass and the Values they read and write."""

    def __init__(self, model: Module, module_known: Callable[[Module], bool]) -> None:
        self.steps: list[Step] = []
        self.values: list[Value] = []
        self._by_id: dict[int, Value] = {}
        self._alive: list = []  # keeps traced tensors alive so that their ids stay unique
        self._module_known = module_known
        self._depth = 0  # > 0 while inside a module recorded whole
        self._names = {id(t): n for n, t in model.named_parameters()}
        self._names.update({id(t): n for n, t in model.named_buffers() if t is not None})

    # ------------------------------------------------------------------ values
    def value_of(self, tensor: Tensor) -> Value:
        """The Value for a tensor, capturing it as a constant the first time it is seen."""
        v = self._by_id.get(id(tensor))
        if v is None:
            v = self._new(tensor, const=np.array(tensor.numpy(), copy=True))
            v.param_name = self._names.get(id(tensor))
        return v

    def param_name(self, tensor: Tensor) -> str | None:
        return self._names.get(id(tensor))

    def _new(self, tensor: Tensor, const: np.ndarray | None = None) -> Value:
        v = Value(len(self.values), tuple(tensor.shape), np.dtype(tensor.dtype), const)
        self.values.append(v)
        self._by_id[id(tensor)] = v
        self._alive.append(tensor)
        return v

    def add_input(self, tensor: Tensor) -> Value:
        return self._new(tensor)

    def convert(self, obj: Any) -> Any:
        """Replace the Tensors inside an argument (nested tuples/lists too) by Values."""
        if isinstance(obj, Tensor):
            return self.value_of(obj)
        if isinstance(obj, (tuple, list)):
            return type(obj)(self.convert(o) for o in obj)
        return obj

    def produced(self, out: Any) -> list:
        """New Values for the Tensors in a step's output (flattened in order)."""
        return [self._new(t) for t in flatten_tensors(out)]

    # ------------------------------------------------------------------ hooks
    def _record_function(self, cls: type, inputs: tuple, attrs: dict, out: Any) -> None:
        step = Step("function", cls, [self.convert(x) for x in inputs],
                    {k: self.convert(v) for k, v in attrs.items()})
        step.outputs = self.produced(out)
        self.steps.append(step)

    def _record_module(self, module: Module, args: tuple, kwargs: dict, out: Any) -> None:
        step = Step("module", module, [self.convert(a) for a in args],
                    {k: self.convert(v) for k, v in kwargs.items()})
        step.outputs = self.produced(out)
        self.steps.append(step)

    def run(self, model: Module, args: tuple, kwargs: dict) -> tuple[list, Any]:
        """Call the model with both hooks installed; returns (input Values, raw output)."""
        trace = self
        original_apply = Function.__dict__["apply"]
        original_call = Module.__call__
        raw_apply = original_apply.__func__

        def traced_apply(cls, *inputs, **attrs):
            out = raw_apply(cls, *inputs, **attrs)
            if trace._depth == 0:
                trace._record_function(cls, inputs, attrs, out)
            return out

        def traced_call(module, *a, **kw):
            if trace._depth > 0 or not trace._module_known(module):
                return original_call(module, *a, **kw)
            trace._depth += 1
            try:
                out = original_call(module, *a, **kw)
            finally:
                trace._depth -= 1
            trace._record_module(module, a, kw, out)
            return out

        with _LOCK:
            inputs = [self.add_input(t) for t in flatten_tensors(args)]
            Function.apply = classmethod(traced_apply)
            Module.__call__ = traced_call
            try:
                out = model(*args, **kwargs)
            finally:
                Function.apply = original_apply
                Module.__call__ = original_call
        return inputs, out


def flatten_tensors(obj: Any) -> list:
    """The Tensors inside nested tuples/lists/dicts, in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in flatten_tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in flatten_tensors(o)]
    return []


def trace_forward(model: Module, args: tuple, kwargs: dict,
                  module_known: Callable[[Module], bool]) -> tuple[Trace, list, list]:
    """Trace one forward pass; returns the trace, the input Values and the output Values."""
    trace = Trace(model, module_known)
    inputs, out = trace.run(model, args, kwargs)
    outputs = [trace.value_of(t) for t in flatten_tensors(out)]
    return trace, inputs, outputs
