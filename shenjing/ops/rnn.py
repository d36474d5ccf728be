"""Fused recurrent layers: one Function runs one layer in one direction over a whole sequence.

Why fused: a recurrence built from per-step autograd nodes pays Python overhead for every
gate of every step, twice. Here `forward` is a Python loop over time doing NumPy on arrays
(saving the gate activations) and `backward` is the whole backpropagation through time.

Contract shared by `LSTMSequence`, `GRUSequence`, `RNNTanhSequence` and `RNNReluSequence`,
all called as `Op.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False, batch_first=False)`:

* `x` is (T, N, I), or (N, T, I) with `batch_first`; `h0`, `c0` are (N, H) or None (zeros;
  `c0` is only used by the LSTM); weights and biases have torch's shapes and gate order
  (LSTM i, f, g, o; GRU r, z, n); biases may be None.
* The one output array is 2-D, (T*N + E*N, H): first the T*N hidden states h_t as rows in
  the caller's layout ((t, n) order, or (n, t) with `batch_first`), so rows [0, T*N) reshape
  for free to (T, N, H) or (N, T, H); then, for the LSTM only (E = 1, else E = 0), N rows
  holding the final cell state c_n. h_n is h_{T-1} (h_0 when `reverse`). Since a Function
  has one output, the LSTM's c_n rides in it and gets its gradient through `TakeRows`, the
  slicing op the layers use to cut the output into the sequence, h_n and c_n.

Speed (PERF-NOTES lesson 9: GEMM time and float32 exp/tanh bound this):

* Inside, every per-step array is feature-major, (gates*H, N): a step is one GEMM
  W @ [h_{t-1}; x_t] whose output has each gate as a contiguous (H, N) block. NumPy runs
  elementwise ops on such blocks about 4x faster than on the strided (N, H) column slices
  of a row-major (N, 4H) gate array, and the backward has about twenty of them per step.
* `Z` (H + I, T, N) holds [h_{t-1}; x_t] for every step t (x transposed once up front), so
  the LSTM's and RNN's per-step GEMM covers the input projection too, and after the time
  loop dW_hh and dW_ih come out of one GEMM of the pre-activation gradients (gates*H, T*N)
  with Z; dx and the biases' gradient are one GEMM / GEMV each.
* Gate rows of the weights are pre-multiplied by -1 (sigmoid gates) or -2 (tanh gates),
  exact since both are powers of two, so a single exp + add + division over the whole gate
  block yields every activation: sigmoid(a) = 1/(1+exp(-a)), tanh(a) = 2/(1+exp(-2a)) - 1.
  Overflow of exp for very negative arguments gives inf and the exact limits 0 and -1.
* Big arrays come from `_POOL`, which recycles their memory once nothing references them
  (PERF-NOTES: a page fault costs microseconds on these VMs; fresh 16 MB gate arrays every
  step cost the W4 step about 20% before pooling).
"""

from __future__ import annotations

import math
import weakref
from functools import partial

from .. import compiled
from ..autograd import Function
from ..backend import xp

__all__ = ["LSTMSequence", "GRUSequence", "RNNTanhSequence", "RNNReluSequence", "TakeRows"]


# ----------------------------------------------------------------------------- buffer pool


class _Lease:
    """The owner numpy sees for a pooled array (through `__array_interface__`).

    Every array and view made from a lease keeps it alive, so it dies only when the last
    of them does; its finalizer then returns the memory to the pool. Memory is therefore
    never reused while anything can still read or write it.
    """

    __slots__ = ("__array_interface__", "__weakref__")


