"""int8 arithmetic in NumPy: quantization parameters, and two ways to run an int8 GEMM.

Weights are int8, symmetric, one scale per output channel (zero point 0). Activations are
uint8, asymmetric, one scale and zero point per tensor: computed from each batch for dynamic
quantization (ONNX DynamicQuantizeLinear's formula, so onnxruntime reproduces it) or from
calibration for static quantization. Rounding is half to even (np.rint), as ONNX's
QuantizeLinear.

A quantized GEMM computes  y = s_x · s_w[o] · Σ_k (x_q − z_x)[k] · w_q[o, k]  (+ bias), by
one of two kernels with the same result:
* "int": the sum is accumulated exactly in integers. NumPy's integer matmul has no BLAS and
  is slow, so the integer operands go through a floating-point BLAS GEMM, which is exact as
  long as every partial sum fits the mantissa (float32 when K·255·127 < 2**24, float64 up
  to 2**53). `int_matmul(..., use_blas=False)` is NumPy's int32 matmul, kept for comparison.
* "dequant": the weight is dequantized to float32 a block of output rows at a time (a small
  temporary, never the whole float matrix) and multiplied with the dequantized activations.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["quantize_weight", "dynamic_qparams", "minmax_qparams", "quantize_activation",
           "int_matmul", "qgemm", "im2col", "KERNELS", "BLOCK_ELEMENTS"]

KERNELS = ("int", "dequant")
BLOCK_ELEMENTS = 1 << 18  # float32 elements of one dequantized weight block (1 MiB)
_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53


def quantize_weight(w: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8: (w_q int8, scale float32 per channel along `axis`)."""
    w = np.asarray(w, dtype=np.float32)
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    amax = np.abs(moved).max(axis=1) if moved.size else np.zeros(w.shape[axis], np.float32)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def dynamic_qparams(x: np.ndarray) -> tuple[np.float32, np.uint8]:
    """ONNX DynamicQuantizeLinear's uint8 scale and zero point for the range of x ∪ {0}."""
    lo = x.min() if x.size else 0.0
    hi = x.max() if x.size else 0.0
    return minmax_qparams(lo, hi)


def minmax_qparams(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
    """uint8 scale and zero point covering [min(lo, 0), max(hi, 0)], in float32 arithmetic
    as onnxruntime computes them."""
    lo = np.minimum(np.float32(0.0), np.float32(lo))
    hi = np.maximum(np.float32(0.0), np.float32(hi))
    scale = (hi - lo) / np.float32(255.0) if hi > lo else np.float32(1.0)
    zero = np.uint8(np.clip(np.rint(-lo / scale), 0, 255))
    return np.float32(scale), zero


def quantize_activation(x: np.ndarray, scale: np.float32, zero: np.uint8) -> np.ndarray:
    """uint8 codes of x (QuantizeLinear: x / scale, round half to even, + zero, saturate)."""
    t = np.divide(x, np.float32(scale), dtype=np.float32)
    np.rint(t, out=t)
    t += np.float32(zero)
    np.clip(t, 0, 255, out=t)
    return t.astype(np.uint8)


def int_matmul(a: np.ndarray, b: np.ndarray, a_max: int = 255, b_max: int = 127,
               use_blas: bool = True) -> np.ndarray:
    """Exact integer product a @ b of small integers (|a| <= a_max, |b| <= b_max), as int64
    values held in a float array (float32 or float64, whichever is exact) or, without BLAS,
    NumPy's int32 matmul."""
    k = a.shape[-1]
    if not use_blas:
        return a.astype(np.int32) @ b.astype(np.int32)
    bound = k * a_max * b_max
    dt = np.float32 if bound < _F32_EXACT else np.float64
    if bound >= _F64_EXACT:
        raise ValueError(f"int_matmul: inner size {k} is too large for exact accumulation")
    return a.astype(dt, copy=False) @ b.astype(dt, copy=False)


def qgemm(x_q: np.ndarray, x_scale: np.float32, x_zero: np.uint8, w_q: np.ndarray,
          w_scale: np.ndarray, bias: np.ndarray | None, kernel: str = "int") -> np.ndarray:
    """y (M, O) float32 = dequant(x_q (M, K) uint8) @ dequant(w_q (O, K) int8)ᵀ + bias."""
    if kernel == "int":
        k = x_q.shape[-1]
        dt = np.float32 if k * 255 * 127 < _F32_EXACT else np.float64
        xi = x_q.astype(dt)
        xi -= dt(x_zero)  # integers in [-255, 255]: exact
        y = int_matmul(xi, w_q.T.astype(dt))  # exact integer sums
        y = y.astype(np.float32, copy=False)
        y *= (np.float32(x_scale) * w_scale).astype(np.float32)
    elif kernel == "int32-numpy":
        xi = x_q.astype(np.int32) - np.int32(x_zero)
        y = int_matmul(xi, w_q.T, use_blas=False).astype(np.float32)
        y *= (np.float32(x_scale) * w_scale).astype(np.float32)
    elif kernel == "dequant":
        xf = x_q.astype(np.float32)
        xf -= np.float32(x_zero)
        xf *= np.float32(x_scale)
        y = np.empty((xf.shape[0], w_q.shape[0]), np.float32)
        rows = max(1, BLOCK_ELEMENTS // max(1, w_q.shape[1]))
        for o in range(0, w_q.shape[0], rows):
            block = w_q[o:o + rows].astype(np.float32)
            block *= w_scale[o:o + rows, None]
            np.matmul(xf, block.T, out=y[:, o:o + rows])
    else:
        raise ValueError(f"qgemm: kernel must be one of {KERNELS + ('int32-numpy',)}, "
                         f"got {kernel!r}")
    if bias is not None:
        y += bias
    return y


def im2col(x: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, pads: list,
           fill) -> tuple[np.ndarray, tuple]:
    """(N, C, *S) -> columns (N·prod(out), C·prod(kernel)) and the output spatial shape.

    `pads` is [(before, after)] per spatial axis, filled with `fill` (the zero point for
    uint8 codes, so that padding means 0.0)."""
    nd = len(kernel)
    width = [(0, 0), (0, 0)] + [tuple(p) for p in pads]
    xp = np.pad(x, width, constant_values=fill) if any(sum(p) for p in pads) else x
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    win = sliding_window_view(xp, span, axis=tuple(range(2, 2 + nd)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride) + tuple(
        slice(None, None, d) for d in dilation)
    win = win[sl]  # (N, C, *out, *kernel)
    out = win.shape[2:2 + nd]
    order = (0,) + tuple(range(2, 2 + nd)) + (1,) + tuple(range(2 + nd, 2 + 2 * nd))
    cols = win.transpose(order).reshape(x.shape[0] * int(np.prod(out)), -1)
    return cols, out
