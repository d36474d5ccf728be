"""ONNX translations of shenjing's differentiable ops, keyed by Function class name.

Each handler gets the emitter and one recorded `Step` (inputs are traced Values, constants
or None; attrs are the keyword arguments given to `Function.apply`) and returns the ONNX
names of the step's outputs. The emit_* helpers are shared with the layer handlers.
"""

from __future__ import annotations

import math

import numpy as np

from .emitter import Emitter, Handler, UnsupportedOperatorError
from .trace import Step, Value

__all__ = ["FUNCTION_HANDLERS", "emit_linear", "emit_conv", "emit_batch_norm",
           "emit_layer_norm", "operand"]

FUNCTION_HANDLERS: dict[str, Handler] = {}


def handles(*names: str):
    def register(fn: Handler) -> Handler:
        for n in names:
            FUNCTION_HANDLERS[n] = fn
        return fn
    return register


def operand(E: Emitter, x, dtype) -> str:
    """The ONNX name of an op input: a traced Value, or a Python/NumPy constant cast to
    the dtype the op computes in."""
    if isinstance(x, Value):
        return E.name(x)
    return E.const(np.asarray(x, dtype=dtype), "scalar")


def _attr_operand(E: Emitter, obj, hint: str) -> str:
    """An array given to an op as a keyword attribute (a running statistic, say)."""
    return E.name(obj) if isinstance(obj, Value) else E.const(np.asarray(obj), hint)


def _out_dtype(step: Step):
    return step.outputs[0].dtype


# ----------------------------------------------------------------------------- elementwise

_BINARY = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Pow": "Pow",
           "Maximum": "Max", "Minimum": "Min"}
_UNARY = {"Neg": "Neg", "Abs": "Abs", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Sin": "Sin",
          "Cos": "Cos", "Tanh": "Tanh", "Sigmoid": "Sigmoid", "Relu": "Relu", "Sign": "Sign",
          "Clone": "Identity", "Dropout": "Identity"}


@handles(*_BINARY)
def _binary(E: Emitter, step: Step) -> list:
    a, b = step.inputs[:2]
    dt = _out_dtype(step)
    op = _BINARY[step.target.__name__]
    if op == "Pow" and not isinstance(b, Value):  # the exponent keeps its own dtype
        return [E.node(op, [operand(E, a, dt), E.const(np.asarray(b, dtype=dt))])]
    return [E.node(op, [operand(E, a, dt), operand(E, b, dt)])]


@handles(*_UNARY)
def _unary(E: Emitter, step: Step) -> list:
    return [E.node(_UNARY[step.target.__name__], [E.name(step.inputs[0])])]


@handles("Rsqrt")
def _rsqrt(E: Emitter, step: Step) -> list:
    return [E.node("Reciprocal", [E.node("Sqrt", [E.name(step.inputs[0])])])]


@handles("Log1p")
def _log1p(E: Emitter, step: Step) -> list:
    x = E.name(step.inputs[0])
    return [E.node("Log", [E.node("Add", [x, E.const(np.ones((), _out_dtype(step)))])])]


@handles("LeakyRelu")
def _leaky_relu(E: Emitter, step: Step) -> list:
    alpha = float(step.attrs.get("negative_slope", 0.01))
    return [E.node("LeakyRelu", [E.name(step.inputs[0])], alpha=alpha)]


@handles("Elu")
def _elu(E: Emitter, step: Step) -> list:
    return [E.node("Elu", [E.name(step.inputs[0])], alpha=float(step.attrs.get("alpha", 1.0)))]


@handles("Silu")
def _silu(E: Emitter, step: Step) -> list:
    x = E.name(step.inputs[0])
    return [E.node("Mul", [x, E.node("Sigmoid", [x])])]


@handles("Gelu")
def _gelu(E: Emitter, step: Step) -> list:
    """0.5·x·(1 + erf(x/√2)), or the tanh approximation (opset 17 has no Gelu node)."""
    x, dt = E.name(step.inputs[0]), _out_dtype(step)
    c = lambda v: E.const(np.asarray(v, dtype=dt))  # noqa: E731
    if step.attrs.get("approximate", "none") == "tanh":
        cube = E.node("Mul", [E.node("Mul", [x, x]), x])
        inner = E.node("Mul", [E.node("Add", [x, E.node("Mul", [cube, c(0.044715)])]),
                               c(math.sqrt(2.0 / math.pi))])
        gate = E.node("Add", [E.node("Tanh", [inner]), c(1.0)])
    else:
        gate = E.node("Add", [E.node("Erf", [E.node("Div", [x, c(math.sqrt(2.0))])]), c(1.0)])
    return [E.node("Mul", [E.node("Mul", [x, gate]), c(0.5)])]