class _BufferPool:
    """Recycles large uninitialized arrays by byte size (a drop-in for `xp.empty`)."""

    def __init__(self, min_bytes: int = 1 << 18, max_bytes: int = 1 << 26,
                 per_size: int = 8, total: int = 1 << 28) -> None:
        self.min_bytes, self.max_bytes, self.per_size, self.total = (min_bytes, max_bytes,
                                                                     per_size, total)
        self.free: dict[int, list] = {}
        self.held = 0

    def empty(self, shape: tuple, dtype) -> xp.ndarray:
        dtype = xp.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if not self.min_bytes <= nbytes <= self.max_bytes:
            return xp.empty(shape, dtype)
        stack = self.free.get(nbytes)
        if stack:
            buf = stack.pop()
            self.held -= nbytes
        else:
            buf = xp.empty(nbytes, xp.uint8)
        lease = _Lease()
        lease.__array_interface__ = {"shape": tuple(shape), "typestr": dtype.str,
                                     "data": (buf.ctypes.data, False), "version": 3}
        fin = weakref.finalize(lease, self._give_back, buf)
        fin.atexit = False
        return xp.asarray(lease)

    def empty_like(self, a: xp.ndarray) -> xp.ndarray:
        return self.empty(a.shape, a.dtype)

    def _give_back(self, buf: xp.ndarray) -> None:
        stack = self.free.setdefault(buf.nbytes, [])
        if len(stack) < self.per_size and self.held + buf.nbytes <= self.total:
            stack.append(buf)
            self.held += buf.nbytes


_POOL = _BufferPool()


# ----------------------------------------------------------------------------- helpers


def _scales(blocks: tuple, H: int, dtype) -> xp.ndarray:
    """A (len(blocks) * H, 1) column of per-gate multipliers folded into the weights."""
    return xp.repeat(xp.asarray(blocks, dtype=dtype), H)[:, None]


def _scaled(w: xp.ndarray, scale, dt, out: xp.ndarray | None = None) -> xp.ndarray:
    """w * scale (row-wise) into `out` or a pooled array. Written through the transposes:
    when `out` is a transposed view (`_weights_cat`), NumPy then walks it in memory order,
    5.6x faster (1024x256: 0.59 vs 3.35 ms)."""
    out = _POOL.empty(w.shape, dt) if out is None else out
    if scale is None:
        xp.copyto(out.T, w.T)
    else:
        xp.multiply(w.T, scale.T, out=out.T)
    return out


def _weights_cat(w_hh: xp.ndarray, w_ih: xp.ndarray, scale, dt) -> xp.ndarray:
    """[w_hh | w_ih] * scale, (G*H, H + I): one GEMM with Z[:, t] = [h; x_t] per step.

    Returned as the transposed view of a contiguous (H + I, G*H) array: OpenBLAS runs the
    per-step GEMM ~9 % faster in that form (1024x320 @ 320x64, 2 cores)."""
    H = w_hh.shape[1]
    wct = _POOL.empty((H + w_ih.shape[1], w_hh.shape[0]), dt)
    _scaled(w_hh, scale, dt, wct[:H].T)
    _scaled(w_ih, scale, dt, wct[H:].T)
    return wct.T


def _bias_block(b, scale, N: int, dt) -> xp.ndarray | None:
    """The (scaled) bias broadcast to (G*H, N) once, so each step adds it contiguously."""
    if b is None:
        return None
    blk = _POOL.empty((b.shape[0], N), dt)
    blk[...] = (b[:, None] * scale) if scale is not None else b[:, None]
    return blk


def _prologue(ctx, x, h0, H: int, reverse: bool, batch_first: bool, dt):
    """Shared start of every forward: Z, the 2-D output and a time-major view of its rows.

    Z (H + I, T, N) gets x_t transposed in rows H: and h0 transposed in the h rows of the
    first step processed; each step writes its h into the h rows of the next one.
    """
    T, N, n_in = (x.shape[1], x.shape[0], x.shape[2]) if batch_first else x.shape
    Z = _POOL.empty((H + n_in, T, N), dt)
    xp.copyto(Z[H:], x.transpose(2, 1, 0) if batch_first else x.transpose(2, 0, 1))
    Z[:H, T - 1 if reverse else 0] = 0.0 if h0 is None else h0.T
    out = _POOL.empty(((T + ctx.extra_rows) * N, H), dt)
    ctx.meta = (T, N, H, reverse, batch_first)
    return Z, out, _seq_view(out, T, N, batch_first)


