"""Fused loss ops: each loss (with its reduction) is one Function with an analytic backward.

Cross-entropy fuses log-softmax and the negative log-likelihood: the forward keeps the
exponentials, the backward is softmax minus the (weighted, smoothed) target, so logits of
+-1e4 are stable and a training step pays for one graph node. Class-score inputs arrive
here as (M, C) arrays (the caller moves the class axis last); targets and weights are raw
arrays passed as keyword attributes. Arguments are validated by `shenjing.nn.losses`.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp
from .elementwise import sigmoid_array
from .nn_ops import row_sums

__all__ = ["CrossEntropy", "CrossEntropyProbs", "NllLoss", "MseLoss", "L1Loss", "HuberLoss",
           "SmoothL1Loss", "BceLoss", "BceWithLogitsLoss", "KlDivLoss", "HingeLoss"]


# ----------------------------------------------------------------------------- reductions


def reduce_loss(loss: xp.ndarray, reduction: str, batch: int = 1) -> xp.ndarray:
    """'none' keeps the elementwise loss; 'sum', 'mean' and 'batchmean' give a scalar."""
    if reduction == "none":
        return loss
    total = xp.add.reduce(loss, axis=None)
    if reduction == "mean":
        total = total / loss.size if loss.size else total * xp.nan
    elif reduction == "batchmean":
        total = total / batch
    return xp.asarray(total, dtype=loss.dtype)


def _upstream(g: xp.ndarray, reduction: str, size: int, batch: int = 1):
    """The upstream gradient each element receives: an array for 'none', else a float."""
    if reduction == "none":
        return g
    scale = float(g)
    if reduction == "mean":
        return scale / size if size else scale * float("nan")
    if reduction == "batchmean":
        return scale / batch
    return scale


# ----------------------------------------------------------------------------- cross-entropy


def _softmax_parts(z: xp.ndarray):
    """(exp(z - rowmax), rowmax, row sums of the former) for (M, C) logits, with a single
    (M, C) temporary: log-softmax is z - rowmax - log(sums), softmax is exp / sums."""
    zmax = xp.maximum.reduce(z, axis=1)
    e = xp.subtract(z, zmax[:, None])
    xp.exp(e, out=e)
    return e, zmax, row_sums(e)


def _row_weights(target, weight, ignore_index, dtype):
    """(per-row weights w[y] with ignored rows zeroed, or None when every row counts with
    weight 1; targets with ignored rows set to class 0; the valid-row mask, or None when
    all rows are valid). ignore_index None: the caller knows no row is ignored."""
    valid = None if ignore_index is None else target != ignore_index
    safe = target if valid is None else xp.where(valid, target, 0)
    if weight is None:
        return (None if valid is None else valid.astype(dtype)), safe, valid
    w = weight.astype(dtype, copy=False)[safe]
    if valid is not None:
        w *= valid
    return w, safe, valid


def _reduce_rows(loss: xp.ndarray, reduction: str, denom: float) -> xp.ndarray:
    """Reduce per-row losses; 'mean' divides by the total weight `denom` (nan when 0)."""
    if reduction == "none":
        return loss
    total = xp.add.reduce(loss, axis=None)
    if reduction == "mean":
        with xp.errstate(invalid="ignore", divide="ignore"):
            total = total / denom
    return xp.asarray(total, dtype=loss.dtype)


def _row_upstream(g: xp.ndarray, reduction: str, denom: float, dtype):
    """The upstream gradient of each row's loss: a float, or an (M,) array for 'none'."""
    if reduction == "none":
        return g.astype(dtype, copy=False)
    return float(g) / denom if reduction == "mean" else float(g)


def _denominator(roww, target) -> float:
    return float(target.size) if roww is None else float(xp.sum(roww, dtype=xp.float64))


