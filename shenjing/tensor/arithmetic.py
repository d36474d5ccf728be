"""Tensor arithmetic, in-place updates, comparisons and elementwise math."""

from __future__ import annotations

import builtins

import numpy as np

from ..autograd.engine import Tensor, tensor_methods
from ..ops.elementwise import Abs, Add, Clamp, Div, Maximum, Minimum, Mul, Neg, Pow, Sub
from .args import as_operand, const, norm_dims, raw
from .shape import matmul, where


@tensor_methods(functions=(
    "add", "sub", "mul", "div", "pow", "neg", "abs", "multiply", "divide", "subtract",
    "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "all", "any", "equal",
    "allclose", "logical_not", "square", "clamp", "clip", "maximum", "minimum",
    "masked_fill"))
class _Arithmetic:
    # ------------------------------------------------------------------ arithmetic
    def __add__(self, o):
        return Add.apply(self, o if isinstance(o, Tensor) else const(o))

    def __radd__(self, o):
        return Add.apply(const(o), self)

    def __sub__(self, o):
        return Sub.apply(self, o if isinstance(o, Tensor) else const(o))

    def __rsub__(self, o):
        return Sub.apply(const(o), self)

    def __mul__(self, o):
        return Mul.apply(self, o if isinstance(o, Tensor) else const(o))

    def __rmul__(self, o):
        return Mul.apply(const(o), self)

    def __truediv__(self, o):
        return Div.apply(self, o if isinstance(o, Tensor) else const(o))

    def __rtruediv__(self, o):
        return Div.apply(const(o), self)

    def __pow__(self, o):
        return Pow.apply(self, o if isinstance(o, Tensor) else const(o))

    def __rpow__(self, o):
        return Pow.apply(const(o), self)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(as_operand(o), self)

    def __neg__(self):
        return Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return Abs.apply(self)

    def __floordiv__(self, o):
        return Tensor._make(self._data // raw(o))

    def __mod__(self, o):
        return Tensor._make(self._data % raw(o))

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    matmul = __matmul__
    neg = __neg__
    abs = __abs__
    multiply = __mul__
    divide = __truediv__
    subtract = __sub__

    # ------------------------------------------------------------------ comparisons
    def __eq__(self, o):  # type: ignore[override]
        return Tensor._make(self._data == raw(o))

    def __ne__(self, o):  # type: ignore[override]
        return Tensor._make(self._data != raw(o))

    def __lt__(self, o):
        return Tensor._make(self._data < raw(o))

    def __le__(self, o):
        return Tensor._make(self._data <= raw(o))

    def __gt__(self, o):
        return Tensor._make(self._data > raw(o))

    def __ge__(self, o):
        return Tensor._make(self._data >= raw(o))

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def __invert__(self):
        return Tensor._make(~self._data)

    def __and__(self, o):
        return Tensor._make(self._data & raw(o))

    def __or__(self, o):
        return Tensor._make(self._data | raw(o))

    def __xor__(self, o):
        return Tensor._make(self._data ^ raw(o))

    def logical_not(self):
        return Tensor._make(np.logical_not(self._data))

    def isnan(self):
        return Tensor._make(np.isnan(self._data))

    def isinf(self):
        return Tensor._make(np.isinf(self._data))

    def isfinite(self):
        return Tensor._make(np.isfinite(self._data))

    def all(self, dim=None, keepdim=False):
        axes = norm_dims(dim, self.ndim, "all")
        return Tensor._make(np.all(self._data, axis=axes, keepdims=keepdim))

    def any(self, dim=None, keepdim=False):
        axes = norm_dims(dim, self.ndim, "any")
        return Tensor._make(np.any(self._data, axis=axes, keepdims=keepdim))

    def equal(self, o) -> builtins.bool:
        return self.shape == raw(o).shape and builtins.bool(np.array_equal(self._data, raw(o)))

    def allclose(self, o, rtol=1e-5, atol=1e-8) -> builtins.bool:
        return builtins.bool(np.allclose(self._data, raw(o), rtol=rtol, atol=atol))

    # ------------------------------------------------------------------ elementwise
    def square(self):
        return Mul.apply(self, self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return Clamp.apply(self, min=const(min), max=const(max))

    clip = clamp

    def maximum(self, o):
        return Maximum.apply(self, as_operand(o))

    def minimum(self, o):
        return Minimum.apply(self, as_operand(o))

    def where(self, cond, other):
        return where(cond, self, other)

    def masked_fill(self, mask, value):
        return where(mask, const(value), self)