def _seq_view(rows: xp.ndarray, T: int, N: int, batch_first: bool) -> xp.ndarray:
    """Time-major (T, N, H) view of the hidden-state rows of an output (or its gradient)."""
    H = rows.shape[1]
    if batch_first:
        return rows[:N * T].reshape(N, T, H).swapaxes(0, 1)
    return rows[:T * N].reshape(T, N, H)


def _steps(T: int, reverse: bool) -> list:
    """(t, slot) in processing order: slot is the Z column block that receives h_t (-1: none)."""
    if reverse:
        return [(t, t - 1) for t in range(T - 1, -1, -1)]
    return [(t, t + 1 if t + 1 < T else -1) for t in range(T)]


def _grad_rows(ctx, grad: xp.ndarray) -> xp.ndarray:
    """Time-major (T, N, H) hidden-state rows of the output gradient. Batch-first rows are
    first gathered into one array so each step's transposed read stays local (3x faster)."""
    T, N, H, _, batch_first = ctx.meta
    g = _seq_view(grad, T, N, batch_first)
    if batch_first:
        rows = _POOL.empty((T, N, H), grad.dtype)
        xp.copyto(rows, g)
        g = rows
    return g


def _tanh_by_exp(a: xp.ndarray, out: xp.ndarray) -> None:
    """out = tanh(a) as 2 / (1 + exp(-2a)) - 1: float32 exp costs half of tanh (1.3 vs 2.6
    ns per element, PERF-NOTES lesson 9); the absolute error stays below 2e-7 in float32."""
    xp.multiply(a, -2.0, out=out)
    xp.exp(out, out=out)
    out += 1.0
    xp.divide(2.0, out, out=out)
    out -= 1.0


def _closing_grads(ctx, dgi, dgh, Z, w_ih, dh0, dc0=None) -> tuple:
    """dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh from the pre-activation gradients of all steps.

    `dgi` / `dgh` (G*H, T, N) are the gradients of the input-side and hidden-side
    pre-activations (the same array except in the GRU). With one array, [dW_hh | dW_ih] is
    a single GEMM with Z; dx is one GEMM and each bias gradient one GEMV.
    """
    T, N, H, _, batch_first = ctx.meta
    need = ctx.needs_input_grad
    GH, n_in = dgi.shape[0], Z.shape[0] - H
    gi2 = dgi.reshape(GH, T * N)
    gh2 = dgh.reshape(GH, T * N)
    Z2 = Z.reshape(H + n_in, T * N)
    dt = gi2.dtype
    dx = dw_ih = dw_hh = db_ih = db_hh = None
    if need[0]:
        dx = xp.matmul(gi2.T, w_ih, out=_POOL.empty((T * N, n_in), dt)).reshape(T, N, n_in)
        dx = dx.swapaxes(0, 1) if batch_first else dx
    if dgi is dgh and need[3] and need[4]:
        dwc = xp.matmul(gi2, Z2.T, out=_POOL.empty((GH, H + n_in), dt))
        dw_hh, dw_ih = dwc[:, :H], dwc[:, H:]
    else:
        dw_ih = gi2 @ Z2[H:].T if need[3] else None
        dw_hh = gh2 @ Z2[:H].T if need[4] else None
    if need[5] or need[6]:
        ones = xp.ones(T * N, dtype=dt)  # a GEMV beats .sum (PERF-NOTES lesson 8)
        db_ih = gi2 @ ones if need[5] else None
        db_hh = (db_ih if dgh is dgi and db_ih is not None else gh2 @ ones) if need[6] else None
    return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh


def _transposed(w: xp.ndarray) -> xp.ndarray:
    """w.T as its own C-contiguous array: the per-step backward GEMM w.T @ d runs ~25 %
    faster on it than on the transposed view (OpenBLAS, 256x1024 @ 1024x64: 49 vs 39
    GFLOP/s measured on 2 cores)."""
    out = _POOL.empty(w.shape[::-1], w.dtype)
    xp.copyto(out, w.T)
    return out


