"""Merge layers of the functional API: Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate. Elementwise merges keep a common channels-first layout (a residual block stays
channels-first); Concatenate works in Keras's channels-last layout."""

from __future__ import annotations

from functools import reduce
from typing import Any

from ...tensor import Tensor, cat
from .base import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


def _broadcast(shapes: list) -> tuple:
    out = list(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(out):
            raise ValueError(f"merge: inputs have different ranks: {shapes}")
        for i, (a, b) in enumerate(zip(out, s)):
            if a is None or b is None:
                out[i] = a if b is None else b if a is None else a
            elif a != b and 1 not in (a, b):
                raise ValueError(f"merge: inputs with shapes {shapes} cannot be combined")
            else:
                out[i] = max(a, b)
    return tuple(out)


class _Merge(Layer):
    """Elementwise merges: inputs held alike (all channels-first) are combined as held."""

    _min_inputs = 2
    _merges_in_any_layout = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built = True

    def _check(self, inputs: Any) -> list:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self._min_inputs:
            raise ValueError(f"A {type(self).__name__} layer should be called on a list of at "
                             f"least {self._min_inputs} inputs")
        return list(inputs)

    def _combine(self, xs: list) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, inputs: Any) -> Tensor:
        return self._combine(self._check(inputs))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return _broadcast([tuple(s) for s in self._check(input_shape)])


class Add(_Merge):
    def _combine(self, xs: list) -> Tensor:
        return reduce(lambda a, b: a + b, xs)


class Subtract(_Merge):
    def _check(self, inputs: Any) -> list:
        xs = super()._check(inputs)
        if len(xs) != 2:
            raise ValueError("A Subtract layer should be called on exactly 2 inputs")
        return xs

    def _combine(self, xs: list) -> Tensor:
        return xs[0] - xs[1]


class Multiply(_Merge):
    def _combine(self, xs: list) -> Tensor:
        return reduce(lambda a, b: a * b, xs)


class Average(_Merge):
    def _combine(self, xs: list) -> Tensor:
        return reduce(lambda a, b: a + b, xs) * (1.0 / len(xs))


class Maximum(_Merge):
    def _combine(self, xs: list) -> Tensor:
        return reduce(lambda a, b: a.maximum(b), xs)


class Minimum(_Merge):
    def _combine(self, xs: list) -> Tensor:
        return reduce(lambda a, b: a.minimum(b), xs)


class Concatenate(_Merge):
    """Concatenate along `axis` (default -1, the channels of a channels-last tensor)."""

    _min_inputs = 1
    _merges_in_any_layout = False  # `axis` counts in the channels-last layout

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _combine(self, xs: list) -> Tensor:
        return cat(xs, dim=self.axis)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shapes = [list(s) for s in self._check(input_shape)]
        axis = self.axis % len(shapes[0])
        out = list(shapes[0])
        sizes = [s[axis] for s in shapes]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}

