"""Tensor basics: size and conversion to Python, printing, dtype and device changes."""

from __future__ import annotations

import builtins

import numpy as np

from ..autograd.engine import Tensor, tensor_methods
from ..dtypes import bool_, float16, float32, float64, int32, int64, resolve_dtype
from ..ops.elementwise import Cast, Clone
from ..size import Size
from .args import Device, check_device, norm_dim


class CudaUnavailableError(RuntimeError, AssertionError):
    """`.cuda()` without a GPU: torch raises an AssertionError here, so catch either."""


def no_cuda_error() -> CudaUnavailableError:
    """The error `.cuda()` raises (tensors and modules), worded as torch's on a CPU build."""
    return CudaUnavailableError(
        "shenjing not compiled with CUDA enabled: it runs on the CPU (NumPy) only; pick "
        "the device with `'cuda' if shenjing.cuda.is_available() else 'cpu'`")


@tensor_methods(functions=("numel", "clone", "detach", "is_floating_point", "is_complex"))
class _Basics:
    # ------------------------------------------------------------------ basics
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
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[norm_dim(dim, self.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.itemsize

    def item(self):
        if self._data.size != 1:
            raise ValueError(
                f"item: only a tensor with one element can be converted to a Python number; "
                f"this one has shape {tuple(self.shape)}"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> builtins.bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous"
            )
        return builtins.bool(self._data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if self._data.size == 1 and self.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        extras = []
        empty = self._data.size == 0
        if empty and self.ndim > 1:
            extras.append(f"size={tuple(self.shape)}")
        if self.dtype not in (float32, int64, bool_) or (empty and self.dtype != float32):
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        prefix = "tensor("
        # torch prints "1., 2." when every float is integral, else four fixed decimals
        finite = self._data[np.isfinite(self._data)] if self.dtype.kind == "f" else self._data
        fixed = self.dtype.kind == "f" and builtins.bool(np.any(finite != np.round(finite)))
        body = "[]" if empty else np.array2string(
            self._data, separator=", ", prefix=prefix, precision=4, suppress_small=False,
            threshold=1000, floatmode="fixed" if fixed else "maxprec")
        return prefix + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------------ dtype / device
    def to(self, *args, **kwargs) -> "Tensor":
        """`to(dtype)` casts; `to('cpu')`/`to(device)` is a no-op on the CPU backend."""
        dtype = kwargs.get("dtype")
        for a in args:
            if isinstance(a, (str, Device)):
                check_device(a)
            elif isinstance(a, Tensor):
                dtype = a.dtype
            else:
                dtype = a
        if "device" in kwargs:
            check_device(kwargs["device"])
        return self if dtype is None else self.type(dtype)

    def type(self, dtype=None):
        if dtype is None:
            return str(self.dtype)
        dtype = resolve_dtype(dtype)
        if dtype == self._data.dtype:
            return self
        if self.requires_grad and dtype.kind == "f":
            return Cast.apply(self, dtype=dtype)
        return Tensor._make(self._data.astype(dtype))

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

    def is_floating_point(self) -> builtins.bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> builtins.bool:
        return self.dtype.is_complex

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.type(other.dtype)

    def cpu(self) -> "Tensor":
        return self

    def cuda(self, *args, **kwargs) -> "Tensor":
        raise no_cuda_error()

    def contiguous(self) -> "Tensor":
        return self

    def clone(self) -> "Tensor":
        return Clone.apply(self)

