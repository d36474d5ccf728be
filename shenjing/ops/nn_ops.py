"""Fused primitives behind shenjing.nn's layers: Linear, Embedding, dropout, the norms, GELU.

Each is one Function with an analytic backward, so a layer costs one graph node and a few
NumPy passes instead of a chain of small ops. Arguments are validated by the callers in
`shenjing.nn.functional`; these kernels assume well-formed arrays.

Reductions avoid `a.sum(axis)` (PERF-NOTES lesson 8) and temporaries: small ones are one
GEMV (`ones @ g`); large ones use `xp.einsum`, which is single-threaded and allocates
nothing, because a threaded OpenBLAS GEMV stalls for milliseconds when the two cores are
busy, and every fresh large temporary costs page faults (PERF-NOTES, "The environment").
"""

from __future__ import annotations

import math

from .. import compiled
from ..autograd import Function
from ..backend import xp
from .elementwise import sigmoid_array

__all__ = ["Linear", "Embedding", "Dropout", "BatchNorm", "LayerNorm", "Gelu", "Elu", "Silu",
           "erfc_array", "normal_cdf_array", "col_sums", "row_sums", "scatter_add_rows",
           "dropout_keep", "apply_keep"]


# ----------------------------------------------------------------------------- helpers


_SMALL = 1 << 16  # below this many elements OpenBLAS runs a GEMV on one thread


def col_sums(a2: xp.ndarray) -> xp.ndarray:
    """Sum over the rows of a 2-D array, (M, K) -> (K,)."""
    if a2.size <= _SMALL:
        return xp.ones(a2.shape[0], dtype=a2.dtype) @ a2
    return xp.einsum("ij->j", a2)


def row_sums(a2: xp.ndarray) -> xp.ndarray:
    """Sum along each row of a 2-D array, (M, K) -> (M,)."""
    if a2.size <= _SMALL:
        return a2 @ xp.ones(a2.shape[1], dtype=a2.dtype)
    return xp.einsum("ij->i", a2)


# ----------------------------------------------------------------------------- Linear


class Linear(Function):
    """y = x @ W.T + b over any leading batch dimensions, in one GEMM each way."""

    op_name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        x2 = x.reshape(-1, x.shape[-1])
        out = x2 @ weight.T
        if bias is not None:
            out += bias
        ctx.save_for_backward(x2, weight)
        ctx.shape = x.shape
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x2, weight = ctx.saved
        nx, nw, nb = ctx.needs_input_grad
        g2 = g.reshape(-1, weight.shape[0])
        gx = (g2 @ weight).reshape(ctx.shape) if nx else None
        gw = g2.T @ x2 if nw else None
        gb = col_sums(g2) if nb else None
        return gx, gw, gb


# ----------------------------------------------------------------------------- Embedding


class Embedding(Function):
    """Rows of `weight` picked by integer `indices`; repeated indices accumulate in backward.

    The backward scatters in rounds (`scatter_add_rows`); the padding row gets no gradient.
    """

    @staticmethod
    def forward(ctx, weight, indices=None, padding_idx=None):
        ctx.meta = (indices, weight.shape, padding_idx)
        return xp.take(weight, indices, axis=0)

    @staticmethod
    def backward(ctx, g):
        indices, shape, padding_idx = ctx.meta
        idx = indices.reshape(-1)
        gw = scatter_add_rows(idx, _contiguous(g).reshape(idx.size, shape[1]), shape[0])
        if padding_idx is not None:
            gw[padding_idx] = 0
        return gw


def _contiguous(g: xp.ndarray) -> xp.ndarray:
    """g as a C-contiguous array. A gradient that comes back from a convolution over the
    embedded sequence (a TextCNN with nn.Conv1d over (N, E, T)) is a transposed view of
    batch-innermost memory; NumPy copies that at ~1 GB/s, the compiled tiled copy ~5x faster
    (2.56M floats: 21 -> 4 ms)."""
    if g.flags.c_contiguous:
        return g
    if (g.ndim == 3 and g.dtype == xp.float32 and g.strides[0] == g.itemsize
            and compiled.enabled()):
        out = xp.empty(g.shape, g.dtype)
        compiled.kernels().copy_unit_first(g, out)
        return out
    return xp.ascontiguousarray(g)


