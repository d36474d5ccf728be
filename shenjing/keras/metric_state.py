"""The state of a Keras metric made with `Metric.add_variable`: an array with Keras's
assign / assign_add / assign_sub that custom metrics accumulate into."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..tensor import Tensor

__all__ = ["MetricVariable"]


def _array(x: Any) -> np.ndarray:
    if isinstance(x, MetricVariable):
        return x.value
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


class MetricVariable:
    """A metric's state (Keras's `add_variable`): an array with assign / assign_add /
    assign_sub, usable in arithmetic and convertible with float() or np.asarray()."""

    def __init__(self, value: np.ndarray, name: str) -> None:
        self.name = name
        self._initial = np.array(value, copy=True)
        self.value = np.array(value, copy=True)

    def assign(self, value: Any) -> None:
        self.value = np.broadcast_to(_array(value), self._initial.shape).astype(
            self._initial.dtype).copy()

    def assign_add(self, value: Any) -> None:
        self.assign(self.value + _array(value))

    def assign_sub(self, value: Any) -> None:
        self.assign(self.value - _array(value))

    def reset(self) -> None:
        self.value = self._initial.copy()

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    @property
    def shape(self) -> tuple:
        return self.value.shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return f"<MetricVariable {self.name}={self.value!r}>"


def _binary_op(name: str) -> Callable:
    op = getattr(np.ndarray, name)
    return lambda self, other: op(self.value, _array(other))


for _op in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
            "__truediv__", "__rtruediv__", "__pow__", "__lt__", "__le__", "__gt__", "__ge__"):
    setattr(MetricVariable, _op, _binary_op(_op))