def _bias_sum(b_ih, b_hh):
    """b_ih + b_hh (either may be None)."""
    if b_ih is None or b_hh is None:
        return b_hh if b_ih is None else b_ih
    return b_ih + b_hh


def _compiled_for(dt) -> bool:
    """Take the compiled (C) step kernels: enabled and float32 (shenjing/compiled.py)."""
    return dt == xp.float32 and compiled.enabled()


def _lstm_gates(G, t, bias, cs, prev, cur, tcs, h, tmp) -> None:
    """NumPy twin of `lstm_forward_step` (shenjing/_ckernels.c): activations of step t in
    place in G[t], c_t into cs[cur] (from cs[prev]), tanh(c_t) into tcs[t], h_t into h."""
    g = G[t]
    H = h.shape[0]
    if bias is not None:
        g += bias
    xp.exp(g, out=g)
    g += 1.0
    xp.divide(1.0, g, out=g)  # (faster than xp.reciprocal)
    i, f, gg, o = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
    gg *= 2.0
    gg -= 1.0
    c = cs[cur]
    xp.multiply(f, cs[prev], out=c)
    xp.multiply(i, gg, out=tmp)
    c += tmp
    _tanh_by_exp(c, tcs[t])
    xp.multiply(o, tcs[t], out=h)


def _lstm_step_grads(G, t, tcs, cs, prev, dh, dc, dG, scratch) -> None:
    """NumPy twin of `lstm_backward_step` (shenjing/_ckernels.c): pre-activation gradients
    of step t into dG[:, t] from dh and dc (which becomes the gradient reaching c_{t-1})."""
    g, tc = G[t], tcs[t]
    H = dh.shape[0]
    i, f, gg, o = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
    d = dG[:, t]
    di, df, dgg, do = d[:H], d[H:2 * H], d[2 * H:3 * H], d[3 * H:]
    a, b = scratch
    xp.multiply(dh, o, out=b)          # b = dh * o
    xp.multiply(b, tc, out=a)          # a = dh * o * tanh(c)
    xp.subtract(1.0, o, out=do)
    do *= a                            # d pre_o = dh * tanh(c) * o (1 - o)
    a *= tc
    b -= a                             # b = dh * o * (1 - tanh(c)^2)
    dc += b
    xp.multiply(dc, i, out=a)          # a = dc * i
    xp.subtract(1.0, i, out=di)
    di *= a
    di *= gg                           # d pre_i = dc * g * i (1 - i)
    xp.multiply(gg, gg, out=dgg)
    xp.subtract(1.0, dgg, out=dgg)
    dgg *= a                           # d pre_g = dc * i * (1 - g^2)
    xp.subtract(1.0, f, out=df)
    df *= f
    df *= cs[prev]
    df *= dc                           # d pre_f = dc * c_prev * f (1 - f)
    dc *= f                            # gradient to c_prev


# ----------------------------------------------------------------------------- LSTM


