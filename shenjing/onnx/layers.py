"""ONNX translations of whole layers, chosen by exact type from their public attributes.

A layer listed here is recorded as one step (its internals are not traced), so its export
does not depend on how its forward is written. A subclass with its own forward is traced op
by op instead, which is why the lookup is by exact type. Recurrent layers become ONNX's own
LSTM / GRU / RNN nodes with the gates reordered (PyTorch i,f,g,o -> ONNX i,o,f,c for the
LSTM; r,z,n -> z,r,h for the GRU, which runs with linear_before_reset=1 as PyTorch does).
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .emitter import Emitter, Handler, UnsupportedOperatorError
from .ops import emit_batch_norm, emit_conv, emit_layer_norm, emit_linear
from .trace import Step, Value

__all__ = ["LAYER_HANDLERS", "layer_handler", "register_layer", "emit_rnn", "gate_order"]

LAYER_HANDLERS: dict[type, Handler] = {}


def _register(names: tuple, fn: Handler) -> None:
    for n in names:
        cls = getattr(nn, n, None)  # a layer another engineer has not added yet is skipped
        if isinstance(cls, type):
            LAYER_HANDLERS[cls] = fn


def layer_handler(module) -> Handler | None:
    return LAYER_HANDLERS.get(type(module))


def _linear(E: Emitter, step: Step) -> list:
    m = step.target
    x = step.inputs[0]
    return [emit_linear(E, E.name(x), E_param(E, m.weight), E_param(E, m.bias),
                        rank=len(x.shape))]


def E_param(E: Emitter, tensor) -> Value | None:  # noqa: N802  (reads like E.name)
    """A layer's parameter or buffer as a constant Value named after it in the model."""
    if tensor is None:
        return None
    return E.param(tensor)