@handles("Clamp")
def _clamp(E: Emitter, step: Step) -> list:
    dt = _out_dtype(step)
    lo, hi = step.attrs.get("min"), step.attrs.get("max")
    ins = [E.name(step.inputs[0]), "" if lo is None else E.const(np.asarray(lo, dt)),
           "" if hi is None else E.const(np.asarray(hi, dt))]
    while ins[-1] == "":
        ins.pop()
    return [E.node("Clip", ins)]


@handles("Where")
def _where(E: Emitter, step: Step) -> list:
    cond, a, b = step.inputs
    dt = _out_dtype(step)
    c = operand(E, cond, bool)
    if not isinstance(cond, Value) or cond.dtype != np.bool_:
        c = E.node("Cast", [c], to=_onnx_type(np.bool_))
    return [E.node("Where", [c, operand(E, a, dt), operand(E, b, dt)])]


def _onnx_type(dtype) -> int:
    from .emitter import elem_type
    return elem_type(dtype)


@handles("Cast")
def _cast(E: Emitter, step: Step) -> list:
    return [E.node("Cast", [E.name(step.inputs[0])], to=_onnx_type(_out_dtype(step)))]


# ----------------------------------------------------------------------------- linear algebra


@handles("MatMul")
def _matmul(E: Emitter, step: Step) -> list:
    dt = _out_dtype(step)
    return [E.node("MatMul", [operand(E, step.inputs[0], dt), operand(E, step.inputs[1], dt)])]


def emit_linear(E: Emitter, x: str, weight, bias, hint: str = "linear", rank: int = 2) -> str:
    """y = x @ Wᵀ + b: one Gemm (transB) for 2-D input, else MatMul with Wᵀ (+ Add)."""
    w = E.array(weight)
    if rank == 2:
        ins = [x, E.name(weight)] + ([] if bias is None else [E.name(bias)])
        return E.node("Gemm", ins, transB=1)
    wt = (E.const(np.ascontiguousarray(w.T), hint + ".weight_t") if w is not None
          else E.node("Transpose", [E.name(weight)], perm=[1, 0]))
    y = E.node("MatMul", [x, wt])
    return y if bias is None else E.node("Add", [y, E.name(bias)])


@handles("Linear")
def _linear(E: Emitter, step: Step) -> list:
    x, w, *rest = step.inputs
    return [emit_linear(E, E.name(x), w, rest[0] if rest else None, rank=len(x.shape))]


@handles("Embedding")
def _embedding(E: Emitter, step: Step) -> list:
    indices = np.asarray(step.attrs["indices"])  # checked identical across both traces
    return [E.node("Gather", [E.name(step.inputs[0]), E.const(indices, "indices")], axis=0)]


@handles("Attention")
def _attention(E: Emitter, step: Step) -> list:
    """softmax(q kᵀ · scale + mask) v; dropout is off in eval mode. A mask given as an
    array attribute is checked to be input-independent by the exporter."""
    q, k, v = step.inputs[:3]
    dt = _out_dtype(step)
    a = step.attrs
    if a.get("dropout_p", 0.0) and a.get("rng") is not None:
        raise UnsupportedOperatorError("attention with dropout in training mode cannot be "
                                       "exported")
    qs = E.node("Mul", [E.name(q), E.const(np.asarray(a.get("scale", 1.0), dt))])
    kt = E.node("Transpose", [E.name(k)], perm=_swap_last(len(k.shape)))
    scores = E.node("MatMul", [qs, kt])
    mask = a.get("mask")
    if mask is not None:
        scores = E.node("Add", [scores, _attr_operand(E, np.asarray(mask, dt)
                                                      if not isinstance(mask, Value) else mask,
                                                      "attn_mask")])
    return [E.node("MatMul", [E.node("Softmax", [scores], axis=-1), E.name(v)])]


