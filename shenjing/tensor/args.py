"""Argument handling shared by the Tensor methods: dims, shapes, operands, indices."""

from __future__ import annotations

import numpy as np

from ..autograd.engine import Tensor

__all__ = ["norm_dims", "norm_dim", "shape_arg", "const", "raw", "as_operand", "index_arg",
           "MinMaxResult", "Device", "check_device"]


def norm_dims(dim, ndim: int, op: str) -> tuple | None:
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


def norm_dim(dim: int, ndim: int, op: str) -> int:
    """One dim, checked and made non-negative."""
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    return norm_dims(dim, ndim, op)[0] if ndim else 0


def shape_arg(shape) -> tuple:
    """`f(2, 3)` and `f((2, 3))` both give (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def const(x):
    """A non-Tensor operand: Python numbers pass; NumPy scalars become Python numbers so a
    float32 tensor times np.float64(2) stays float32."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    return x


def raw(x):
    """The array of a tensor, or a constant operand as `const` makes it."""
    return x._data if isinstance(x, Tensor) else const(x)


def as_operand(x) -> Tensor:
    """A tensor for a tensor, array or number operand (shared, not copied)."""
    return x if isinstance(x, Tensor) else Tensor._make(np.asarray(const(x)))


def index_arg(index):
    """Turn Tensor / list parts of an index into arrays, keeping slices, None and Ellipsis."""
    if isinstance(index, tuple):
        return tuple(_index_part(i) for i in index)
    return _index_part(index)


def _index_part(i):
    if isinstance(i, Tensor):
        return i._data if i.ndim else i._data.item()
    if isinstance(i, list):
        return np.asarray(i)
    return i


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
        check_device(spec)
        return super().__new__(cls, "cpu")

    @property
    def type(self) -> str:
        return "cpu"


def check_device(dev) -> None:
    if str(dev).split(":")[0] not in ("cpu",):
        raise RuntimeError(f"device {dev!r} is not available: shenjing runs on the CPU")