class LSTMSequence(Function):
    """One LSTM layer-direction over a sequence; output rows: h_t for every step, then c_n."""

    op_name = "lstm"
    extra_rows = 1

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False, batch_first=False):
        H = w_hh.shape[1]
        dt = xp.result_type(x, w_ih, w_hh)
        scale = _scales((-1.0, -1.0, -2.0, -1.0), H, dt)
        Z, out, outt = _prologue(ctx, x, h0, H, reverse, batch_first, dt)
        T, N = Z.shape[1:]
        wc = _weights_cat(w_hh, w_ih, scale, dt)
        G = _POOL.empty((T, 4 * H, N), dt)  # gate activations i, f, g, o of every step
        cs = _POOL.empty((T + 1, H, N), dt)  # c_t at cs[t + po], c0 at the other end
        po = 0 if reverse else 1
        cs[T * (1 - po)] = 0.0 if c0 is None else c0.T
        tcs = _POOL.empty((T, H, N), dt)  # tanh(c_t)
        h = xp.empty((H, N), dt)
        if _compiled_for(dt):  # the kernel also writes h_t into Z and the output rows
            b = _bias_sum(b_ih, b_hh)
            bvec = xp.zeros(4 * H, dt) if b is None else xp.ascontiguousarray(b * scale[:, 0], dt)
            step = compiled.kernels().lstm_forward(G, bvec, cs, tcs, Z[:H], h, outt)
            for t, slot in _steps(T, reverse):
                xp.matmul(wc, Z[:, t], out=G[t])  # -pre (and -2 pre for the cell gate)
                step(t, t + 1 - po, t + po, slot)
        else:
            gates = partial(_lstm_gates, bias=_bias_block(_bias_sum(b_ih, b_hh), scale, N, dt),
                            cs=cs, tcs=tcs, h=h, tmp=xp.empty((H, N), dt))
            with xp.errstate(over="ignore"):
                for t, slot in _steps(T, reverse):
                    xp.matmul(wc, Z[:, t], out=G[t])
                    gates(G, t, prev=t + 1 - po, cur=t + po)
                    if slot >= 0:
                        Z[:H, slot] = h
                    outt[t] = h.T
        out[T * N:] = cs[T * po].T
        ctx.save_for_backward(Z, G, cs, tcs, w_ih, w_hh)
        return out

    @staticmethod
    def backward(ctx, grad):
        Z, G, cs, tcs, w_ih, w_hh = ctx.saved
        T, N, H, reverse, batch_first = ctx.meta
        po = 0 if reverse else 1
        dt = G.dtype
        dG = _POOL.empty((4 * H, T, N), dt)
        dh_rec = xp.zeros((H, N), dt)
        dc = xp.ascontiguousarray(grad[T * N:].T, dtype=dt)
        w_hhT = _transposed(w_hh)
        first = T - 1 if reverse else 0  # the step processed first in forward
        need_h0 = ctx.needs_input_grad[1]
        steps = reversed(_steps(T, reverse))
        if _compiled_for(dt):  # the kernel reads the output gradient's rows where they are
            gt = _seq_view(grad, T, N, batch_first)
            if gt.dtype != dt or gt.strides[2] != dt.itemsize or min(gt.strides) < 0:
                gt = _grad_rows(ctx, xp.asarray(grad, dt))
            step = compiled.kernels().lstm_backward(G, tcs, cs, gt, dh_rec, dc, dG)
            for t, _ in steps:
                step(t, t + 1 - po)  # dh_rec += gt[t].T, then step t's gradients
                if t != first or need_h0:
                    xp.matmul(w_hhT, dG[:, t], out=dh_rec)
        else:
            gt = _grad_rows(ctx, grad)
            dh = xp.empty((H, N), dt)
            step_grads = partial(_lstm_step_grads, dh=dh, dc=dc, dG=dG,
                                 scratch=xp.empty((2, H, N), dt))
            for t, _ in steps:
                xp.add(gt[t].T, dh_rec, out=dh)
                step_grads(G, t, tcs, cs, t + 1 - po)
                if t != first or need_h0:
                    xp.matmul(w_hhT, dG[:, t], out=dh_rec)
        dc0 = dc.T if ctx.needs_input_grad[2] else None
        return _closing_grads(ctx, dG, dG, Z, w_ih, dh_rec.T if need_h0 else None, dc0)


# ----------------------------------------------------------------------------- GRU