def scatter_add_rows(idx: xp.ndarray, rows: xp.ndarray, n: int,
                     max_rounds: int = 8) -> xp.ndarray:
    """An (n, D) array whose row r is the sum of `rows[i]` over every i with idx[i] == r.

    `xp.add.at` (and a sort followed by `add.reduceat` along axis 0, ~100 ms for 25,600 x
    100 rows) walk the rows one by one. This scatters in rounds instead: each round writes
    the position of every pending row into a slot per target row, so exactly one pending row
    per target wins the slot (whichever the assignment kept); the winners are scattered with
    one vectorized assignment (first round) or add (later ones), the others wait for the
    next round. The number of rounds is the largest multiplicity of an index (about 8 for
    25,600 draws from 25,000 rows): 7-10x faster than the sort-based scatter. A padded text
    batch repeats its padding id hundreds of times, so after `max_rounds` the rows still
    pending (a few targets, many rows each) are summed per target in one sorted
    `add.reduceat` instead.
    """
    out = xp.zeros((n, rows.shape[1]), dtype=rows.dtype)
    if idx.size == 0:
        return out
    slot = xp.empty(n, dtype=xp.intp)
    pending = xp.arange(idx.size)
    targets = idx
    for round_ in range(max_rounds):
        if not pending.size:
            return out
        slot[targets] = pending
        won = slot[targets] == pending
        winners = pending[won]
        if round_ == 0:
            out[targets[won]] = xp.take(rows, winners, axis=0)
        else:
            out[targets[won]] += xp.take(rows, winners, axis=0)
        lost = ~won
        pending, targets = pending[lost], targets[lost]
    if pending.size:
        order = xp.argsort(targets, kind="stable")
        targets = targets[order]
        starts = xp.flatnonzero(xp.concatenate(([True], targets[1:] != targets[:-1])))
        out[targets[starts]] += xp.add.reduceat(xp.take(rows, pending[order], axis=0),
                                                starts, axis=0)
    return out


# ----------------------------------------------------------------------------- Dropout


