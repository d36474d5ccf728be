"""ONNX export: `shenjing.onnx.export(model, args, "model.onnx", ...)`, as `torch.onnx.export`.

Layers are translated by type where shenjing knows them (Linear, Conv, BatchNorm folded into
the conv, LayerNorm, Dropout removed, Embedding, RNN/LSTM/GRU as ONNX recurrent nodes) and
everything else op by op from a trace of `Function.apply`. Needs the optional `onnx` package
(`pip install 'shenjing[onnx]'`); `onnxruntime` runs the result.
"""

from .emitter import UnsupportedOperatorError
from .exporter import OPSET, export, model_bytes, to_model_proto

__all__ = ["export", "to_model_proto", "model_bytes", "UnsupportedOperatorError", "OPSET"]