class GRUSequence(Function):
    """One GRU layer-direction: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), as in torch."""

    op_name = "gru"
    extra_rows = 0

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False, batch_first=False):
        H = w_hh.shape[1]
        dt = xp.result_type(x, w_ih, w_hh)
        scale = _scales((-1.0, -1.0, -2.0), H, dt)
        Z, out, outt = _prologue(ctx, x, h0, H, reverse, batch_first, dt)
        T, N = Z.shape[1:]
        wih, whh = _scaled(w_ih, scale, dt), _scaled(w_hh, scale, dt)
        b_x = b_hn = None
        if b_hh is not None:  # r and z parts of b_hh join the input side; b_hn stays inside
            b_x = xp.concatenate([b_hh[:2 * H], xp.zeros_like(b_hh[2 * H:])])
            b_hn = _bias_block(b_hh[2 * H:], scale[2 * H:], N, dt)
        b_x = _bias_block(_bias_sum(b_ih, b_x), scale, N, dt)
        G = _POOL.empty((T, 3 * H, N), dt)  # r, z, n of every step
        ghn = _POOL.empty((T, H, N), dt)  # -2 (W_hn h + b_hn), kept for dr
        buf = xp.empty((3 * H, N), dt)
        h = xp.empty((H, N), dt)
        tmp = xp.empty((H, N), dt)
        with xp.errstate(over="ignore"):
            for t, slot in _steps(T, reverse):
                g, hp = G[t], Z[:H, t]
                xp.matmul(wih, Z[H:, t], out=g)
                if b_x is not None:
                    g += b_x
                xp.matmul(whh, hp, out=buf)
                rz = g[:2 * H]
                rz += buf[:2 * H]
                xp.exp(rz, out=rz)
                rz += 1.0
                xp.divide(1.0, rz, out=rz)
                r, z, n = g[:H], g[H:2 * H], g[2 * H:]
                if b_hn is None:
                    ghn[t] = buf[2 * H:]
                else:
                    xp.add(buf[2 * H:], b_hn, out=ghn[t])
                xp.multiply(r, ghn[t], out=tmp)
                n += tmp
                xp.exp(n, out=n)
                n += 1.0
                xp.divide(2.0, n, out=n)
                n -= 1.0
                xp.subtract(hp, n, out=h)
                h *= z
                h += n                         # h' = (1 - z) n + z h
                if slot >= 0:
                    Z[:H, slot] = h
                outt[t] = h.T
        ctx.save_for_backward(Z, G, ghn, w_ih, w_hh)
        return out

    @staticmethod
    def backward(ctx, grad):
        Z, G, ghn, w_ih, w_hh = ctx.saved
        T, N, H, reverse, _ = ctx.meta
        gt = _grad_rows(ctx, grad)
        dt = G.dtype
        dgi = _POOL.empty((3 * H, T, N), dt)
        dgh = _POOL.empty((3 * H, T, N), dt)
        di = xp.empty((3 * H, N), dt)
        dhh = xp.empty((3 * H, N), dt)
        dn = di[2 * H:]
        dh = xp.empty((H, N), dt)
        dh_rec = xp.zeros((H, N), dt)
        a = xp.empty((H, N), dt)
        b = xp.empty((H, N), dt)
        w_hhT = _transposed(w_hh)
        for t, _ in reversed(_steps(T, reverse)):
            g, hp = G[t], Z[:H, t]
            r, z, n = g[:H], g[H:2 * H], g[2 * H:]
            xp.add(gt[t].T, dh_rec, out=dh)
            xp.subtract(1.0, z, out=a)         # a = 1 - z
            xp.subtract(hp, n, out=b)
            b *= dh
            b *= z
            xp.multiply(b, a, out=dhh[H:2 * H])  # d pre_z = dh (h - n) z (1 - z)
            a *= dh                            # a = dh (1 - z): gradient to n
            xp.multiply(n, n, out=b)
            xp.subtract(1.0, b, out=b)
            xp.multiply(a, b, out=dn)          # d pre_n = dh (1 - z) (1 - n^2)
            xp.multiply(dn, r, out=dhh[2 * H:])
            xp.multiply(dn, ghn[t], out=b)     # = -2 d pre_n (W_hn h + b_hn)
            xp.subtract(1.0, r, out=a)
            a *= r
            a *= -0.5
            xp.multiply(b, a, out=dhh[:H])     # d pre_r = d pre_n (W_hn h + b_hn) r (1 - r)
            di[:2 * H] = dhh[:2 * H]
            dgi[:, t] = di
            dgh[:, t] = dhh
            xp.matmul(w_hhT, dhh, out=dh_rec)
            xp.multiply(dh, z, out=a)
            dh_rec += a
        dh0 = dh_rec.T if ctx.needs_input_grad[1] else None
        return _closing_grads(ctx, dgi, dgh, Z, w_ih, dh0)


