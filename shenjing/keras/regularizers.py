"""Weight regularizers (`kernel_regularizer=keras.regularizers.l2(0.01)`).

A regularizer maps a weight Tensor to a scalar penalty Tensor that `fit` adds to the loss,
so its gradient flows through the autograd like any other term. Keras's L2 is
`l2 * sum(w**2)`, without the 1/2 some texts use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .registry import Registry, serialize
from .registry import deserialize as _deserialize

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2",
           "get", "serialize", "deserialize"]

REGISTRY = Registry("regularizer")


class Regularizer:
    """Base class: `penalty = regularizer(weight)`."""

    def __call__(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Regularizer":
        return cls(**config)


def _check(name: str, value: float) -> float:
    value = float(value)
    if value < 0:
        raise ValueError(f"{name}: the regularization factor must be non-negative, got {value}")
    return value


@REGISTRY.register("l1_l2")
class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _check("L1L2(l1)", l1)
        self.l2 = _check("L1L2(l2)", l2)

    def __call__(self, x: Tensor) -> Tensor:
        out = None
        if self.l1:
            out = self.l1 * x.abs().sum()
        if self.l2:
            term = self.l2 * (x * x).sum()
            out = term if out is None else out + term
        return out if out is not None else (x * 0.0).sum()

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


@REGISTRY.register("l1")
class L1(L1L2):
    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


@REGISTRY.register("l2")
class L2(L1L2):
    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


@REGISTRY.register("orthogonal_regularizer")
class OrthogonalRegularizer(Regularizer):
    """factor * mean of |off-diagonal| of the Gram matrix of the normalized rows or columns."""

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got "
                             f"{mode!r}")
        self.factor, self.mode = _check("OrthogonalRegularizer(factor)", factor), mode

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: expects a 2-D weight, got shape {x.shape}")
        m = x if self.mode == "rows" else x.T
        m = m / ((m * m).sum(1, keepdim=True) + 1e-12).sqrt()
        gram = m @ m.T
        n = gram.shape[0]
        off = gram.abs().sum() - _trace_abs(gram)
        return self.factor * off / max(n * n - n, 1)

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


def _trace_abs(g: Tensor) -> Tensor:
    eye = Tensor(np.eye(g.shape[0], dtype=g.dtype))
    return (g * eye).abs().sum()


def l1(l1: float = 0.01) -> L1:  # noqa: E741
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:  # noqa: E741
    """Keras's l1_l2 defaults both factors to 0.01."""
    return L1L2(l1=l1, l2=l2)


def get(identifier: Any) -> Regularizer | None:
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return REGISTRY.lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"regularizer: expected a name, a Regularizer or a callable, got "
                    f"{identifier!r}")


def deserialize(config: Any, custom_objects: dict | None = None) -> Regularizer:
    obj = _deserialize(REGISTRY, config, custom_objects)
    return obj() if isinstance(obj, type) else obj


serialize = serialize
