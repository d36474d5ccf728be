"""Dtypes and the default-dtype rule, below everything else in the core.

A shenjing dtype (`shenjing.float32`, ...) is one canonical `dtype` object per NumPy dtype
that prints as torch's do (`shenjing.float32`) and has torch's attributes
(`is_floating_point`, `is_signed`, `itemsize`). NumPy accepts it wherever it takes a dtype
(it carries the real one in `.dtype`), and it compares equal to that NumPy dtype, its scalar
type and its name (`x.dtype == "float32"`, as Keras code writes), with the same hash, so
tables keyed either way find it. Internally the core keeps working with NumPy dtypes
(`resolve_dtype`); file formats write `dtype.name` ("float32"), never `str(dtype)`.

The rule for floats is torch's: Python floats and float math on integer tensors
(`int / int`, `int.exp()`) give the default float dtype, which `set_default_dtype` changes.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

__all__ = ["dtype", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
           "uint8", "uint16", "uint32", "uint64", "complex64", "complex128", "bool_",
           "get_default_dtype", "set_default_dtype", "resolve_dtype", "as_dtype",
           "is_floating", "finfo", "iinfo"]


class dtype:  # noqa: N801  (torch.dtype)
    """A tensor element type: `shenjing.float32`, `shenjing.int64`, `shenjing.bool`, ...

    One instance exists per NumPy dtype (`as_dtype` finds it), so `x.dtype is
    shenjing.float32` holds for every float32 tensor. Other NumPy dtype attributes (`kind`,
    `char`, `type`, ...) are read through to the NumPy dtype in `.dtype`.
    """

    __slots__ = ("dtype", "name", "kind", "itemsize", "is_floating_point", "is_complex",
                 "is_signed", "_hash")

    def __init__(self, np_dtype: np.dtype) -> None:
        self.dtype = np_dtype
        self.name = np_dtype.name
        self.kind = np_dtype.kind
        self.itemsize = np_dtype.itemsize
        self.is_floating_point = np_dtype.kind == "f"
        self.is_complex = np_dtype.kind == "c"
        self.is_signed = np_dtype.kind in "ifc"
        self._hash = hash(np_dtype)

    def __repr__(self) -> str:
        return f"shenjing.{self.name}"

    __str__ = __repr__

    def __eq__(self, other: Any) -> builtins.bool:
        if other is self:
            return True
        if isinstance(other, dtype):
            return self.dtype == other.dtype
        if other is None:  # np.dtype(None) is float64; None is no dtype
            return False
        if isinstance(other, str) and other.startswith("shenjing."):
            other = other[len("shenjing."):]
        elif not isinstance(other, (str, type, np.dtype)):
            return False  # never np.dtype(a tensor or array), which reads its .dtype
        try:
            return self.dtype == np.dtype(other)
        except (TypeError, ValueError):
            return False

    def __ne__(self, other: Any) -> builtins.bool:
        return other is not self and not self.__eq__(other)

    def __hash__(self) -> int:
        return self._hash

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocols (copy, pickle, NumPy's) are never forwarded
            raise AttributeError(name)
        return getattr(self.dtype, name)

    def __reduce__(self):
        return as_dtype, (self.dtype,)

    def __copy__(self) -> "dtype":
        return self

    def __deepcopy__(self, memo: dict) -> "dtype":
        return self

    def to_real(self) -> "dtype":
        """The real dtype of a complex one (itself for a real dtype), as torch's."""
        return as_dtype(np.empty(0, self.dtype).real.dtype) if self.is_complex else self

    def to_complex(self) -> "dtype":
        """The complex dtype with this float's precision, as torch's."""
        if self.is_complex:
            return self
        if not self.is_floating_point:
            raise TypeError(f"to_complex: {self} is not a floating-point dtype")
        return as_dtype(np.result_type(self.dtype, np.complex64))


_CANONICAL: dict[np.dtype, dtype] = {}


def as_dtype(np_dtype) -> dtype:
    """The canonical shenjing dtype for a NumPy dtype (made once, then reused)."""
    found = _CANONICAL.get(np_dtype)
    if found is not None:
        return found
    np_dtype = np.dtype(np_dtype)
    found = _CANONICAL.get(np_dtype)
    if found is None:
        found = _CANONICAL[np_dtype] = dtype(np_dtype)
    return found


float16 = as_dtype(np.dtype("float16"))
float32 = as_dtype(np.dtype("float32"))
float64 = as_dtype(np.dtype("float64"))
int8 = as_dtype(np.dtype("int8"))
int16 = as_dtype(np.dtype("int16"))
int32 = as_dtype(np.dtype("int32"))
int64 = as_dtype(np.dtype("int64"))
uint8 = as_dtype(np.dtype("uint8"))
uint16 = as_dtype(np.dtype("uint16"))
uint32 = as_dtype(np.dtype("uint32"))
uint64 = as_dtype(np.dtype("uint64"))
complex64 = as_dtype(np.dtype("complex64"))
complex128 = as_dtype(np.dtype("complex128"))
bool_ = as_dtype(np.dtype("bool"))

_default_float = [float32]


def get_default_dtype() -> dtype:
    """The float dtype new float tensors and promoted integer math get (float32 unless set)."""
    return _default_float[0]


def set_default_dtype(d) -> None:
    """Set the default float dtype: float32 or float64, as torch.set_default_dtype."""
    resolved = resolve_dtype(d)
    if resolved not in (float32.dtype, float64.dtype):
        raise TypeError(f"set_default_dtype: expected shenjing.float32 or shenjing.float64, "
                        f"got {d!r}")
    _default_float[0] = as_dtype(resolved)


def resolve_dtype(d) -> np.dtype | None:
    """The NumPy dtype for what the user passed: shenjing/NumPy dtypes, `float`, `int`,
    `bool`, or names such as "float32"; None stays None. The core computes with these."""
    if d is None:
        return None
    if type(d) is dtype:
        return d.dtype
    if d is float:
        return _default_float[0].dtype
    if d is int:
        return int64.dtype
    if d is builtins.bool:
        return bool_.dtype
    if isinstance(d, str) and d.startswith("shenjing."):
        d = d[len("shenjing."):]
    try:
        return np.dtype(d)
    except TypeError:
        raise TypeError(f"unsupported dtype {d!r}; use e.g. shenjing.float32") from None


def is_floating(d) -> bool:
    return np.dtype(d).kind in "fc"


def finfo(d=None) -> np.finfo:
    """Limits of a float dtype (`eps`, `max`, `tiny`, ...), the default one if none given."""
    return np.finfo(resolve_dtype(float if d is None else d))


def iinfo(d) -> np.iinfo:
    """Limits of an integer dtype (`min`, `max`, `bits`)."""
    return np.iinfo(resolve_dtype(d))
