"""Post-training int8 quantization with PyTorch's names (`torch.ao.quantization`).

`quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=qint8)` stores int8 weights and
quantizes activations per batch; `prepare` / `convert` (or `quantize_static(model, batches)`)
calibrate Conv layers' input ranges for static int8 convolution. Quantized models run on a
real int8 path (kernels.py), save and load as safetensors + JSON with int8 tensors, and export
to ONNX as QDQ through `shenjing.onnx.export`.
"""

from . import qdq  # noqa: F401  (registers the ONNX translations of the quantized layers)
from .convert import (
                      QUANTIZED_TYPES,
                      convert,
                      load_quantized,
                      model_size_bytes,
                      prepare,
                      qint8,
                      quantize_dynamic,
                      quantize_static,
                      quint8,
                      save_quantized,
                      set_kernel,
)
from .kernels import KERNELS
from .modules import (
                      DynamicQuantizedGRU,
                      DynamicQuantizedLinear,
                      DynamicQuantizedLSTM,
                      DynamicQuantizedRNN,
                      Observer,
                      QuantizedConv1d,
                      QuantizedConv2d,
                      QuantizedEmbedding,
)

__all__ = ["quantize_dynamic", "prepare", "convert", "quantize_static", "save_quantized",
           "load_quantized", "model_size_bytes", "set_kernel", "qint8", "quint8", "KERNELS",
           "QUANTIZED_TYPES", "DynamicQuantizedLinear", "DynamicQuantizedLSTM",
           "DynamicQuantizedGRU", "DynamicQuantizedRNN", "QuantizedConv1d", "QuantizedConv2d",
           "QuantizedEmbedding", "Observer"]