class CrossEntropy(Function):
    """log-softmax + NLL for (M, C) logits and (M,) class indices (weight, ignore_index,
    label_smoothing and reduction as torch.nn.functional.cross_entropy).

    With q_i the weighted, smoothed target row (zero when ignored), the loss of row i is
    -sum_c q_ic logp_ic and its gradient softmax_i * sum_c q_ic - q_i.
    """

    op_name = "cross_entropy"

    @staticmethod
    def forward(ctx, z, target=None, weight=None, ignore_index=-100, label_smoothing=0.0,
                reduction="mean"):
        m, c = z.shape
        e, zmax, sums = _softmax_parts(z)
        lse = xp.log(sums)  # logp = (z - zmax) - lse, subtracted in that order for accuracy
        roww, safe, valid = _row_weights(target, weight, ignore_index, z.dtype)
        loss = lse - (z[xp.arange(m), safe] - zmax)  # -logp[y]
        if roww is not None:
            loss *= roww
        eps = label_smoothing
        wvec = None
        if eps:
            wvec = xp.ones(c, z.dtype) if weight is None else weight.astype(z.dtype)
            # -sum_c w_c logp_ic = sum(w) * lse_i - (z_i - zmax_i) @ w
            smooth = lse * float(xp.sum(wvec, dtype=xp.float64)) - (z - zmax[:, None]) @ wvec
            if valid is not None:
                smooth *= valid
            loss = loss * (1.0 - eps) + smooth * (eps / c)
        denom = _denominator(roww, target)
        ctx.save_for_backward(e, sums, safe, roww, valid, wvec)
        ctx.meta = (eps, reduction, denom)
        return _reduce_rows(loss, reduction, denom)

    @staticmethod
    def backward(ctx, g):
        e, sums, safe, roww, valid, wvec = ctx.saved
        eps, reduction, denom = ctx.meta
        c = e.shape[1]
        r = _row_upstream(g, reduction, denom, e.dtype)  # a float, or one value per row
        hit = 1.0 - eps
        if roww is None:  # every row has weight 1, so q sums to 1
            q_total, q_target = 1.0, hit
        else:
            q_total, q_target = roww * hit, roww * hit
            if eps:
                wsum = float(xp.sum(wvec, dtype=xp.float64)) * eps / c
                q_total = q_total + (wsum if valid is None else valid * wsum)
        grad = e * ((r * q_total) / sums)[:, None]  # r * Q_i * softmax_i, one pass
        grad[xp.arange(e.shape[0]), safe] -= r * q_target
        if eps:
            rv = r if valid is None else r * valid
            smooth = wvec * (eps / c)
            grad -= smooth * rv if xp.ndim(rv) == 0 else xp.multiply.outer(rv, smooth)
        return grad


class NllLoss(Function):
    """Negative log-likelihood of (M, C) log-probabilities at (M,) class indices."""

    op_name = "nll_loss"

    @staticmethod
    def forward(ctx, logp, target=None, weight=None, ignore_index=-100, reduction="mean"):
        roww, safe, _ = _row_weights(target, weight, ignore_index, logp.dtype)
        loss = -logp[xp.arange(logp.shape[0]), safe]
        if roww is not None:
            loss *= roww
        denom = _denominator(roww, target)
        ctx.save_for_backward(safe, roww)
        ctx.meta = (logp.shape, logp.dtype, reduction, denom)
        return _reduce_rows(loss, reduction, denom)

    @staticmethod
    def backward(ctx, g):
        safe, roww = ctx.saved
        shape, dtype, reduction, denom = ctx.meta
        r = _row_upstream(g, reduction, denom, dtype)
        grad = xp.zeros(shape, dtype=dtype)
        grad[xp.arange(shape[0]), safe] = -r if roww is None else roww * -r
        return grad