def _swap_last(ndim: int) -> list:
    perm = list(range(ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return perm


# ----------------------------------------------------------------------------- movement


@handles("Reshape")
def _reshape(E: Emitter, step: Step) -> list:
    x = step.inputs[0]
    shape = E.shape_of(step.outputs[0], [x], allow_infer=True)
    return [E.node("Reshape", [E.name(x), shape])]


@handles("Expand")
def _expand(E: Emitter, step: Step) -> list:
    x = step.inputs[0]
    shape = E.shape_of(step.outputs[0], [x] + E.input_values)
    return [E.node("Expand", [E.name(x), shape])]


@handles("Permute")
def _permute(E: Emitter, step: Step) -> list:
    return [E.node("Transpose", [E.name(step.inputs[0])], perm=list(step.attrs["dims"]))]


@handles("Repeat")
def _repeat(E: Emitter, step: Step) -> list:
    x = step.inputs[0]
    reps = list(step.attrs["repeats"])
    name = E.name(x)
    extra = len(reps) - len(x.shape)
    if extra > 0:
        name = E.node("Unsqueeze", [name, E.ints(range(extra))])
    return [E.node("Tile", [name, E.ints(reps)])]


@handles("Cat")
def _cat(E: Emitter, step: Step) -> list:
    dt = _out_dtype(step)
    return [E.node("Concat", [operand(E, v, dt) for v in step.inputs],
                   axis=int(step.attrs.get("dim", 0)))]


@handles("Pad")
def _pad(E: Emitter, step: Step) -> list:
    widths = step.attrs["pad_width"]
    pads = [int(b) for b, _ in widths] + [int(a) for _, a in widths]
    value = E.const(np.asarray(step.attrs.get("value", 0.0), _out_dtype(step)))
    return [E.node("Pad", [E.name(step.inputs[0]), E.ints(pads), value], mode="constant")]


@handles("Flip")
def _flip(E: Emitter, step: Step) -> list:
    x = step.inputs[0]
    dims = step.attrs["dims"]
    dims = [dims] if isinstance(dims, int) else list(dims)
    big = np.iinfo(np.int64).max
    return [E.node("Slice", [E.name(x), E.ints([-1] * len(dims)), E.ints([-big] * len(dims)),
                             E.ints(dims), E.ints([-1] * len(dims))])]


@handles("Gather")
def _gather(E: Emitter, step: Step) -> list:
    a, index = step.inputs
    return [E.node("GatherElements", [E.name(a), operand(E, index, np.int64)],
                   axis=int(step.attrs.get("dim", 0)))]


@handles("GetItem")
def _getitem(E: Emitter, step: Step) -> list:
    """Basic indexing (ints, slices, None, Ellipsis) and one integer-array axis."""
    x = step.inputs[0]
    index = step.attrs["index"]
    items = list(index) if isinstance(index, tuple) else [index]
    if any(isinstance(i, np.ndarray) and i.dtype == bool for i in items):
        raise UnsupportedOperatorError("indexing with a boolean mask has no static-shape ONNX "
                                       "translation")
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(x.shape) - n_real)
    name = E.name(x)
    axis, gathers = 0, []
    starts, ends, axes, steps = [], [], [], []
    for it in items:
        if it is None:
            continue
        if isinstance(it, slice):
            if it != slice(None):
                s, e, st = it.start, it.stop, it.step or 1
                big = np.iinfo(np.int64).max
                starts.append(s if s is not None else (0 if st > 0 else -1))
                ends.append(e if e is not None else (big if st > 0 else -big))
                axes.append(axis)
                steps.append(st)
        else:
            gathers.append((axis, it))
        axis += 1
    if axes:
        name = E.node("Slice", [name, E.ints(starts), E.ints(ends), E.ints(axes),
                                E.ints(steps)])
    if sum(1 for _, it in gathers if np.ndim(it) > 0) > 1:
        raise UnsupportedOperatorError("indexing with more than one integer array")
    for ax, it in sorted(gathers, key=lambda g: -g[0]):  # last axis first: earlier stay put
        idx = E.const(np.asarray(it, dtype=np.int64), "index")
        name = E.node("Gather", [name, idx], axis=ax)
    out = step.outputs[0]
    shape = E.shape_of(out, [x], allow_infer=True)
    return [E.node("Reshape", [name, shape])]


# ----------------------------------------------------------------------------- reductions

_REDUCE = {"Mean": "ReduceMean", "Amax": "ReduceMax", "Amin": "ReduceMin", "Prod": "ReduceProd",
           "LogSumExp": "ReduceLogSumExp", "Norm2": "ReduceL2", "Sum": "ReduceSum"}


@handles(*_REDUCE)
def _reduce(E: Emitter, step: Step) -> list:
    op = _REDUCE[step.target.__name__]
    dim = step.attrs.get("dim")
    keep = int(bool(step.attrs.get("keepdim", False)))
    axes = None if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    x = E.name(step.inputs[0])
    if op == "ReduceSum":  # axes is an input from opset 13
        ins = [x] if axes is None else [x, E.ints(axes)]
        return [E.node(op, ins, keepdims=keep)]
    return [E.node(op, [x], keepdims=keep, axes=axes)]


@handles("Softmax", "LogSoftmax")
def _softmax(E: Emitter, step: Step) -> list:
    return [E.node(step.target.__name__, [E.name(step.inputs[0])],
                   axis=int(step.attrs.get("dim", -1)))]


# ----------------------------------------------------------------------------- conv and pool


def emit_conv(E: Emitter, x: str, weight, bias, stride, pads, dilation, groups: int) -> str:
    """Conv with per-dimension stride/dilation and (begin..., end...) pads."""
    ins = [x, E.name(weight)] + ([] if bias is None else [E.name(bias)])
    k = list(weight.shape[2:])
    return E.node("Conv", ins, kernel_shape=k, strides=list(stride), pads=list(pads),
                  dilations=list(dilation), group=int(groups))


@handles("Conv")
def _conv(E: Emitter, step: Step) -> list:
    x, w, *rest = step.inputs
    a = step.attrs
    st, dil = a.get("stride", (1, 1)), a.get("dilation", (1, 1))
    top, bottom, left, right = a.get("padding", (0, 0, 0, 0))
    if len(w.shape) == 3:  # 1-D conv runs with a unit height
        stride, pads, dilation = [st[1]], [left, right], [dil[1]]
    else:
        stride, pads, dilation = list(st), [top, left, bottom, right], list(dil)
    return [emit_conv(E, E.name(x), w, rest[0] if rest else None, stride, pads, dilation,
                      a.get("groups", 1))]


def _pool_common(step: Step) -> dict:
    a = step.attrs
    pad = list(a.get("padding", (0,) * len(a["kernel"])))
    return {"kernel_shape": list(a["kernel"]), "strides": list(a["stride"]),
            "pads": pad + pad, "ceil_mode": int(bool(a.get("ceil_mode", False)))}


@handles("MaxPool")
def _max_pool(E: Emitter, step: Step) -> list:
    out = E.node("MaxPool", [E.name(step.inputs[0])], dilations=list(step.attrs["dilation"]),
                 **_pool_common(step))
    return [E.node("Relu", [out]) if step.attrs.get("relu") else out]  # Sequential's fusion


@handles("AvgPool")
def _avg_pool(E: Emitter, step: Step) -> list:
    if step.attrs.get("divisor_override") is not None:
        raise UnsupportedOperatorError("avg_pool with divisor_override has no ONNX translation")
    return [E.node("AveragePool", [E.name(step.inputs[0])],
                   count_include_pad=int(bool(step.attrs.get("count_include_pad", True))),
                   **_pool_common(step))]


def _bin_matrix(n: int, o: int, dtype) -> np.ndarray:
    """(o, n) averaging matrix of adaptive pooling's bins [floor(i n/o), ceil((i+1) n/o))."""
    i = np.arange(o)
    start, end = (i * n) // o, -((-(i + 1) * n) // o)
    j = np.arange(n)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


@handles("AdaptiveAvgPool")
def _adaptive_avg(E: Emitter, step: Step) -> list:
    """Bins that do not tile the input: A_h @ x @ A_wᵀ with constant averaging matrices."""
    x = step.inputs[0]
    osz = tuple(step.attrs["output_size"])
    dt = _out_dtype(step)
    y = E.node("MatMul", [E.name(x), E.const(_bin_matrix(x.shape[-1], osz[-1], dt).T, "bins")])
    if len(osz) == 2:
        y = E.node("MatMul", [E.const(_bin_matrix(x.shape[-2], osz[0], dt), "bins"), y])
    return [y]


# ----------------------------------------------------------------------------- normalization


def emit_batch_norm(E: Emitter, x: str, weight, bias, mean, var, eps: float, channels: int,
                    dtype) -> str:
    scale = E.name(weight) if weight is not None else E.const(np.ones(channels, dtype))
    shift = E.name(bias) if bias is not None else E.const(np.zeros(channels, dtype))
    return E.node("BatchNormalization", [x, scale, shift, E.name(mean), E.name(var)],
                  epsilon=float(eps))


@handles("BatchNorm")
def _batch_norm(E: Emitter, step: Step) -> list:
    x, w, b = step.inputs[:3]
    a = step.attrs
    if a.get("training", True) or a.get("running_mean") is None:
        raise UnsupportedOperatorError("batch_norm with batch statistics (training mode or "
                                       "track_running_stats=False) cannot be exported")
    mean = _attr_operand(E, a["running_mean"], "running_mean")
    var = _attr_operand(E, a["running_var"], "running_var")
    scale = E.name(w) if w is not None else E.const(np.ones(x.shape[1], x.dtype))
    shift = E.name(b) if b is not None else E.const(np.zeros(x.shape[1], x.dtype))
    return [E.node("BatchNormalization", [E.name(x), scale, shift, mean, var],
                   epsilon=float(a.get("eps", 1e-5)))]


def emit_layer_norm(E: Emitter, x: str, weight, bias, normalized: tuple, eps: float,
                    dtype) -> str:
    scale = E.name(weight) if weight is not None else E.const(np.ones(normalized, dtype))
    ins = [x, scale] + ([] if bias is None else [E.name(bias)])
    return E.node("LayerNormalization", ins, axis=-len(normalized), epsilon=float(eps))


@handles("LayerNorm")
def _layer_norm(E: Emitter, step: Step) -> list:
    x, w, b = step.inputs[:3]
    k = int(step.attrs.get("k", 1))
    return [emit_layer_norm(E, E.name(x), w, b, tuple(x.shape[-k:]),
                            step.attrs.get("eps", 1e-5), x.dtype)]