def dropout_keep(rng, shape: tuple, p: float) -> xp.ndarray:
    """A bool array of `shape`, True with probability 1 - p: which elements dropout keeps.

    Compares raw 32-bit words from the generator's bit stream with round(p * 2**32) instead
    of drawing float32 uniforms (which costs a conversion pass and has only 24-bit
    resolution): about 2x faster for the whole dropout. The bool mask is 1 byte per element
    where a float mask was 4.
    """
    n = math.prod(shape)
    if p >= 1.0:
        return xp.zeros(shape, dtype=bool)
    threshold = min(round(p * 4294967296.0), 4294967295)
    bg = rng.bit_generator
    if type(bg).__name__ == "PCG64" and compiled.enabled():  # the same stream, in one pass
        keep = xp.empty(shape, dtype=bool)
        compiled.kernels().dropout_keep(bg, keep, threshold)
        return keep
    words = bg.random_raw((n + 1) // 2).view(xp.uint32)[:n]
    return xp.greater_equal(words, xp.uint32(threshold)).reshape(shape)


def apply_keep(x: xp.ndarray, keep: xp.ndarray, p: float) -> xp.ndarray:
    """x * keep / (1 - p) in x's dtype (inverted dropout), in two passes into a new array
    (one compiled pass for float32 C-contiguous arrays of the same shape: same bits)."""
    if (x.dtype == xp.float32 and x.shape == keep.shape and x.flags.c_contiguous
            and keep.flags.c_contiguous and compiled.enabled()):
        out = xp.empty(x.shape, x.dtype)
        compiled.kernels().apply_keep(x, keep, out, 1.0 / (1.0 - p))
        return out
    out = xp.multiply(x, keep, dtype=x.dtype)
    out *= x.dtype.type(1.0 / (1.0 - p))
    return out


class Dropout(Function):
    """Inverted dropout: keep each element (or each channel) with probability 1 - p and
    scale by 1 / (1 - p). `mask_shape` broadcasts to x's shape (e.g. (N, C, 1, 1) for
    Dropout2d); the bool keep mask is saved for backward."""

    @staticmethod
    def forward(ctx, x, p=0.5, rng=None, mask_shape=None):
        keep = dropout_keep(rng, x.shape if mask_shape is None else mask_shape, p)
        ctx.save_for_backward(keep)
        ctx.p = p
        return apply_keep(x, keep, p)

    @staticmethod
    def backward(ctx, g):
        return apply_keep(g, ctx.saved[0], ctx.p)


# ----------------------------------------------------------------------------- BatchNorm


def _affine(xhat: xp.ndarray, w, b) -> xp.ndarray:
    """xhat * w + b as a new array (w, b broadcastable or None); xhat is left intact."""
    if w is None:
        return xhat + b if b is not None else xhat.copy()
    out = xhat * w
    if b is not None:
        out += b
    return out


class BatchNorm(Function):
    """Batch normalization over every axis but the channel axis 1, for (N, C, *) inputs.

    Training normalizes with the batch's biased variance and, when running buffers are
    given, updates them in place with the unbiased one (as torch). Eval uses the running
    statistics as one scale and shift per channel. `weight` and `bias` may be None.
    """

    op_name = "batch_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5):
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, -1)
        count = n * x3.shape[2]
        ctx.meta = (x.shape, training, count)
        if training:
            mean = xp.einsum("ncl->c", x3) * (1.0 / count)
            xhat = x3 - mean[:, None]
            var = xp.einsum("ncl,ncl->c", xhat, xhat) * (1.0 / count)
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += (momentum * mean).astype(running_mean.dtype, copy=False)
                running_var *= 1.0 - momentum
                unbiased = var * (momentum * count / max(count - 1, 1))
                running_var += unbiased.astype(running_var.dtype, copy=False)
            invstd = 1.0 / xp.sqrt(var + eps)
            xhat *= invstd[:, None]
            ctx.save_for_backward(xhat, invstd, weight)
            out = _affine(xhat, None if weight is None else weight[:, None],
                          None if bias is None else bias[:, None])
            return out.reshape(x.shape)
        mean = running_mean.astype(x.dtype, copy=False)
        invstd = 1.0 / xp.sqrt(running_var.astype(x.dtype, copy=False) + eps)
        scale = invstd if weight is None else invstd * weight
        shift = -mean * scale
        if bias is not None:
            shift += bias
        ctx.save_for_backward(x3, invstd, weight, mean)
        out = x3 * scale[:, None]
        out += shift[:, None]
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        shape, training, count = ctx.meta
        nx, nw, nb = ctx.needs_input_grad
        if training:
            xhat, invstd, weight = ctx.saved
        else:
            x3, invstd, weight, mean = ctx.saved
        g3 = g.reshape(shape[0], shape[1], -1)
        gb = xp.einsum("ncl->c", g3) if (nb or nw or (nx and training)) else None
        gw = None
        if nw or (nx and training):
            if training:
                gw = xp.einsum("ncl,ncl->c", g3, xhat)
            else:  # sum g * (x - mean) * invstd without forming x - mean
                gw = (xp.einsum("ncl,ncl->c", g3, x3) - mean * gb) * invstd
        gx = None
        if nx:
            k = invstd if weight is None else invstd * weight
            gx = g3 * k[:, None]
            if training:
                gx -= xhat * (k * gw * (1.0 / count))[:, None]
                gx -= (k * gb * (1.0 / count))[:, None]
            gx = gx.reshape(shape)
        return gx, (gw if nw else None), (gb if nb else None)


# ----------------------------------------------------------------------------- LayerNorm