def _conv(E: Emitter, step: Step) -> list:
    m = step.target
    x = step.inputs[0]
    if len(x.shape) != len(m.kernel_size) + 2:
        raise UnsupportedOperatorError(f"{type(m).__name__}: only batched input can be "
                                       f"exported, got shape {x.shape}")
    k, d = tuple(m.kernel_size), tuple(m.dilation)
    if isinstance(m.padding, str):
        totals = [0] * len(k) if m.padding == "valid" else [di * (ki - 1) for ki, di in zip(k, d)]
        pairs = [(t // 2, t - t // 2) for t in totals]
    else:
        pairs = [(p, p) for p in m.padding]
    name = E.name(x)
    if m.padding_mode != "zeros":
        modes = {"reflect": "reflect", "replicate": "edge"}
        if m.padding_mode not in modes:
            raise UnsupportedOperatorError(f"{type(m).__name__}: padding_mode="
                                           f"{m.padding_mode!r} has no opset-17 translation")
        pads = [0, 0] + [lo for lo, _ in pairs] + [0, 0] + [hi for _, hi in pairs]
        name = E.node("Pad", [name, E.ints(pads)], mode=modes[m.padding_mode])
        pairs = [(0, 0)] * len(k)
    pads = [lo for lo, _ in pairs] + [hi for _, hi in pairs]
    return [emit_conv(E, name, E_param(E, m.weight), E_param(E, m.bias), m.stride, pads, d,
                      m.groups)]


def _conv_transpose(E: Emitter, step: Step) -> list:
    m = step.target
    x = step.inputs[0]
    w, b = E_param(E, m.weight), E_param(E, getattr(m, "bias", None))
    pad = list(getattr(m, "padding", (0,) * (len(w.shape) - 2)))
    ins = [E.name(x), E.name(w)] + ([] if b is None else [E.name(b)])
    return [E.node("ConvTranspose", ins, kernel_shape=list(w.shape[2:]),
                   strides=list(m.stride), pads=pad + pad, dilations=list(m.dilation),
                   output_padding=list(getattr(m, "output_padding", (0,) * len(pad))),
                   group=int(m.groups))]


def _batch_norm(E: Emitter, step: Step) -> list:
    m = step.target
    x = step.inputs[0]
    if m.training or m.running_mean is None:
        raise UnsupportedOperatorError(f"{type(m).__name__} with batch statistics (training "
                                       f"mode or track_running_stats=False) cannot be exported")
    return [emit_batch_norm(E, E.name(x), E_param(E, m.weight), E_param(E, m.bias),
                            E_param(E, m.running_mean), E_param(E, m.running_var), m.eps,
                            m.num_features, x.dtype)]


def _layer_norm(E: Emitter, step: Step) -> list:
    m = step.target
    x = step.inputs[0]
    return [emit_layer_norm(E, E.name(x), E_param(E, m.weight), E_param(E, m.bias),
                            tuple(m.normalized_shape), m.eps, x.dtype)]


def _identity(E: Emitter, step: Step) -> list:
    return [E.node("Identity", [E.name(step.inputs[0])])]


def _embedding(E: Emitter, step: Step) -> list:
    m = step.target
    idx = step.inputs[0]
    if not isinstance(idx, Value):
        idx_name = E.const(np.asarray(idx, dtype=np.int64), "indices")
    else:
        idx_name = E.name(idx)
    if getattr(m, "max_norm", None) is not None:
        raise UnsupportedOperatorError("Embedding(max_norm=...) renormalizes its weights in "
                                       "forward and cannot be exported")
    return [E.node("Gather", [E.name(E_param(E, m.weight)), idx_name], axis=0)]


# ----------------------------------------------------------------------------- recurrent

_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN_TANH": [0], "RNN_RELU": [0]}


def gate_order(mode: str) -> list:
    """Where ONNX's gate blocks come from in PyTorch's stacking, for an RNN mode."""
    return _GATE_ORDER[mode]


def _gates(w: np.ndarray, order: list) -> np.ndarray:
    """Reorder the stacked gate blocks of a weight or bias from PyTorch's order to ONNX's."""
    blocks = np.split(w, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def float_rnn_weights(E: Emitter, m, layer: int) -> tuple[str, str, str]:
    """ONNX W, R and B (or "") of one layer of a float RNN/LSTM/GRU, gates reordered."""
    order = _GATE_ORDER[m.mode]
    ws, rs, bs = [], [], []
    for direction in range(2 if m.bidirectional else 1):
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        ws.append(_gates(getattr(m, "weight_ih" + sfx).numpy(), order))
        rs.append(_gates(getattr(m, "weight_hh" + sfx).numpy(), order))
        if m.bias:
            bs.append(np.concatenate([_gates(getattr(m, "bias_ih" + sfx).numpy(), order),
                                      _gates(getattr(m, "bias_hh" + sfx).numpy(), order)]))
    return (E.const(np.stack(ws), "rnn.W"), E.const(np.stack(rs), "rnn.R"),
            E.const(np.stack(bs), "rnn.B") if bs else "")


def emit_rnn(E: Emitter, step: Step, m, weights=float_rnn_weights) -> list:
    """A recurrent layer `m` (torch semantics) as one ONNX LSTM/GRU/RNN node per layer;
    `weights(E, m, layer)` gives that layer's W, R, B names (constants, or DequantizeLinear
    outputs for an int8 layer)."""
    x = step.inputs[0]
    if len(x.shape) != 3:
        raise UnsupportedOperatorError(f"{type(m).__name__}: only batched (3-D) input can be "
                                       f"exported, got shape {x.shape}")
    mode, H = m.mode, m.hidden_size
    D = 2 if m.bidirectional else 1
    lstm = mode == "LSTM"
    hx = step.inputs[1] if len(step.inputs) > 1 else step.attrs.get("hx")
    h0 = c0 = None
    if lstm and hx is not None:
        h0, c0 = hx
    elif hx is not None:
        h0 = hx
    seq = E.name(x)
    if m.batch_first:
        seq = E.node("Transpose", [seq], perm=[1, 0, 2])
    op = {"LSTM": "LSTM", "GRU": "GRU"}.get(mode, "RNN")
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    if op == "RNN":
        extra["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"] * D
    h_list, c_list = [], []
    for layer in range(m.num_layers):
        w, r, b = weights(E, m, layer)
        ins = [seq, w, r, b, ""]
        for state in (h0, c0) if lstm else (h0,):
            ins.append("" if state is None else E.node(
                "Slice", [E.name(state), E.ints([layer * D]), E.ints([(layer + 1) * D]),
                          E.ints([0])]))
        while ins[-1] == "":
            ins.pop()
        outs = E.node(op, ins, n_out=3 if lstm else 2, hidden_size=H,
                      direction="bidirectional" if D == 2 else "forward", **extra)
        y = E.node("Transpose", [outs[0]], perm=[0, 2, 1, 3])  # (T, D, N, H) -> (T, N, D, H)
        seq = E.node("Reshape", [y, E.ints([0, 0, -1])])
        h_list.append(outs[1])
        if lstm:
            c_list.append(outs[2])
    out = E.node("Transpose", [seq], perm=[1, 0, 2]) if m.batch_first else seq
    h_n = h_list[0] if len(h_list) == 1 else E.node("Concat", h_list, axis=0)
    if not lstm:
        return [out, h_n]
    c_n = c_list[0] if len(c_list) == 1 else E.node("Concat", c_list, axis=0)
    return [out, h_n, c_n]


def _rnn(E: Emitter, step: Step) -> list:
    return emit_rnn(E, step, step.target)


def register_layer(cls: type, handler: Handler) -> None:
    """Export layers of exactly this type with `handler(E, step) -> output names`."""
    LAYER_HANDLERS[cls] = handler


_register(("Linear",), _linear)
_register(("Conv1d", "Conv2d"), _conv)
_register(("ConvTranspose1d", "ConvTranspose2d"), _conv_transpose)
_register(("BatchNorm1d", "BatchNorm2d"), _batch_norm)
_register(("LayerNorm",), _layer_norm)
_register(("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Identity"), _identity)
_register(("Embedding",), _embedding)
_register(("RNN", "LSTM", "GRU"), _rnn)
