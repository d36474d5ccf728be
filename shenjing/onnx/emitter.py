"""Turn a recorded trace into ONNX nodes and initializers (the onnx package's helper API).

The model is traced twice: on the example input and on a second input whose dynamic axes
have another size (or, without dynamic axes, other values). Comparing the two traces says
which dimension of every tensor follows the dynamic axes, so shape-carrying ops (reshape,
expand, constants made in `forward`) are written with run-time shapes exactly where needed,
and it catches tensors computed outside shenjing's ops that depend on the input.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .trace import Step, Trace, Value

__all__ = ["UnsupportedOperatorError", "Emitter"]


class UnsupportedOperatorError(ValueError):
    """A layer or op with no ONNX translation; the message names it. Nothing is written."""


def onnx_helper():
    """The onnx package, imported on first use: it is an optional dependency."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("shenjing.onnx needs the 'onnx' package: pip install "
                          "'shenjing[onnx]' (or pip install onnx)") from e
    return onnx


def elem_type(dtype: np.dtype) -> int:
    return onnx_helper().helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Emitter:
    """Collects ONNX nodes and initializers while the handlers replay a trace."""

    def __init__(self, first: Trace, second: Trace, input_values: list) -> None:
        self.first, self.second = first, second
        self.input_values = input_values
        self.nodes: list = []
        self.initializers: dict[str, np.ndarray] = {}
        self.names: dict[int, str] = {}
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}

    # ------------------------------------------------------------------ names and constants
    def fresh(self, hint: str) -> str:
        base = "".join(c if c.isalnum() or c in "._" else "_" for c in hint) or "t"
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        """Keep a user-given input/output name from being used for anything else."""
        self._used.add(name)

    def const(self, array: Any, hint: str = "const", dtype: Any = None) -> str:
        """An initializer holding `array` (deduplicated by content for small arrays)."""
        arr = np.asarray(array, dtype=dtype)
        key = None
        if arr.size <= 64:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(hint)
        self.initializers[name] = np.ascontiguousarray(arr)
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), "ints")

    def name(self, v: Value) -> str:
        """The ONNX name of a traced Value (an initializer if it is a constant)."""
        if v.index < 0:  # a parameter read by a layer handler: one initializer per array
            key = ("param", v.param_name if v.param_name != "param" else id(v.const))
            if key not in self._consts:
                self._consts[key] = self.const(v.const, v.param_name)
            return self._consts[key]
        if v.index in self.names:
            return self.names[v.index]
        if v.const is None:
            raise AssertionError(f"value {v.index} used before it was produced")
        name = self._constant_value(v)
        self.names[v.index] = name
        return name

    def param(self, tensor) -> Value:
        """A constant Value for a parameter/buffer a layer handler reads directly."""
        name = self.first.param_name(tensor)
        arr = tensor.numpy()
        return Value(-1, tuple(arr.shape), arr.dtype, arr, name or "param")

    def bind(self, v: Value, name: str) -> None:
        self.names[v.index] = name

    def node(self, op: str, inputs: list, n_out: int = 1, **attrs) -> Any:
        """Append one node; returns its output name (or names when n_out > 1)."""
        helper = onnx_helper().helper
        outs = [self.fresh(f"{op}_out") for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=self.fresh(op),
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    # ------------------------------------------------------------------ shapes
    def array(self, v: Any) -> np.ndarray | None:
        """The captured array of a constant Value (None for computed ones)."""
        return v.const if isinstance(v, Value) else None

    def dynamic_dims(self, v: Value) -> list[int]:
        """Dimensions of v whose size changed between the two traces."""
        other = self.second.values[v.index].shape
        return [i for i, (a, b) in enumerate(zip(v.shape, other)) if a != b]

    def shape_of(self, v: Value, sources: list, allow_infer: bool = False) -> str:
        """A 1-D int64 tensor with v's shape: fixed sizes as constants, sizes that follow the
        dynamic axes read at run time from a source's Shape (or -1 once, for Reshape)."""
        dyn = self.dynamic_dims(v)
        if not dyn:
            return self.ints(v.shape)
        v2 = self.second.values[v.index].shape
        parts: list[str] = []
        inferred = False
        for i, n in enumerate(v.shape):
            if i not in dyn:
                parts.append(self.ints([n]))
                continue
            found = self._find_dim(n, v2[i], sources)
            if found is not None:
                src, j = found
                shape = self.node("Shape", [self.name(src)])
                parts.append(self.node("Gather", [shape, self.ints([j])], axis=0))
            elif allow_infer and not inferred:
                parts.append(self.ints([-1]))
                inferred = True
            else:
                raise UnsupportedOperatorError(
                    f"cannot express dimension {i} of a tensor of shape {v.shape} from the "
                    f"dynamic axes; export without dynamic_axes or reshape with -1")
        return self.node("Concat", parts, axis=0)

    def _find_dim(self, n1: int, n2: int, sources: list) -> tuple | None:
        for src in sources:
            if not isinstance(src, Value) or src.const is not None:
                continue
            s2 = self.second.values[src.index].shape
            for j, (a, b) in enumerate(zip(src.shape, s2)):
                if a == n1 and b == n2:
                    return src, j
        return None

    # ------------------------------------------------------------------ constants of the trace
    def _constant_value(self, v: Value) -> str:
        if v.param_name is not None:
            return self.const(v.const, v.param_name)
        other = self.second.values[v.index]
        if other.shape == v.shape and np.array_equal(other.const, v.const):
            return self.const(v.const, "const")
        repeated = self._repeated_along_dynamic_dims(v, other)
        if repeated is not None:  # e.g. positions arange(L) broadcast over the batch
            base = self.const(repeated, "const")
            return self.node("Expand", [base, self.shape_of(v, self.input_values)])
        flat = v.const.reshape(-1)
        same = flat.size > 0 and np.all(flat == flat[0])
        same2 = other.const is not None and other.const.size > 0 and np.all(
            other.const == other.const.reshape(-1)[0])
        if same and same2 and other.const.reshape(-1)[0] == flat[0]:  # zeros/full(shape)
            shape = self.shape_of(v, self.input_values)
            return self.node("Expand", [self.const(flat[:1].reshape(()), "fill"), shape])
        raise UnsupportedOperatorError(
            f"a tensor of shape {v.shape} computed outside shenjing's differentiable ops "
            f"(e.g. a comparison, argmax, or a .numpy() round trip) depends on the input; "
            f"it cannot be exported")

    def _repeated_along_dynamic_dims(self, v: Value, other: Value) -> np.ndarray | None:
        """The one slice a constant repeats along its dynamic dims, when both traces agree
        on it (its values depend on the input's size only through that repetition)."""
        dyn = self.dynamic_dims(v)
        if not dyn or other.const is None or len(other.shape) != len(v.shape):
            return None
        first = tuple(slice(0, 1) if i in dyn else slice(None) for i in range(len(v.shape)))
        a, b = v.const[first], other.const[first]
        if not np.array_equal(a, b):
            return None
        if not (np.array_equal(np.broadcast_to(a, v.shape), v.const)
                and np.array_equal(np.broadcast_to(b, other.shape), other.const)):
            return None
        return np.ascontiguousarray(a)


Handler = Callable[[Emitter, Step], list]