def _row_blocks(m: int, k: int):
    """Row slices of an (m, k) array, each about 256 KB of float32, so that the several
    passes a norm makes over a block run in cache instead of in memory."""
    rows = max(1, (1 << 16) // max(k, 1))
    for start in range(0, m, rows):
        yield slice(start, min(start + rows, m))


class LayerNorm(Function):
    """Normalize over the trailing `k` dimensions (flattened to K features per row).

    Works block by block over the rows (about 2x faster than whole-array passes for large
    inputs) and keeps only the input and per-row statistics for backward, where the
    normalized rows are recomputed block by block.
    """

    op_name = "layer_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, k=1, eps=1e-5):
        feat = int(xp.prod(x.shape[x.ndim - k:]))
        x2 = x.reshape(-1, feat)
        m = x2.shape[0]
        w = None if weight is None else weight.reshape(-1)
        b = None if bias is None else bias.reshape(-1)
        out = xp.empty_like(x2)
        mean = xp.empty(m, dtype=x.dtype)
        invstd = xp.empty(m, dtype=x.dtype)
        inv_k = 1.0 / feat
        for sl in _row_blocks(m, feat):
            xb, ob = x2[sl], out[sl]
            mb = xp.einsum("ij->i", xb) * inv_k
            xp.subtract(xb, mb[:, None], out=ob)
            inv = xp.einsum("ij,ij->i", ob, ob) * inv_k
            inv += eps
            xp.sqrt(inv, out=inv)
            xp.reciprocal(inv, out=inv)
            ob *= inv[:, None]
            if w is not None:
                ob *= w
            if b is not None:
                ob += b
            mean[sl], invstd[sl] = mb, inv
        ctx.save_for_backward(x2, mean, invstd, w)
        ctx.shapes = (x.shape, None if weight is None else weight.shape)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        # gx = invstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * w
        x2, mean, invstd, w = ctx.saved
        shape, wshape = ctx.shapes
        nx, nw, nb = ctx.needs_input_grad
        g2 = g.reshape(x2.shape)
        m, feat = x2.shape
        inv_k = 1.0 / feat
        gx = xp.empty_like(x2) if nx else None
        gw = xp.zeros(feat, dtype=x2.dtype) if nw else None
        if nx or nw:
            rows = next(_row_blocks(m, feat)).stop
            xh_buf = xp.empty((rows, feat), dtype=x2.dtype)
            gh_buf = xp.empty((rows, feat), dtype=x2.dtype) if nx else None
            for sl in _row_blocks(m, feat):
                n = sl.stop - sl.start
                xh, gb_ = xh_buf[:n], g2[sl]
                xp.subtract(x2[sl], mean[sl, None], out=xh)
                xh *= invstd[sl, None]
                if nw:
                    gw += xp.einsum("ij,ij->j", gb_, xh)
                if nx:
                    gh = gh_buf[:n]
                    xp.multiply(gb_, 1.0 if w is None else w, out=gh)
                    a = xp.einsum("ij->i", gh) * inv_k
                    b = xp.einsum("ij,ij->i", gh, xh) * inv_k
                    xh *= b[:, None]
                    gh -= xh
                    gh -= a[:, None]
                    xp.multiply(gh, invstd[sl, None], out=gx[sl])
        return ((None if gx is None else gx.reshape(shape)),
                (None if gw is None else gw.reshape(wshape)),
                (col_sums(g2).reshape(wshape) if nb else None))


# ----------------------------------------------------------------------------- activations


def _chebyshev_fit(fn, deg: int, lo: float, hi: float) -> list[float]:
    """Power-series coefficients, in u = the argument mapped from [lo, hi] onto [-1, 1], of
    the degree-`deg` Chebyshev interpolant of fn (well conditioned here: all below 1)."""
    n = deg + 1
    theta = [math.pi * (j + 0.5) / n for j in range(n)]
    vals = [fn(lo + (hi - lo) * (math.cos(t) + 1) / 2) for t in theta]
    cheb = [2.0 / n * sum(v * math.cos(k * t) for v, t in zip(vals, theta)) for k in range(n)]
    cheb[0] /= 2
    mono = [0.0] * n
    t_prev, t_cur = [0.0] * n, [1.0] + [0.0] * deg  # T_-1 (unused), T_0 as power series
    for k in range(n):
        for i in range(n):
            mono[i] += cheb[k] * t_cur[i]
        if k == 0:
            t_next = [0.0, 1.0] + [0.0] * (deg - 1)
        else:  # T_k+1 = 2u T_k - T_k-1
            t_next = [2 * (t_cur[i - 1] if i else 0.0) - t_prev[i] for i in range(n)]
        t_prev, t_cur = t_cur, t_next
    return mono


def _log_erfc_scaled(t: float) -> float:
    """log(erfc(z) / t) + z**2 with z = 2/t - 2: smooth on (0, 1], so a short polynomial
    represents it (the form of Numerical Recipes' erfc, fitted here at import)."""
    z = 2.0 / t - 2.0
    if z < 20.0:
        return math.log(math.erfc(z) / t) + z * z
    s, term = 1.0, 1.0  # asymptotic series of erfc(z) * z * sqrt(pi) * exp(z**2)
    for k in range(1, 12):
        term *= -(2 * k - 1) / (2 * z * z)
        s += term
    return math.log(s) - math.log(z * math.sqrt(math.pi)) - math.log(t)


# (degree, largest z) per dtype: erfc underflows past z = 10 in float32 and 27 in float64;
# relative error of the fit about 1e-8 and 1e-13 respectively.
_ERFC_FITS: dict = {}
for _dt, _deg, _zmax in ((xp.float32, 10, 10.0), (xp.float64, 22, 27.0)):
    _lo = 1.0 / (1.0 + _zmax / 2)
    _ERFC_FITS[xp.dtype(_dt)] = (_chebyshev_fit(_log_erfc_scaled, _deg, _lo, 1.0), _lo, _zmax)


_BLOCK = 1 << 14  # elements per block: a handful of 64 KB arrays stay in cache


def _fit_for(dtype) -> tuple:
    return _ERFC_FITS.get(xp.dtype(dtype), _ERFC_FITS[xp.dtype(xp.float64)])


def _erfc_block(z, out, zc, t, u) -> None:
    """out = erfc(z) for a 1-D block of z >= 0; zc, t and u are scratch blocks.

    NumPy has no erf: this is t * exp(P(t) - z^2), t = 1 / (1 + z/2), with P a polynomial
    (Horner, in t mapped onto [-1, 1]) fitted to math.erfc when this module loads.
    """
    coef, lo, _ = _fit_for(out.dtype)
    # no clamp needed: past the fitted range t < lo keeps u >= -1.4, where P stays modest,
    # and exp(P - z^2) underflows to 0 (z = inf included)
    xp.copyto(zc, z)
    xp.multiply(zc, 0.5, out=t)
    t += 1.0
    xp.reciprocal(t, out=t)
    xp.subtract(t, (1.0 + lo) / 2, out=u)
    u *= 2.0 / (1.0 - lo)
    out.fill(coef[-1])
    for c in coef[-2::-1]:
        out *= u
        out += c
    zc *= zc
    out -= zc
    xp.exp(out, out=out)
    out *= t


def _scratch(n: int, dtype, k: int) -> xp.ndarray:
    return xp.empty((k, min(n, _BLOCK)), dtype=dtype)


def erfc_array(z: xp.ndarray) -> xp.ndarray:
    """Complementary error function of z >= 0, elementwise, with small relative error
    (about 1e-13 in float64, a few ulps in float32), computed block by block in cache."""
    dt = z.dtype if z.dtype in _ERFC_FITS else xp.dtype(xp.float64)
    zf = xp.ascontiguousarray(z, dtype=dt).reshape(-1)
    out = xp.empty(zf.size, dtype=dt)
    zc, t, u = _scratch(zf.size, dt, 3)
    with xp.errstate(over="ignore"):  # z^2 of huge z: inf, and erfc 0
        for s in range(0, zf.size, _BLOCK):
            e = min(s + _BLOCK, zf.size)
            n = e - s
            _erfc_block(zf[s:e], out[s:e], zc[:n], t[:n], u[:n])
    return out.reshape(z.shape)


def _cdf_block(x, out, scratch) -> None:
    """out = Phi(x) = erfc(-x / sqrt 2) / 2 for a 1-D block, accurate in both tails."""
    a, zc, t, u = scratch
    xp.abs(x, out=a)
    a *= 1.0 / math.sqrt(2.0)
    _erfc_block(a, out, zc, t, u)
    out *= 0.5  # h = Phi(-|x|); Phi(x) = h + [x >= 0] (1 - 2h), exact in the left tail
    xp.multiply(out, -2.0, out=u)
    u += 1.0
    u *= x >= 0
    out += u


def normal_cdf_array(x: xp.ndarray) -> xp.ndarray:
    """Phi(x), the standard normal CDF, elementwise (float32 or float64)."""
    dt = x.dtype if x.dtype in _ERFC_FITS else xp.dtype(xp.float64)
    xf = xp.ascontiguousarray(x, dtype=dt).reshape(-1)
    out = xp.empty(xf.size, dtype=dt)
    scratch = _scratch(xf.size, dt, 4)
    with xp.errstate(over="ignore"):
        for s in range(0, xf.size, _BLOCK):
            e = min(s + _BLOCK, xf.size)
            _cdf_block(xf[s:e], out[s:e], scratch[:, :e - s])
    return out.reshape(x.shape)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    """GELU: x * Phi(x) ('none'), or its tanh approximation ('tanh'), as torch."""

    op_name = "gelu"

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.approximate = approximate
        if approximate == "tanh":
            inner = x * x
            inner *= 0.044715
            inner += 1.0
            inner *= x
            inner *= _SQRT_2_OVER_PI
            t = xp.tanh(inner, out=inner)
            ctx.save_for_backward(x, t)
            out = t + 1.0
            out *= x
            out *= 0.5
            return out
        xf = xp.ascontiguousarray(x).reshape(-1)
        cdf = xp.empty_like(xf)
        out = xp.empty_like(xf)
        scratch = _scratch(xf.size, x.dtype, 4)
        with xp.errstate(over="ignore"):
            for s in range(0, xf.size, _BLOCK):  # in cache: Phi takes about 30 passes
                e = min(s + _BLOCK, xf.size)
                _cdf_block(xf[s:e], cdf[s:e], scratch[:, :e - s])
                xp.multiply(xf[s:e], cdf[s:e], out=out[s:e])
        ctx.save_for_backward(x, cdf.reshape(x.shape))
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved
        x2 = x * x
        if ctx.approximate == "tanh":
            # d/dx 0.5 x (1 + t) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3c x^2)
            d = x2 * (3 * 0.044715)
            d += 1.0
            d *= x
            d *= 0.5 * _SQRT_2_OVER_PI
            d *= 1.0 - s * s
            d += 0.5 * (1.0 + s)
            return g * d
        pdf = xp.exp(x2 * -0.5, out=x2)  # phi(x) * sqrt(2 pi)
        pdf *= x
        pdf *= _INV_SQRT_2PI
        pdf += s
        return g * pdf


class Elu(Function):
    """ELU: x for x > 0, alpha * (exp(x) - 1) otherwise."""

    op_name = "elu"

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        neg = xp.minimum(x, 0.0)
        e = xp.exp(neg, out=neg)  # exp(min(x, 0)): the slope / alpha where x <= 0
        e *= alpha
        pos = x > 0
        ctx.save_for_backward(e, pos)
        ctx.alpha = alpha
        out = e - alpha
        out += xp.maximum(x, 0.0)
        return out

    @staticmethod
    def backward(ctx, g):
        e, pos = ctx.saved
        slope = xp.multiply(pos, g.dtype.type(1.0 - ctx.alpha), dtype=g.dtype)  # x > 0: e == alpha
        slope += e
        return g * slope


class Silu(Function):
    """SiLU (swish): x * sigmoid(x)."""

    op_name = "silu"

    @staticmethod
    def forward(ctx, x):
        s = sigmoid_array(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved
        d = 1.0 - s
        d *= x
        d += 1.0
        d *= s
        return g * d
