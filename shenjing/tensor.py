"""The Tensor: an ndarray plus what autograd needs, with PyTorch's names and semantics.

Every differentiable method is a thin call into a `Function` in `shenjing.ops`; this file
holds argument handling (dims, shapes, dtypes) and the checks that turn bad input into a
clear error at the user's call.
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from . import autograd
from .ops.elementwise import (
    Abs,
    Add,
    Cast,
    Clamp,
    Clone,
    Cos,
    Div,
    Exp,
    LeakyRelu,
    Log,
    Log1p,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Relu,
    Rsqrt,
    Sigmoid,
    Sign,
    Sin,
    Sqrt,
    Sub,
    Tanh,
    Where,
)
from .ops.linalg import MatMul
from .ops.movement import Cat, Expand, Flip, Gather, GetItem, Pad, Permute, Repeat, Reshape
from .ops.reduce import (
    Amax,
    Amin,
    LogSoftmax,
    LogSumExp,
    Mean,
    Norm2,
    NormP,
    Prod,
    Softmax,
    Std,
    Sum,
    Var,
)

__all__ = ["Tensor", "tensor", "from_numpy", "as_tensor", "float32", "float64", "float16",
           "int64", "int32", "int16", "int8", "uint8", "bool_", "get_default_dtype",
           "set_default_dtype"]

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")

_default_float = [float32]


def get_default_dtype() -> np.dtype:
    return _default_float[0]


def set_default_dtype(dtype) -> None:
    dtype = np.dtype(dtype)
    if dtype not in (float32, float64):
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _default_float[0] = dtype


def _resolve_dtype(dtype) -> np.dtype | None:
    if dtype is None:
        return None
    if dtype is float:
        return _default_float[0]
    if dtype is int:
        return int64
    if dtype is builtins.bool:
        return bool_
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}; use e.g. shenjing.float32") from None


def _to_array(data, dtype=None, copy: bool = True) -> np.ndarray:
    """Array for `data` with torch's default dtypes (float32 for floats, int64 for ints)."""
    if isinstance(data, Tensor):
        data = data.data
    dtype = _resolve_dtype(dtype)
    if dtype is not None:
        return np.array(data, dtype=dtype, copy=copy or None)
    if isinstance(data, np.ndarray):
        arr = np.array(data, copy=copy or None)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
            data = [x.data if isinstance(x, Tensor) else x for x in data]
        arr = np.array(data)
        if arr.dtype.kind == "f":
            arr = arr.astype(_default_float[0], copy=False)
    if arr.dtype.kind in "iu" and arr.dtype != uint8 and not isinstance(data, np.ndarray):
        arr = arr.astype(int64, copy=False)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {arr.dtype}")
    return arr


def _dims(dim, ndim: int, op: str) -> tuple | None:
    """Normalize dim (None, int or sequence) to None or a sorted tuple of axes in range."""
    if dim is None:
        return None
    items = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in items:
        d = int(d)
        n = max(ndim, 1)
        if not -n <= d < n:
            raise IndexError(
                f"{op}: dimension {d} is out of range for a tensor with {ndim} dimension(s) "
                f"(expected a dim in [{-n}, {n - 1}])"
            )
        out.append(d % n if ndim else 0)
    if ndim == 0:
        return None
    return tuple(sorted(set(out)))


