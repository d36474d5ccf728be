"""Quantized layers: int8 weights stored as buffers, inference only (no graph is built).

* `DynamicQuantizedLinear`: activations quantized per batch (uint8), int8 weights.
* `QuantizedConv1d` / `QuantizedConv2d`: static; the input's uint8 scale and zero point come
  from calibration (`prepare` / `convert`).
* `DynamicQuantizedLSTM` / `GRU` / `RNN`: int8 weights, dequantized on the fly per call into
  a float recurrent layer that is not registered (so only int8 is saved).
* `QuantizedEmbedding`: int8 rows with one scale per row (weight-only, as PyTorch's
  float_qparams embedding).
* `Observer`: records the running min/max of what a layer receives during calibration.

Each layer's `kernel` ("int" or "dequant", see kernels.py) picks how the int8 GEMM runs;
for convolutions "dequant" dequantizes the (small) int8 weight and the input codes and runs
shenjing's own float convolution, which is faster here than an im2col of uint8 codes.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor, from_numpy
from .kernels import (
    dynamic_qparams,
    im2col,
    minmax_qparams,
    qgemm,
    quantize_activation,
    quantize_weight,
)

__all__ = ["DynamicQuantizedLinear", "QuantizedConv1d", "QuantizedConv2d",
           "DynamicQuantizedLSTM", "DynamicQuantizedGRU", "DynamicQuantizedRNN",
           "QuantizedEmbedding", "Observer", "DEFAULT_KERNEL"]

DEFAULT_KERNEL = "dequant"  # the faster one on this machine (benchmarks/bench_quant.py)


def _buffer(arr: np.ndarray) -> Tensor:
    return from_numpy(np.ascontiguousarray(arr))


def _array(x) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


class _QuantizedBase(nn.Module):
    """Shared: the kernel choice and the int8 weight with its per-channel scale."""

    kernel: str

    def _set_weight(self, w: np.ndarray, axis: int = 0) -> None:
        q, s = quantize_weight(w, axis)
        self.register_buffer("weight_int8", _buffer(q))
        self.register_buffer("weight_scale", _buffer(s))

    def dequantized_weight(self) -> np.ndarray:
        """The float32 weight the int8 one stands for (for checks and export)."""
        q, s = self.weight_int8.numpy(), self.weight_scale.numpy()
        return q.astype(np.float32) * s.reshape((-1,) + (1,) * (q.ndim - 1))

    def config(self) -> dict:
        """What `load_quantized` needs to rebuild this layer before loading its buffers."""
        raise NotImplementedError


class DynamicQuantizedLinear(_QuantizedBase):
    """nn.Linear with int8 weights; each batch's activations are quantized to uint8."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 kernel: str = DEFAULT_KERNEL) -> None:
        super().__init__()
        self.in_features, self.out_features, self.kernel = in_features, out_features, kernel
        self._set_weight(np.zeros((out_features, in_features), np.float32))
        self.register_buffer("bias", _buffer(np.zeros(out_features, np.float32)) if bias
                             else None)

    @classmethod
    def from_float(cls, m: nn.Linear, kernel: str = DEFAULT_KERNEL) -> "DynamicQuantizedLinear":
        q = cls(m.weight.shape[1], m.weight.shape[0], m.bias is not None, kernel)
        q._set_weight(m.weight.numpy())
        if m.bias is not None:
            q.bias = _buffer(m.bias.numpy().astype(np.float32))
        return q

    def forward(self, x) -> Tensor:
        a = _array(x).astype(np.float32, copy=False)
        if a.shape[-1] != self.in_features:
            raise ValueError(f"DynamicQuantizedLinear(in_features={self.in_features}): got "
                             f"input of shape {tuple(a.shape)}")
        a2 = a.reshape(-1, self.in_features)
        scale, zero = dynamic_qparams(a2)
        y = qgemm(quantize_activation(a2, scale, zero), scale, zero, self.weight_int8.numpy(),
                  self.weight_scale.numpy(), None if self.bias is None else self.bias.numpy(),
                  self.kernel)
        return from_numpy(y.reshape(a.shape[:-1] + (self.out_features,)))

    def config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype=qint8, kernel={self.kernel}")