# ----------------------------------------------------------------------------- Elman RNN


class _RNNSequence(Function):
    """One Elman RNN layer-direction: h' = act(W_ih x + b_ih + W_hh h + b_hh)."""

    extra_rows = 0
    relu = False

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False, batch_first=False):
        H = w_hh.shape[1]
        dt = xp.result_type(x, w_ih, w_hh)
        Z, out, outt = _prologue(ctx, x, h0, H, reverse, batch_first, dt)
        T, N = Z.shape[1:]
        wc = _weights_cat(w_hh, w_ih, None, dt)
        bias = _bias_block(_bias_sum(b_ih, b_hh), None, N, dt)
        hs = _POOL.empty((T, H, N), dt)  # h_t, for the activation's derivative
        with xp.errstate(over="ignore"):
            for t, slot in _steps(T, reverse):
                h = hs[t]
                xp.matmul(wc, Z[:, t], out=h)
                if bias is not None:
                    h += bias
                if ctx.relu:
                    xp.maximum(h, 0.0, out=h)
                else:
                    _tanh_by_exp(h, h)
                if slot >= 0:
                    Z[:H, slot] = h
                outt[t] = h.T
        ctx.save_for_backward(Z, hs, w_ih, w_hh)
        return out

    @staticmethod
    def backward(ctx, grad):
        Z, hs, w_ih, w_hh = ctx.saved
        T, N, H, reverse, _ = ctx.meta
        gt = _grad_rows(ctx, grad)
        dt = hs.dtype
        dG = _POOL.empty((H, T, N), dt)
        d = xp.empty((H, N), dt)
        dh_rec = xp.zeros((H, N), dt)
        a = xp.empty((H, N), dt)
        w_hhT = _transposed(w_hh)
        first = T - 1 if reverse else 0
        need_h0 = ctx.needs_input_grad[1]
        for t, _ in reversed(_steps(T, reverse)):
            h = hs[t]
            xp.add(gt[t].T, dh_rec, out=d)
            if ctx.relu:
                d *= h > 0
            else:
                xp.multiply(h, h, out=a)
                xp.subtract(1.0, a, out=a)
                d *= a
            dG[:, t] = d
            if t != first or need_h0:
                xp.matmul(w_hhT, d, out=dh_rec)
        return _closing_grads(ctx, dG, dG, Z, w_ih, dh_rec.T if need_h0 else None)


class RNNTanhSequence(_RNNSequence):
    op_name = "rnn_tanh"


class RNNReluSequence(_RNNSequence):
    op_name = "rnn_relu"
    relu = True


# ----------------------------------------------------------------------------- slicing


class TakeRows(Function):
    """rows[start:stop] of a 2-D array, reshaped to `shape` (a view): how the recurrent
    layers cut the sequence, h_n and c_n out of a fused op's output. The backward writes
    the gradient into a pooled array (no zero-filled fresh allocation), zero elsewhere."""

    op_name = "take_rows"

    @staticmethod
    def forward(ctx, a, start=0, stop=None, shape=None):
        ctx.meta = (a.shape, a.dtype, start, stop)
        return a[start:stop].reshape(shape)

    @staticmethod
    def backward(ctx, g):
        shape, dtype, start, stop = ctx.meta
        full = _POOL.empty(shape, dtype)
        full[:start] = 0.0
        full[start:stop] = g.reshape(stop - start, shape[1])
        full[stop:] = 0.0
        return full