def _dim1(dim: int, ndim: int, op: str) -> int:
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    return _dims(dim, ndim, op)[0] if ndim else 0


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _const(x):
    """A non-Tensor operand: Python numbers pass; NumPy scalars become Python numbers so a
    float32 tensor times np.float64(2) stays float32."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    return x


class Tensor:
    """A multi-dimensional array that can record the operations applied to it."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data: Any, dtype=None, requires_grad: bool = False) -> None:
        self.data = _to_array(data, dtype, copy=False)
        self.grad: Tensor | None = None
        self._ctx = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def device(self) -> str:
        return "cpu"

    is_cuda = False

    @property
    def T(self) -> "Tensor":
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self) -> "Tensor":
        return self.transpose(-2, -1)

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[_dim1(dim, self.ndim, "size")]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def element_size(self) -> int:
        return self.data.itemsize

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied), as torch's .numpy() on CPU."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"item: only a tensor with one element can be converted to a Python number; "
                f"this one has shape {tuple(self.shape)}"
            )
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __bool__(self) -> builtins.bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return builtins.bool(self.data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if self.data.size == 1 and self.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        extras = []
        empty = self.data.size == 0
        if empty and self.ndim > 1:
            extras.append(f"size={tuple(self.shape)}")
        if self.dtype not in (float32, int64, bool_) or (empty and self.dtype != float32):
            extras.append(f"dtype=shenjing.{self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        prefix = "tensor("
        # torch prints "1., 2." when every float is integral, else four fixed decimals
        finite = self.data[np.isfinite(self.data)] if self.dtype.kind == "f" else self.data
        fixed = self.dtype.kind == "f" and builtins.bool(np.any(finite != np.round(finite)))
        body = "[]" if empty else np.array2string(
            self.data, separator=", ", prefix=prefix, precision=4, suppress_small=False,
            threshold=1000, floatmode="fixed" if fixed else "maxprec")
        return prefix + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: builtins.bool = True) -> "Tensor":
        if requires_grad and self.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require gradients; this tensor has dtype "
                f"{self.dtype} (convert with .float() first)"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError(
                "requires_grad_(False) on a non-leaf tensor; use .detach() to cut it from "
                "the graph"
            )
        self.requires_grad = builtins.bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph: builtins.bool = False) -> None:
        """Accumulate the gradient of this tensor into the `.grad` of every leaf."""
        autograd.backward(self, gradient, retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, cut from the graph."""
        return _wrap(self.data)

    def detach_(self) -> "Tensor":
        self._ctx = None
        self.requires_grad = False
        return self

    def retain_grad(self) -> None:
        raise NotImplementedError("retain_grad is not supported: backward is array-level")

    # ------------------------------------------------------------------ dtype / device
    def to(self, *args, **kwargs) -> "Tensor":
        """`to(dtype)` casts; `to('cpu')`/`to(device)` is a no-op on the CPU backend."""
        dtype = kwargs.get("dtype")
        for a in args:
            if isinstance(a, (str, Device)):
                _check_device(a)
            elif isinstance(a, Tensor):
                dtype = a.dtype
            else:
                dtype = a
        if "device" in kwargs:
            _check_device(kwargs["device"])
        return self if dtype is None else self.type(dtype)

    def type(self, dtype=None):
        if dtype is None:
            return f"shenjing.{self.dtype}"
        dtype = _resolve_dtype(dtype)
        if dtype == self.dtype:
            return self
        if self.requires_grad and dtype.kind == "f":
            return Cast.apply(self, dtype=dtype)
        return _wrap(self.data.astype(dtype))

    def float(self) -> "Tensor":
        return self.type(float32)

    def double(self) -> "Tensor":
        return self.type(float64)

    def half(self) -> "Tensor":
        return self.type(float16)

    def long(self) -> "Tensor":
        return self.type(int64)

    def int(self) -> "Tensor":
        return self.type(int32)

    def bool(self) -> "Tensor":
        return self.type(bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.type(other.dtype)

    def cpu(self) -> "Tensor":
        return self

    def cuda(self, *args, **kwargs) -> "Tensor":
        raise RuntimeError("shenjing runs on the CPU (NumPy); there is no CUDA device")

    def contiguous(self) -> "Tensor":
        return self

    def clone(self) -> "Tensor":
        return Clone.apply(self)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, o):
        return Add.apply(self, o if isinstance(o, Tensor) else _const(o))

    def __radd__(self, o):
        return Add.apply(_const(o), self)

    def __sub__(self, o):
        return Sub.apply(self, o if isinstance(o, Tensor) else _const(o))

    def __rsub__(self, o):
        return Sub.apply(_const(o), self)

    def __mul__(self, o):
        return Mul.apply(self, o if isinstance(o, Tensor) else _const(o))

    def __rmul__(self, o):
        return Mul.apply(_const(o), self)

    def __truediv__(self, o):
        return Div.apply(self, o if isinstance(o, Tensor) else _const(o))

    def __rtruediv__(self, o):
        return Div.apply(_const(o), self)

    def __pow__(self, o):
        return Pow.apply(self, o if isinstance(o, Tensor) else _const(o))

    def __rpow__(self, o):
        return Pow.apply(_const(o), self)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(_as(o), self)

    def __neg__(self):
        return Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return Abs.apply(self)

    def __floordiv__(self, o):
        return _wrap(self.data // _raw(o))

    def __mod__(self, o):
        return _wrap(self.data % _raw(o))

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

    # in-place forms: true in-place on tensors outside the graph; rebinding otherwise
    def _inplace(self, o, fn, name: str) -> "Tensor":
        o_req = isinstance(o, Tensor) and o.requires_grad
        if autograd.is_grad_enabled() and (self.requires_grad or o_req):
            if self._ctx is None and self.requires_grad:
                raise RuntimeError(
                    f"{name}: a leaf tensor that requires grad is being used in an in-place "
                    f"operation; wrap the update in `with shenjing.no_grad():`"
                )
            return fn(self, o)  # out of place: the graph stays correct, `x op= y` rebinds x
        src = _raw(o)
        ufunc = {"__iadd__": np.add, "__isub__": np.subtract, "__imul__": np.multiply,
                 "__itruediv__": np.divide}[name]
        try:
            ufunc(self.data, src, out=self.data, casting="same_kind")
        except ValueError:
            raise ValueError(f"{name}: cannot update a tensor of shape {tuple(self.shape)} "
                             f"in place with an operand of shape {tuple(np.shape(src))}") from None
        return self

    def __iadd__(self, o):
        return self._inplace(o, Tensor.__add__, "__iadd__")

    def __isub__(self, o):
        return self._inplace(o, Tensor.__sub__, "__isub__")

    def __imul__(self, o):
        return self._inplace(o, Tensor.__mul__, "__imul__")

    def __itruediv__(self, o):
        return self._inplace(o, Tensor.__truediv__, "__itruediv__")

    def _check_inplace(self, name: str) -> None:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(
                f"{name}: a tensor that requires grad is being modified in place; "
                f"wrap the update in `with shenjing.no_grad():`"
            )

    def add_(self, o, alpha: float = 1) -> "Tensor":
        self._check_inplace("add_")
        o = _raw(o)
        self.data += o if alpha == 1 else o * alpha
        return self

    def sub_(self, o, alpha: float = 1) -> "Tensor":
        return self.add_(o, alpha=-alpha)

    def mul_(self, o) -> "Tensor":
        self._check_inplace("mul_")
        self.data *= _raw(o)
        return self

    def div_(self, o) -> "Tensor":
        self._check_inplace("div_")
        self.data /= _raw(o)
        return self

    def zero_(self) -> "Tensor":
        self._check_inplace("zero_")
        self.data[...] = 0
        return self

    def fill_(self, value) -> "Tensor":
        self._check_inplace("fill_")
        self.data[...] = _raw(value)
        return self

    def copy_(self, src) -> "Tensor":
        self._check_inplace("copy_")
        src = _raw(src)
        if np.shape(src) != self.shape:
            try:
                np.broadcast_to(src, self.shape)
            except ValueError:
                raise ValueError(f"copy_: source of shape {np.shape(src)} cannot be copied "
                                 f"into a tensor of shape {self.shape}") from None
        self.data[...] = src
        return self

    def clamp_(self, min=None, max=None) -> "Tensor":
        self._check_inplace("clamp_")
        np.clip(self.data, min, max, out=self.data)
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator=None) -> "Tensor":
        from .random import get_rng
        self._check_inplace("uniform_")
        self.data[...] = get_rng(generator).uniform(a, b, self.shape)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator=None) -> "Tensor":
        from .random import get_rng
        self._check_inplace("normal_")
        self.data[...] = get_rng(generator).normal(mean, std, self.shape)
        return self

    def __setitem__(self, index, value) -> None:
        if self._ctx is not None or (self.requires_grad and autograd.is_grad_enabled()):
            raise RuntimeError(
                "__setitem__: cannot assign into a tensor that is part of a graph or requires "
                "grad; assign under `with shenjing.no_grad():` to a leaf, or build a new tensor"
            )
        self.data[_index(index)] = _raw(value)

    # ------------------------------------------------------------------ comparisons
    def __eq__(self, o):  # type: ignore[override]
        return _wrap(self.data == _raw(o))

    def __ne__(self, o):  # type: ignore[override]
        return _wrap(self.data != _raw(o))

    def __lt__(self, o):
        return _wrap(self.data < _raw(o))

    def __le__(self, o):
        return _wrap(self.data <= _raw(o))

    def __gt__(self, o):
        return _wrap(self.data > _raw(o))

    def __ge__(self, o):
        return _wrap(self.data >= _raw(o))

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def __invert__(self):
        return _wrap(~self.data)

    def __and__(self, o):
        return _wrap(self.data & _raw(o))

    def __or__(self, o):
        return _wrap(self.data | _raw(o))

    def __xor__(self, o):
        return _wrap(self.data ^ _raw(o))

    def logical_not(self):
        return _wrap(np.logical_not(self.data))

    def isnan(self):
        return _wrap(np.isnan(self.data))

    def isinf(self):
        return _wrap(np.isinf(self.data))

    def isfinite(self):
        return _wrap(np.isfinite(self.data))

    def all(self, dim=None, keepdim=False):
        return _wrap(np.all(self.data, axis=_dims(dim, self.ndim, "all"), keepdims=keepdim))

    def any(self, dim=None, keepdim=False):
        return _wrap(np.any(self.data, axis=_dims(dim, self.ndim, "any"), keepdims=keepdim))

    def equal(self, o) -> builtins.bool:
        return self.shape == _raw(o).shape and builtins.bool(np.array_equal(self.data, _raw(o)))

    def allclose(self, o, rtol=1e-5, atol=1e-8) -> builtins.bool:
        return builtins.bool(np.allclose(self.data, _raw(o), rtol=rtol, atol=atol))

    # ------------------------------------------------------------------ elementwise
    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def log1p(self):
        return Log1p.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def rsqrt(self):
        return Rsqrt.apply(self)

    def sin(self):
        return Sin.apply(self)

    def cos(self):
        return Cos.apply(self)

    def tanh(self):
        return Tanh.apply(self)

    def sigmoid(self):
        return Sigmoid.apply(self)

    def relu(self):
        return Relu.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01):
        return LeakyRelu.apply(self, negative_slope=negative_slope)

    def sign(self):
        return Sign.apply(self)

    def square(self):
        return Mul.apply(self, self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return Clamp.apply(self, min=_const(min), max=_const(max))

    clip = clamp

    def maximum(self, o):
        return Maximum.apply(self, _as(o))

    def minimum(self, o):
        return Minimum.apply(self, _as(o))

    def where(self, cond, other):
        return where(cond, self, other)

    def masked_fill(self, mask, value):
        return where(mask, _const(value), self)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim: builtins.bool = False, dtype=None):
        x = self if dtype is None else self.type(dtype)
        if x.dtype == bool_:
            x = x.long()
        return Sum.apply(x, dim=_dims(dim, x.ndim, "sum"), keepdim=keepdim)

    def mean(self, dim=None, keepdim: builtins.bool = False, dtype=None):
        x = self if dtype is None else self.type(dtype)
        if x.dtype.kind not in "fc":
            raise TypeError(f"mean: expected a floating-point tensor, got dtype {x.dtype} "
                            "(call .float() first)")
        return Mean.apply(x, dim=_dims(dim, x.ndim, "mean"), keepdim=keepdim)

    def prod(self, dim=None, keepdim: builtins.bool = False):
        return Prod.apply(self, dim=_dims(dim, self.ndim, "prod"), keepdim=keepdim)

    def amax(self, dim=None, keepdim: builtins.bool = False):
        return Amax.apply(self, dim=_dims(dim, self.ndim, "amax"), keepdim=keepdim)

    def amin(self, dim=None, keepdim: builtins.bool = False):
        return Amin.apply(self, dim=_dims(dim, self.ndim, "amin"), keepdim=keepdim)

    def _extremum(self, dim, keepdim, arg, name):
        if dim is None:
            return (Amax if name == "max" else Amin).apply(self)
        if isinstance(dim, Tensor):  # torch.max(a, b) is elementwise
            return (Maximum if name == "max" else Minimum).apply(self, dim)
        d = _dim1(dim, self.ndim, name)
        if self.shape and self.shape[d] == 0:
            raise ValueError(f"{name}: cannot reduce over dimension {d} of size 0")
        idx = arg(self.data, axis=d, keepdims=True)
        values = Gather.apply(self, idx, dim=d)
        if not keepdim:
            values = values.squeeze(d)
            idx = np.squeeze(idx, d)
        return MinMaxResult(values, _wrap(idx.astype(int64)))

    def max(self, dim=None, keepdim: builtins.bool = False):
        """max() -> value; max(dim) -> (values, indices) as torch.max."""
        return self._extremum(dim, keepdim, np.argmax, "max")

    def min(self, dim=None, keepdim: builtins.bool = False):
        return self._extremum(dim, keepdim, np.argmin, "min")

    def argmax(self, dim=None, keepdim: builtins.bool = False):
        d = None if dim is None else _dim1(dim, self.ndim, "argmax")
        return _wrap(np.asarray(np.argmax(self.data, axis=d, keepdims=keepdim), dtype=int64))

    def argmin(self, dim=None, keepdim: builtins.bool = False):
        d = None if dim is None else _dim1(dim, self.ndim, "argmin")
        return _wrap(np.asarray(np.argmin(self.data, axis=d, keepdims=keepdim), dtype=int64))

    def var(self, dim=None, unbiased=None, keepdim: builtins.bool = False, correction=None):
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return Var.apply(self, dim=_dims(dim, self.ndim, "var"), correction=correction,
                         keepdim=keepdim)

    def std(self, dim=None, unbiased=None, keepdim: builtins.bool = False, correction=None):
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return Std.apply(self, dim=_dims(dim, self.ndim, "std"), correction=correction,
                         keepdim=keepdim)

    def logsumexp(self, dim=None, keepdim: builtins.bool = False):
        return LogSumExp.apply(self, dim=_dims(dim, self.ndim, "logsumexp"), keepdim=keepdim)

    def norm(self, p=2, dim=None, keepdim: builtins.bool = False):
        dims = _dims(dim, self.ndim, "norm")
        if p in (2, "fro"):
            return Norm2.apply(self, dim=dims, keepdim=keepdim)
        if p == 1:
            return Sum.apply(Abs.apply(self), dim=dims, keepdim=keepdim)
        if p in (float("inf"), "inf"):
            return Amax.apply(Abs.apply(self), dim=dims, keepdim=keepdim)
        if isinstance(p, (int, float)) and p > 0:
            return NormP.apply(self, p=float(p), dim=dims, keepdim=keepdim)
        raise ValueError(f"norm: unsupported order p={p!r}; use 1, 2, inf or a positive number")

    def softmax(self, dim: int = -1):
        return Softmax.apply(self, dim=_dim1(dim, self.ndim, "softmax"))

    def log_softmax(self, dim: int = -1):
        return LogSoftmax.apply(self, dim=_dim1(dim, self.ndim, "log_softmax"))

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        try:
            return Reshape.apply(self, shape=shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(self.shape)} "
                             f"({self.numel()} elements) into shape {shape}") from None

    view = reshape

    def view_as(self, other):
        return self.reshape(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        if self.ndim == 0:
            return self.reshape(1)
        s = _dim1(start_dim, self.ndim, "flatten")
        e = _dim1(end_dim, self.ndim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        return self.reshape(shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])

    def unflatten(self, dim: int, sizes):
        d = _dim1(dim, self.ndim, "unflatten")
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dims = _dims(dim, self.ndim, "squeeze") or ()
        return self.reshape(tuple(n for i, n in enumerate(self.shape)
                                  if not (i in dims and n == 1)))

    def unsqueeze(self, dim: int):
        d = _dim1(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def permute(self, *dims):
        dims = _shape_arg(dims)
        axes = tuple(_dim1(d, self.ndim, "permute") for d in dims) if self.ndim else dims
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of the "
                             f"{self.ndim} dimensions of a tensor of shape {tuple(self.shape)}")
        return Permute.apply(self, dims=axes)

    def transpose(self, dim0: int, dim1: int):
        a, b = _dim1(dim0, self.ndim, "transpose"), _dim1(dim1, self.ndim, "transpose")
        dims = list(range(self.ndim))
        dims[a], dims[b] = dims[b], dims[a]
        return Permute.apply(self, dims=tuple(dims))

    swapaxes = transpose

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def expand(self, *shape):
        shape = _shape_arg(shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: target shape {shape} has fewer dimensions than the "
                             f"tensor's shape {tuple(self.shape)}")
        full = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        return self.broadcast_to(full)

    def broadcast_to(self, *shape):
        shape = _shape_arg(shape)
        try:
            np.broadcast_shapes(self.shape, shape)
            if np.broadcast_shapes(self.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {tuple(self.shape)} cannot be "
                             f"broadcast to shape {shape}") from None
        return Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.broadcast_to(other.shape)

    def repeat(self, *repeats):
        repeats = _shape_arg(repeats)
        if len(repeats) < self.ndim:
            raise ValueError(f"repeat: {len(repeats)} repeat counts given for a tensor with "
                             f"{self.ndim} dimensions (need at least {self.ndim})")
        return Repeat.apply(self, repeats=repeats)

    def split(self, split_size_or_sections, dim: int = 0):
        d = _dim1(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError("split: split_size must be positive")
            sizes = [min(split_size_or_sections, n - i)
                     for i in range(0, n, split_size_or_sections)]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sections {sizes} sum to {sum(sizes)}, but dimension "
                                 f"{d} has size {n}")
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def chunk(self, chunks: int, dim: int = 0):
        d = _dim1(dim, self.ndim, "chunk")
        size = -(-self.shape[d] // chunks)
        return self.split(max(size, 1), d)

    def narrow(self, dim: int, start: int, length: int):
        d = _dim1(dim, self.ndim, "narrow")
        index = (slice(None),) * d + (slice(start, start + length),)
        return GetItem.apply(self, index=index)

    def unbind(self, dim: int = 0):
        d = _dim1(dim, self.ndim, "unbind")
        return tuple(self.select(d, i) for i in range(self.shape[d]))

    def select(self, dim: int, index: int):
        d = _dim1(dim, self.ndim, "select")
        return GetItem.apply(self, index=(slice(None),) * d + (index,))

    def flip(self, *dims):
        dims = _dims(_shape_arg(dims), self.ndim, "flip")
        return Flip.apply(self, dims=dims)

    def gather(self, dim: int, index):
        d = _dim1(dim, self.ndim, "gather")
        return Gather.apply(self, _raw(index).astype(np.intp, copy=False), dim=d)

    def take_along_dim(self, indices, dim: int):
        return self.gather(dim, indices)

    def __getitem__(self, index):
        return GetItem.apply(self, index=_index(index))

    def index_select(self, dim: int, index):
        d = _dim1(dim, self.ndim, "index_select")
        return GetItem.apply(self, index=(slice(None),) * d + (_raw(index),))

    def one_hot(self, num_classes: int = -1):
        return one_hot(self, num_classes)


class MinMaxResult(tuple):
    """(values, indices) with attribute access, like torch.return_types.max."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


class Device(str):
    """torch.device stand-in: 'cpu' is the only device shenjing has."""

    def __new__(cls, spec: str = "cpu", index=None):
        _check_device(spec)
        return super().__new__(cls, "cpu")

    @property
    def type(self) -> str:
        return "cpu"


def _check_device(dev) -> None:
    if str(dev).split(":")[0] not in ("cpu",):
        raise RuntimeError(f"device {dev!r} is not available: shenjing runs on the CPU")


def _wrap(arr: np.ndarray) -> Tensor:
    t = Tensor.__new__(Tensor)
    t.data = arr if type(arr) is np.ndarray else np.asarray(arr)
    t.grad = None
    t.requires_grad = False
    t._ctx = None
    return t


def _raw(x):
    return x.data if isinstance(x, Tensor) else _const(x)


def _as(x) -> Tensor:
    return x if isinstance(x, Tensor) else _wrap(np.asarray(_const(x)))


def _index(index):
    """Turn Tensor / list parts of an index into arrays, keeping slices, None and Ellipsis."""
    if isinstance(index, tuple):
        return tuple(_index_part(i) for i in index)
    return _index_part(index)


def _index_part(i):
    if isinstance(i, Tensor):
        return i.data if i.ndim else i.data.item()
    if isinstance(i, list):
        return np.asarray(i)
    return i


# ---------------------------------------------------------------------- free functions


def tensor(data: Any, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (float32 for floats, int64 for ints)."""
    t = _wrap(_to_array(data, dtype, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data: Any, dtype=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or data.dtype == _resolve_dtype(dtype)):
        return data
    return _wrap(_to_array(data, dtype, copy=False))


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing `arr`'s memory and dtype."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(arr).__name__}")
    return _wrap(arr)


def matmul(a: Tensor, b) -> Tensor:
    """torch.matmul, with a clear error for mismatched inner dimensions."""
    b = _as(b)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                         f"{tuple(sa)} and {tuple(sb)}")
    ka = sa[-1]
    kb = sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        raise ValueError(f"matmul: shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied "
                         f"(inner dimensions {ka} and {kb} differ)")
    if len(sa) > 2 or len(sb) > 2:
        try:
            np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of shapes {tuple(sa)} and "
                             f"{tuple(sb)} cannot be broadcast together") from None
    return MatMul.apply(a, b)


def where(cond, a, b) -> Tensor:
    """Elements of a where cond is true, else of b (a and b may be scalars)."""
    c = _raw(cond)
    a = a if isinstance(a, Tensor) else _const(a)
    b = b if isinstance(b, Tensor) else _const(b)
    return Where.apply(np.asarray(c, dtype=bool), a, b)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate tensors along an existing dimension."""
    tensors = [_as(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ndim = tensors[0].ndim
    d = _dim1(dim, ndim, "cat")
    ref = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.ndim != ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref)) if j != d):
            raise ValueError(f"cat: tensor {i} has shape {tuple(t.shape)}, which does not "
                             f"match tensor 0's shape {tuple(ref)} except in dimension {d}")
    return Cat.apply(*tensors, dim=d)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Stack same-shaped tensors along a new dimension."""
    tensors = [_as(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have the same shape; tensor {i} has "
                             f"shape {tuple(t.shape)}, tensor 0 has {tuple(tensors[0].shape)}")
    d = _dim1(dim, tensors[0].ndim + 1, "stack")
    return cat([t.unsqueeze(d) for t in tensors], d)


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """torch.nn.functional.pad: `pad` lists (left, right) pairs starting from the last dim."""
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; use 'constant'")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: padding {tuple(pad)} must have an even length of at most "
                         f"2 * ndim = {2 * x.ndim}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {tuple(pad)} is not supported")
    width = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        width[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return Pad.apply(x, pad_width=tuple(width), value=value)


def one_hot(x: Tensor, num_classes: int = -1) -> Tensor:
    """Integer class indices -> int64 one-hot vectors along a new last dimension."""
    idx = _raw(x)
    if np.asarray(idx).dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got "
                        f"{np.asarray(idx).dtype}")
    idx = np.asarray(idx)
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got range "
                         f"[{idx.min()}, {idx.max()}]")
    out = np.zeros(idx.shape + (num_classes,), dtype=int64)
    np.put_along_axis(out, idx[..., None], 1, axis=-1)
    return _wrap(out)


autograd._Tensor = Tensor