class Observer(nn.Module):
    """Wraps a float layer during calibration: records the min/max of its input."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.min_val, self.max_val = np.inf, -np.inf

    def forward(self, x, *args, **kwargs):
        a = _array(x)
        if a.size:
            self.min_val = min(self.min_val, float(a.min()))
            self.max_val = max(self.max_val, float(a.max()))
        return self.module(x, *args, **kwargs)

    def input_qparams(self) -> tuple:
        if not np.isfinite(self.min_val):
            raise ValueError(f"convert: {type(self.module).__name__} saw no calibration data; "
                             f"run the prepared model on some batches first")
        return minmax_qparams(self.min_val, self.max_val)


def _conv_pads(m: nn.Module) -> list:
    k, d = tuple(m.kernel_size), tuple(m.dilation)
    if isinstance(m.padding, str):
        totals = [0] * len(k) if m.padding == "valid" else [di * (ki - 1)
                                                             for ki, di in zip(k, d)]
        return [(t // 2, t - t // 2) for t in totals]
    return [(int(p), int(p)) for p in m.padding]


class _QuantizedConvNd(_QuantizedBase):
    """Static int8 convolution: uint8 input codes (calibrated), int8 per-channel weights."""

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple, stride: tuple,
                 pads: list, dilation: tuple, groups: int = 1, bias: bool = True,
                 kernel: str = DEFAULT_KERNEL) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.pads, self.dilation, self.groups = [tuple(p) for p in pads], tuple(dilation), groups
        self.kernel = kernel
        self._set_weight(np.zeros((out_channels, in_channels // groups) + self.kernel_size,
                                  np.float32))
        self.register_buffer("bias", _buffer(np.zeros(out_channels, np.float32)) if bias
                             else None)
        self.register_buffer("input_scale", _buffer(np.ones((), np.float32)))
        self.register_buffer("input_zero_point", _buffer(np.zeros((), np.uint8)))

    @classmethod
    def from_observed(cls, obs: Observer, kernel: str = DEFAULT_KERNEL) -> "_QuantizedConvNd":
        m = obs.module
        if getattr(m, "padding_mode", "zeros") != "zeros":
            raise ValueError(f"convert: {type(m).__name__}(padding_mode={m.padding_mode!r}) "
                             f"cannot be quantized; only zero padding is supported")
        q = cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, _conv_pads(m),
                m.dilation, m.groups, m.bias is not None, kernel)
        q._set_weight(m.weight.numpy())
        if m.bias is not None:
            q.bias = _buffer(m.bias.numpy().astype(np.float32))
        scale, zero = obs.input_qparams()
        q.input_scale, q.input_zero_point = _buffer(np.float32(scale)), _buffer(np.uint8(zero))
        return q

    def forward(self, x) -> Tensor:
        a = _array(x).astype(np.float32, copy=False)
        if a.ndim != self._nd + 2 or a.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}(in_channels={self.in_channels}): expected "
                             f"a batched input (N, {self.in_channels}, ...), got "
                             f"{tuple(a.shape)}")
        scale, zero = self.input_scale.numpy()[()], self.input_zero_point.numpy()[()]
        xq = quantize_activation(a, scale, zero)
        if self.kernel == "dequant":
            return self._dequant_conv(xq, scale, zero)
        G, out_ch = self.groups, self.out_channels
        wq, ws = self.weight_int8.numpy(), self.weight_scale.numpy()
        bias = None if self.bias is None else self.bias.numpy()
        outs, spatial = [], None
        cg, og = self.in_channels // G, out_ch // G
        for g in range(G):
            cols, spatial = im2col(xq[:, g * cg:(g + 1) * cg], self.kernel_size, self.stride,
                                   self.dilation, self.pads, zero)
            outs.append(qgemm(cols, scale, zero, wq[g * og:(g + 1) * og].reshape(og, -1),
                              ws[g * og:(g + 1) * og],
                              None if bias is None else bias[g * og:(g + 1) * og],
                              self.kernel))
        y = outs[0] if G == 1 else np.concatenate(outs, axis=1)
        y = y.reshape((a.shape[0],) + tuple(spatial) + (out_ch,))
        return from_numpy(np.ascontiguousarray(np.moveaxis(y, -1, 1)))

    def _dequant_conv(self, xq: np.ndarray, scale, zero) -> Tensor:
        """Dequantize the codes and the int8 weight (small) and run shenjing's float conv."""
        if any(lo or hi for lo, hi in self.pads):  # pad with the zero point's code: 0.0
            xq = np.pad(xq, [(0, 0), (0, 0)] + list(self.pads), constant_values=zero)
        xf = xq.astype(np.float32)
        xf -= np.float32(zero)
        xf *= np.float32(scale)
        conv = F.conv1d if self._nd == 1 else F.conv2d
        bias = None if self.bias is None else self.bias
        with no_grad():
            return conv(from_numpy(xf), from_numpy(self.dequantized_weight()), bias,
                        stride=self.stride, dilation=self.dilation, groups=self.groups)

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "pads": [list(p) for p in self.pads], "dilation": list(self.dilation),
                "groups": self.groups, "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, dtype=quint8/qint8, kernel={self.kernel}")


