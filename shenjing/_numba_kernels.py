"""The numba kernels behind `shenjing.compiled` (imported only through `kernels()`).

All take C-contiguous float32 arrays. Each LSTM kernel does one step's whole gate math in
one pass over the (H, N) block; the formulas are those of the NumPy path in ops/rnn.py,
which documents the layout (feature-major gates i, f, g, o, pre-scaled by -1 / -2).
"""

from __future__ import annotations

import llvmlite.ir
import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

f32 = np.float32
ZERO, ONE, TWO = f32(0.0), f32(1.0), f32(2.0)

# No 'reassoc': it would merge the two-constant ln 2 reduction and cost 30x the accuracy.
_FASTMATH = {"contract", "afn", "arcp", "nsz"}
_jit = numba.njit(nogil=True, cache=True, fastmath=_FASTMATH, error_model="numpy")


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (one LLVM bitcast, vectorizable)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvmlite.ir.FloatType())
    return types.float32(types.int32), codegen


@numba.njit(inline="always", fastmath=_FASTMATH)
def exp32(x):
    """exp(x) in float32: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-5 polynomial
    (our least-squares fit; relative error 1.7e-7), 2^n from exponent bits. x is clamped to
    [-87, 88], the normal range, so the result is never inf, 0 or denormal."""
    x = min(max(x, f32(-87.0)), f32(88.0))
    k = np.int32(x * f32(1.4426950408889634) + f32(126.5))  # round(x / ln2) + 126, >= 0
    n = f32(k) - f32(126.0)
    r = (x - n * f32(0.693145751953125)) - n * f32(1.428606765330187e-06)
    p = f32(0.00833385) * r + f32(0.04189862)
    p = p * r + f32(0.16666886)
    p = p * r + f32(0.49999142)
    p = ONE + r * (ONE + r * p)
    return p * _float32_from_bits(np.int32((k + np.int32(1)) << np.int32(23)))


@_jit
def lstm_forward_step(G, t, bias, cs, prev, cur, tcs, h):
    """Gate activations, c_t, tanh(c_t) and h_t of step t.

    G (T, 4H, N) holds -pre (-2 pre for the cell gate) of step t without bias and gets the
    activations i, f, g, o; bias (4H,) is the scaled bias (zeros when absent); cs (T+1, H, N)
    holds c_{t-1} at `prev` and gets c_t at `cur`; tcs (T, H, N) gets tanh(c_t); h (H, N) h_t.
    """
    H, N = h.shape
    for r in range(H):
        bi, bf, bg, bo = bias[r], bias[H + r], bias[2 * H + r], bias[3 * H + r]
        for n in range(N):
            i = ONE / (ONE + exp32(G[t, r, n] + bi))
            f = ONE / (ONE + exp32(G[t, H + r, n] + bf))
            g = TWO / (ONE + exp32(G[t, 2 * H + r, n] + bg)) - ONE
            o = ONE / (ONE + exp32(G[t, 3 * H + r, n] + bo))
            c = f * cs[prev, r, n] + i * g
            tc = TWO / (ONE + exp32(f32(-2.0) * c)) - ONE
            G[t, r, n] = i
            G[t, H + r, n] = f
            G[t, 2 * H + r, n] = g
            G[t, 3 * H + r, n] = o
            cs[cur, r, n] = c
            tcs[t, r, n] = tc
            h[r, n] = o * tc


@_jit
def lstm_backward_step(G, t, tcs, cs, prev, dh, dc, dG):
    """Pre-activation gradients of step t into dG[:, t] (dG is (4H, T, N)) from dh (H, N),
    the gradient reaching h_t, and dc (H, N), the one reaching c_t from later steps, which
    becomes the gradient reaching c_{t-1}."""
    H, N = dh.shape
    for r in range(H):
        for n in range(N):
            i, f = G[t, r, n], G[t, H + r, n]
            g, o = G[t, 2 * H + r, n], G[t, 3 * H + r, n]
            tc, d_h = tcs[t, r, n], dh[r, n]
            d_c = dc[r, n] + d_h * o * (ONE - tc * tc)
            dG[r, t, n] = d_c * g * i * (ONE - i)
            dG[H + r, t, n] = d_c * cs[prev, r, n] * f * (ONE - f)
            dG[2 * H + r, t, n] = d_c * i * (ONE - g * g)
            dG[3 * H + r, t, n] = d_h * tc * o * (ONE - o)
            dc[r, n] = d_c * f


NO_ROUTE = np.uint8(255)  # a window whose gradient goes nowhere (fused ReLU: max <= 0)
ROUTE_NONE = np.int32(255)


@_jit
def max_pool_forward(x, kh, kw, sh, sw, relu, out, code):
    """kh x kw max pooling with strides (sh, sw), no padding or dilation, of the (C, H, W, N)
    frame x into out (C, oh, ow, N), and into code the scan-order index of each window's
    first maximum (torch's tie rule); with `relu`, out = max(max, 0) and windows whose max
    is not positive get NO_ROUTE. A NaN maximum (NumPy's propagation) routes nowhere too,
    as in the NumPy kernel, whose routing compares values for equality."""
    C, oh, ow, N = out.shape
    win = np.empty(N, np.int32)  # int32 while scanning: a uint8 select does not vectorize
    for c in range(C):
        for i in range(oh):
            for j in range(ow):
                o, first = out[c, i, j], x[c, i * sh, j * sw]
                for n in range(N):
                    o[n] = first[n]
                    win[n] = 0
                for k in range(1, kh * kw):
                    src = x[c, i * sh + k // kw, j * sw + k % kw]
                    kk = np.int32(k)
                    for n in range(N):  # selects, not branches: the loop vectorizes
                        v, m = src[n], o[n]
                        better = (v > m) | ((v != v) & (m == m))
                        o[n] = v if better else m
                        win[n] = kk if better else win[n]
                for n in range(N):
                    m = o[n]
                    win[n] = win[n] if (m == m) & ((not relu) | (m > 0)) else ROUTE_NONE
                    o[n] = ZERO if relu & (m <= 0) else m
                cd = code[c, i, j]
                for n in range(N):
                    cd[n] = np.uint8(win[n])


@_jit
def max_pool_backward(g, code, kh, kw, sh, sw, dx):
    """Route g (C, oh, ow, N) to each window's recorded maximum in dx (C, H, W, N). Windows
    that tile (stride = kernel) write every element of dx once, zeros included; others
    (overlapping, or with gaps) add into dx after one zeroing pass."""
    C, oh, ow, N = g.shape
    H, W = dx.shape[1], dx.shape[2]
    tiles = sh == kh and sw == kw
    if not tiles:
        flat = dx.reshape(-1)
        for e in range(flat.size):
            flat[e] = ZERO
    for c in range(C):
        for i in range(oh):
            for j in range(ow):
                gs, cd = g[c, i, j], code[c, i, j]
                for k in range(kh * kw):
                    d = dx[c, i * sh + k // kw, j * sw + k % kw]
                    if tiles:
                        for n in range(N):
                            d[n] = gs[n] if cd[n] == k else ZERO
                    else:
                        for n in range(N):
                            d[n] += gs[n] if cd[n] == k else ZERO
            if tiles:
                for w in range(ow * kw, W):
                    dx[c, i * kh:(i + 1) * kh, w] = ZERO
        if tiles:
            for h in range(oh * kh, H):
                dx[c, h] = ZERO
