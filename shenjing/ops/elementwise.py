"""Elementwise ops: arithmetic, activations and friends, forward and backward side by side.

Binary ops broadcast like NumPy; `Function.apply` reduces their gradients back to each
input's shape. Kernels keep float32 float32: only Python scalars (never xp.float64) meet
arrays here, and results are produced in the inputs' dtype.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp
from ..cpu_threads import elementwise

__all__ = [
    "Add", "Sub", "Mul", "Div", "Pow", "Neg", "Abs", "Exp", "Log", "Log1p", "Sqrt", "Rsqrt",
    "Sin", "Cos", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "Clamp", "Maximum", "Minimum",
    "Where", "Sign", "Cast", "Clone",
]


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        na, nb = ctx.needs_input_grad
        return (g * b if na else None), (g * a if nb else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a / b  # int / int: NumPy's float64, which apply turns into the default float
        ctx.save_for_backward(b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        b, out = ctx.saved
        ga = g / b
        gb = -ga * out if ctx.needs_input_grad[1] else None
        return ga, gb


def _is_int(x) -> bool:
    dt = getattr(x, "dtype", None)
    return (dt is not None and dt.kind in "iub") or isinstance(x, (int, xp.integer))


class Pow(Function):
    """a ** b; b a scalar or a tensor (the gradient to b needs a > 0, as in torch)."""

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved
        ga = gb = None
        if ctx.needs_input_grad[0]:
            if isinstance(b, (int, float)):
                if b == 0:  # x ** 0 is constant: 0, not 0 * x ** -1 (nan at x = 0), as torch
                    ga = xp.zeros_like(g)
                else:
                    ga = g * (b * a ** (b - 1)) if b != 2 else g * (2 * a)
            else:
                with xp.errstate(divide="ignore", invalid="ignore"):
                    ga = g * b * a ** (b - 1)
                if xp.any(b == 0):
                    ga = xp.where(b == 0, 0, ga)
        if ctx.needs_input_grad[1]:
            with xp.errstate(divide="ignore", invalid="ignore"):
                gb = g * out * xp.log(a)
            if xp.any(a == 0):  # 0 ** b for b >= 0: torch's gradient is 0 (not 0 * -inf)
                gb = xp.where((a == 0) & (b >= 0), 0, gb)
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * xp.sign(a)


class Exp(Function):
    api = ("exp",)

    @staticmethod
    def forward(ctx, a):
        out = xp.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Log(Function):
    api = ("log",)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved[0]


class Log1p(Function):
    api = ("log1p",)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.log1p(a)

    @staticmethod
    def backward(ctx, g):
        return g / (1 + ctx.saved[0])


class Sqrt(Function):
    api = ("sqrt",)

    @staticmethod
    def forward(ctx, a):
        out = xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved[0])


class Rsqrt(Function):
    api = ("rsqrt",)

    @staticmethod
    def forward(ctx, a):
        out = 1 / xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved[0]
        return g * (-0.5 * out * out * out)


class Sin(Function):
    api = ("sin",)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.sin(a)

    @staticmethod
    def backward(ctx, g):
        return g * xp.cos(ctx.saved[0])


class Cos(Function):
    api = ("cos",)

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.cos(a)

    @staticmethod
    def backward(ctx, g):
        return -g * xp.sin(ctx.saved[0])


class Tanh(Function):
    api = ("tanh",)

    @staticmethod
    def forward(ctx, a):
        out = xp.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved[0]
        return g * (1 - y * y)


def sigmoid_array(a: xp.ndarray) -> xp.ndarray:
    """1 / (1 + exp(-a)) in three passes; exp overflow for a << 0 correctly gives 0."""
    with xp.errstate(over="ignore"):
        out = xp.exp(-a)
    out += 1
    return xp.reciprocal(out, out=out)


class Sigmoid(Function):
    api = ("sigmoid",)

    @staticmethod
    def forward(ctx, a):
        out = sigmoid_array(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved[0]
        return g * (y * (1 - y))


class Relu(Function):
    """max(a, 0); large arrays are split over shenjing.cpu_threads in L2-sized blocks."""
    api = ("relu",)

    @staticmethod
    def forward(ctx, a):
        out = elementwise(_relu, xp.empty_like(a), a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        if g.shape != out.shape:
            return g * (out > 0)
        return elementwise(_relu_grad, xp.empty_like(out, dtype=g.dtype), g, out)


def _relu(out, a) -> None:
    xp.maximum(a, 0, out=out)


def _relu_grad(dst, g, out) -> None:
    xp.multiply(g, out > 0, out=dst)


class LeakyRelu(Function):
    """max(a, slope·a) for 0 <= slope <= 1 (xp.where is ~15x slower than a ufunc here)."""
    api = ("leaky_relu",)


    op_name = "leaky_relu"

    @staticmethod
    def forward(ctx, a, negative_slope=0.01):
        mask = a > 0
        ctx.save_for_backward(mask)
        ctx.slope = negative_slope
        if 0 <= negative_slope <= 1:
            return xp.maximum(a, a * negative_slope)
        return xp.where(mask, a, a * negative_slope)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved
        factor = mask.astype(g.dtype)  # 1 where a > 0, slope elsewhere
        factor *= 1 - ctx.slope
        factor += ctx.slope
        return g * factor


class Clamp(Function):
    @staticmethod
    def forward(ctx, a, min=None, max=None):
        if min is None and max is None:
            raise ValueError("at least one of min and max must be given")
        ctx.save_for_backward(a)
        ctx.bounds = (min, max)
        return xp.clip(a, min, max)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        lo, hi = ctx.bounds
        keep = xp.ones(a.shape, dtype=bool)
        if lo is not None:
            keep &= a >= lo
        if hi is not None:
            keep &= a <= hi
        return g * keep


class _Pick2(Function):
    """Elementwise max/min of two inputs; at ties the gradient is split evenly, as
    torch.maximum and torch.minimum do. Each forward records which comparison wins."""

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        wa = ctx.wins(a, b) + 0.5 * (a == b)
        return g * wa, g * (1 - wa)


class Maximum(_Pick2):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        ctx.wins = xp.greater
        return xp.maximum(a, b)


class Minimum(_Pick2):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        ctx.wins = xp.less
        return xp.minimum(a, b)


class Where(Function):
    """where(cond, a, b): a where cond holds, else b; cond is never differentiated."""

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = xp.asarray(cond, dtype=bool)
        ctx.save_for_backward(cond)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved
        zero = xp.zeros((), dtype=g.dtype)
        na, nb = ctx.needs_input_grad[1:]
        return None, (xp.where(cond, g, zero) if na else None), (
            xp.where(cond, zero, g) if nb else None)


class Sign(Function):
    api = ("sign",)

    @staticmethod
    def forward(ctx, a):
        ctx.shape = a.shape
        return xp.sign(a)

    @staticmethod
    def backward(ctx, g):
        return xp.zeros_like(g)


class Cast(Function):
    """Change dtype; the gradient flows back cast to the input's dtype (done centrally)."""

    @staticmethod
    def forward(ctx, a, dtype=None):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g


class Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g