class QuantizedConv1d(_QuantizedConvNd):
    _nd = 1


class QuantizedConv2d(_QuantizedConvNd):
    _nd = 2


class _DynamicQuantizedRNNBase(nn.Module):
    """int8 weights of a recurrent layer, dequantized on the fly into an unregistered
    float copy of the layer each call (only the int8 buffers are state)."""

    float_type: type = nn.LSTM
    kernel = "dequant"

    def __init__(self, float_module: nn.Module) -> None:
        super().__init__()
        self._names = [n for n, _ in float_module.named_parameters()]
        for name, p in float_module.named_parameters():
            if name.startswith("weight"):
                q, s = quantize_weight(p.numpy(), 0)
                self.register_buffer(name + "_int8", _buffer(q))
                self.register_buffer(name + "_scale", _buffer(s))
            else:
                self.register_buffer(name, _buffer(p.numpy().astype(np.float32)))
        shell = copy.deepcopy(float_module)
        object.__setattr__(self, "_float", shell)  # not a submodule: never saved

    @classmethod
    def from_float(cls, m: nn.Module, kernel: str = "dequant") -> "_DynamicQuantizedRNNBase":
        return cls(m)

    @property
    def float_module(self) -> nn.Module:
        return self._float

    def dequantized(self, name: str) -> np.ndarray:
        if name.startswith("weight"):
            q = getattr(self, name + "_int8").numpy()
            return q.astype(np.float32) * getattr(self, name + "_scale").numpy()[:, None]
        return getattr(self, name).numpy()

    def forward(self, x, hx=None):
        with no_grad():
            for name, p in self._float.named_parameters():
                p.copy_(from_numpy(self.dequantized(name)))
            self._float.eval()
            return self._float(x, hx)

    def config(self) -> dict:
        f = self._float
        cfg = {"input_size": f.input_size, "hidden_size": f.hidden_size,
               "num_layers": f.num_layers, "bias": f.bias, "batch_first": f.batch_first,
               "bidirectional": f.bidirectional}
        if isinstance(f, nn.RNN):
            cfg["nonlinearity"] = f.nonlinearity
        return cfg

    def extra_repr(self) -> str:
        return f"{type(self._float).__name__}({self._float.extra_repr()}), dtype=qint8"


class DynamicQuantizedLSTM(_DynamicQuantizedRNNBase):
    float_type = nn.LSTM


class DynamicQuantizedGRU(_DynamicQuantizedRNNBase):
    float_type = nn.GRU


class DynamicQuantizedRNN(_DynamicQuantizedRNNBase):
    float_type = nn.RNN


class QuantizedEmbedding(_QuantizedBase):
    """nn.Embedding with int8 rows and one float32 scale per row (weight-only)."""

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.kernel = "dequant"
        self._set_weight(np.zeros((num_embeddings, embedding_dim), np.float32))

    @classmethod
    def from_float(cls, m: nn.Embedding, kernel: str = "dequant") -> "QuantizedEmbedding":
        n, d = m.weight.shape
        q = cls(n, d, getattr(m, "padding_idx", None))
        q._set_weight(m.weight.numpy())
        return q

    def forward(self, indices) -> Tensor:
        idx = _array(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"QuantizedEmbedding: expected integer indices, got {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise ValueError(f"QuantizedEmbedding: indices must lie in [0, "
                             f"{self.num_embeddings}), got range [{idx.min()}, {idx.max()}]")
        rows = np.take(self.weight_int8.numpy(), idx, axis=0).astype(np.float32)
        return from_numpy(rows * np.take(self.weight_scale.numpy(), idx)[..., None])

    def config(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "padding_idx": self.padding_idx}