class CrossEntropyProbs(Function):
    """Cross-entropy against class probabilities: (M, C) logits and (M, C) targets.

    'mean' divides by M whatever the weights (as torch). The target gets a gradient too.
    """

    op_name = "cross_entropy"

    @staticmethod
    def forward(ctx, z, t, weight=None, label_smoothing=0.0, reduction="mean"):
        m, c = z.shape
        e, zmax, sums = _softmax_parts(z)
        logp = z - zmax[:, None]
        logp -= xp.log(sums)[:, None]
        eps = label_smoothing
        tt = t * (1.0 - eps) + eps / c if eps else t
        a = tt if weight is None else tt * weight.astype(z.dtype, copy=False)
        loss = -xp.einsum("ij,ij->i", a, logp)
        ctx.save_for_backward(e, sums, logp, a, weight)
        ctx.meta = (eps, reduction)
        return reduce_loss(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        e, sums, logp, a, weight = ctx.saved
        eps, reduction = ctx.meta
        r = _upstream(g, reduction, e.shape[0])
        r = r[:, None] if reduction == "none" else r
        gz = gt = None
        if ctx.needs_input_grad[0]:
            gz = e * (row_sums(a) / sums)[:, None]
            gz -= a
            gz *= r
        if ctx.needs_input_grad[1]:
            gt = logp * (-(1.0 - eps))
            if weight is not None:
                gt *= weight.astype(gt.dtype, copy=False)
            gt *= r
        return gz, gt


# ----------------------------------------------------------------------------- pointwise


class _Pointwise(Function):
    """A loss computed elementwise from (input, target), then reduced.

    Subclasses define `value(x, t, p)` -> elementwise loss and `grads(x, t, p, need_t)` ->
    (dloss/dx, dloss/dt or None); `p` holds their keyword parameters.
    """

    @staticmethod
    def forward(ctx, x, t, reduction="mean", **params):
        cls = type(ctx)
        loss = cls.value(x, t, params)
        ctx.save_for_backward(x, t)
        ctx.meta = (reduction, loss.size, x.shape[0] if x.ndim else 1, params)
        return reduce_loss(loss, reduction, ctx.meta[2])

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved
        reduction, size, batch, params = ctx.meta
        need_t = ctx.needs_input_grad[1]
        gx, gt = type(ctx).grads(x, t, params, need_t)
        r = _upstream(g, reduction, size, batch)
        return gx * r, (gt * r if need_t else None)


class MseLoss(_Pointwise):
    op_name = "mse_loss"

    @staticmethod
    def value(x, t, p):
        d = x - t
        return xp.multiply(d, d, out=d)

    @staticmethod
    def grads(x, t, p, need_t):
        d = x - t
        d *= 2.0
        return d, (-d if need_t else None)


class L1Loss(_Pointwise):
    op_name = "l1_loss"

    @staticmethod
    def value(x, t, p):
        d = x - t
        return xp.abs(d, out=d)

    @staticmethod
    def grads(x, t, p, need_t):
        s = xp.sign(x - t)
        return s, (-s if need_t else None)


class HuberLoss(_Pointwise):
    """0.5 d^2 where |d| < delta, delta (|d| - delta / 2) elsewhere."""

    op_name = "huber_loss"

    @staticmethod
    def value(x, t, p):
        delta = p["delta"]
        a = xp.abs(x - t)
        quad = xp.minimum(a, delta)
        # 0.5 q^2 + delta (a - q): equals both branches
        out = a - quad
        out *= delta
        quad *= quad
        quad *= 0.5
        out += quad
        return out

    @staticmethod
    def grads(x, t, p, need_t):
        d = xp.clip(x - t, -p["delta"], p["delta"])
        return d, (-d if need_t else None)


class SmoothL1Loss(_Pointwise):
    """0.5 d^2 / beta where |d| < beta, |d| - beta / 2 elsewhere (beta = 0: L1)."""

    op_name = "smooth_l1_loss"

    @staticmethod
    def value(x, t, p):
        beta = p["beta"]
        if beta == 0:
            return L1Loss.value(x, t, p)
        return HuberLoss.value(x, t, {"delta": beta}) * (1.0 / beta)

    @staticmethod
    def grads(x, t, p, need_t):
        beta = p["beta"]
        if beta == 0:
            return L1Loss.grads(x, t, p, need_t)
        d = xp.clip((x - t) * (1.0 / beta), -1.0, 1.0)
        return d, (-d if need_t else None)


class HingeLoss(_Pointwise):
    """max(0, margin - y * s) for scores s and labels y in {-1, +1}; margin 0 gives the
    perceptron criterion max(0, -y * s)."""

    op_name = "hinge_loss"

    @staticmethod
    def value(x, t, p):
        out = x * t
        xp.subtract(p["margin"], out, out=out)
        return xp.maximum(out, 0.0, out=out)

    @staticmethod
    def grads(x, t, p, need_t):
        active = (x * t) < p["margin"]
        gx = xp.multiply(active, -t, dtype=x.dtype)
        return gx, (xp.multiply(active, -x, dtype=x.dtype) if need_t else None)


class BceLoss(_Pointwise):
    """Binary cross-entropy of probabilities; each log is clamped at -100 (as torch)."""

    op_name = "binary_cross_entropy"

    @staticmethod
    def _logs(x):
        with xp.errstate(divide="ignore"):
            return xp.maximum(xp.log(x), -100.0), xp.maximum(xp.log1p(-x), -100.0)

    @staticmethod
    def value(x, t, p):
        logx, log1mx = BceLoss._logs(x)
        out = log1mx - t * (log1mx - logx)  # t log x + (1 - t) log(1 - x)
        xp.negative(out, out=out)
        return out if p["weight"] is None else out * p["weight"]

    @staticmethod
    def grads(x, t, p, need_t):
        w = p["weight"]
        denom = xp.maximum(x * (1.0 - x), 1e-12)
        gx = (x - t) / denom
        gt = None
        if need_t:
            logx, log1mx = BceLoss._logs(x)
            gt = log1mx - logx
        if w is not None:
            gx *= w
            gt = None if gt is None else gt * w
        return gx, gt


class BceWithLogitsLoss(_Pointwise):
    """Binary cross-entropy of logits, stable for any magnitude, with pos_weight:
    (1 - t) x + (1 + (pw - 1) t) * softplus(-x)."""

    op_name = "binary_cross_entropy_with_logits"

    @staticmethod
    def _softplus_neg(x):
        out = xp.exp(-xp.abs(x))
        xp.log1p(out, out=out)
        out += xp.maximum(-x, 0.0)
        return out

    @staticmethod
    def value(x, t, p):
        pw, w = p["pos_weight"], p["weight"]
        sp = BceWithLogitsLoss._softplus_neg(x)
        if pw is not None:
            sp *= (pw - 1.0) * t + 1.0
        out = (1.0 - t) * x
        out += sp
        return out if w is None else out * w

    @staticmethod
    def grads(x, t, p, need_t):
        pw, w = p["pos_weight"], p["weight"]
        s = sigmoid_array(x)
        if pw is None:
            gx = s - t
        else:  # (1 - t) - lw (1 - s)
            lw = (pw - 1.0) * t + 1.0
            gx = (1.0 - t) - lw * (1.0 - s)
        gt = None
        if need_t:
            gt = -x if pw is None else (pw - 1.0) * BceWithLogitsLoss._softplus_neg(x) - x
        if w is not None:
            gx = gx * w
            gt = None if gt is None else gt * w
        return gx, gt


class KlDivLoss(_Pointwise):
    """KL divergence with log-probability input: t (log t - x), or exp(t) (t - x) when the
    target is given as log-probabilities; 0 where t == 0."""

    op_name = "kl_div"

    @staticmethod
    def value(x, t, p):
        if p["log_target"]:
            return xp.exp(t) * (t - x)
        with xp.errstate(divide="ignore", invalid="ignore"):
            out = t * (xp.log(t) - x)
        return xp.where(t > 0, out, xp.zeros((), out.dtype))

    @staticmethod
    def grads(x, t, p, need_t):
        if p["log_target"]:
            et = xp.exp(t)
            return -et, (et * (t - x + 1.0) if need_t else None)
        gt = None
        if need_t:
            with xp.errstate(divide="ignore", invalid="ignore"):
                gt = xp.log(t) + 1.0 - x
            gt = xp.where(t > 0, gt, xp.zeros((), gt.dtype))
        return -t, gt
