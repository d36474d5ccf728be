"""ONNX export of quantized layers in QDQ form: int8 initializers behind DequantizeLinear,
activations through (Dynamic)QuantizeLinear + DequantizeLinear, so onnxruntime computes the
same quantized function (and may fuse the pattern into its integer kernels)."""

from __future__ import annotations

import numpy as np

from ..onnx.emitter import Emitter
from ..onnx.layers import emit_rnn, gate_order, register_layer
from ..onnx.trace import Step
from .modules import (
    DynamicQuantizedGRU,
    DynamicQuantizedLinear,
    DynamicQuantizedLSTM,
    DynamicQuantizedRNN,
    QuantizedConv1d,
    QuantizedConv2d,
    QuantizedEmbedding,
)

__all__ = ["dequantized_weight"]


def dequantized_weight(E: Emitter, q: np.ndarray, scale: np.ndarray, hint: str) -> str:
    """DequantizeLinear(int8 weight, per-output-channel scale, zero point 0) along axis 0."""
    return E.node("DequantizeLinear", [E.const(q, hint + ".int8"), E.const(scale, hint + ".scale"),
                                       E.const(np.zeros(scale.shape, np.int8), "zero_int8")],
                  axis=0)


def _linear(E: Emitter, step: Step) -> list:
    m = step.target
    x = step.inputs[0]
    xq, xs, xz = E.node("DynamicQuantizeLinear", [E.name(x)], n_out=3)
    xf = E.node("DequantizeLinear", [xq, xs, xz])
    w = dequantized_weight(E, m.weight_int8.numpy(), m.weight_scale.numpy(), "linear")
    bias = [] if m.bias is None else [E.const(m.bias.numpy(), "linear.bias")]
    if len(x.shape) == 2:
        return [E.node("Gemm", [xf, w] + bias, transB=1)]
    y = E.node("MatMul", [xf, E.node("Transpose", [w], perm=[1, 0])])
    return [E.node("Add", [y] + bias) if bias else y]


def _conv(E: Emitter, step: Step) -> list:
    m = step.target
    x = step.inputs[0]
    s = E.const(np.float32(m.input_scale.numpy()), "input_scale")
    z = E.const(np.uint8(m.input_zero_point.numpy()), "input_zero_point")
    xf = E.node("DequantizeLinear", [E.node("QuantizeLinear", [E.name(x), s, z]), s, z])
    w = dequantized_weight(E, m.weight_int8.numpy(), m.weight_scale.numpy(), "conv")
    bias = [] if m.bias is None else [E.const(m.bias.numpy(), "conv.bias")]
    pads = [lo for lo, _ in m.pads] + [hi for _, hi in m.pads]
    return [E.node("Conv", [xf, w] + bias, kernel_shape=list(m.kernel_size),
                   strides=list(m.stride), pads=pads, dilations=list(m.dilation),
                   group=int(m.groups))]


def _embedding(E: Emitter, step: Step) -> list:
    m = step.target
    table = dequantized_weight(E, m.weight_int8.numpy(), m.weight_scale.numpy(), "embedding")
    return [E.node("Gather", [table, E.name(step.inputs[0])], axis=0)]


def _rnn(E: Emitter, step: Step) -> list:
    m = step.target
    f = m.float_module

    def weights(E: Emitter, _f, layer: int) -> tuple:
        order = gate_order(f.mode)
        parts: dict[str, list] = {"weight_ih": [], "weight_hh": [], "bias": []}
        for direction in range(2 if f.bidirectional else 1):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            for kind in ("weight_ih", "weight_hh"):
                q = getattr(m, kind + sfx + "_int8").numpy()
                s = getattr(m, kind + sfx + "_scale").numpy()
                blocks = np.split(np.arange(q.shape[0]), len(order))
                rows = np.concatenate([blocks[i] for i in order])
                w = dequantized_weight(E, q[rows], s[rows], "rnn." + kind)
                parts[kind].append(E.node("Unsqueeze", [w, E.ints([0])]))
            if f.bias:
                b = [m.dequantized(k + sfx) for k in ("bias_ih", "bias_hh")]
                b = [np.concatenate([np.split(v, len(order))[i] for i in order]) for v in b]
                parts["bias"].append(np.concatenate(b))
        stack = [p[0] if len(p) == 1 else E.node("Concat", p, axis=0)
                 for p in (parts["weight_ih"], parts["weight_hh"])]
        bias = E.const(np.stack(parts["bias"]), "rnn.B") if parts["bias"] else ""
        return stack[0], stack[1], bias
    return emit_rnn(E, step, f, weights)


register_layer(DynamicQuantizedLinear, _linear)
register_layer(QuantizedConv1d, _conv)
register_layer(QuantizedConv2d, _conv)
register_layer(QuantizedEmbedding, _embedding)
for _cls in (DynamicQuantizedLSTM, DynamicQuantizedGRU, DynamicQuantizedRNN):
    register_layer(_cls, _rnn)
