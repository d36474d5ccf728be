"""In-place Tensor updates (`add_`, `x += y`, `copy_`, `x[i] = v`, ...), with PyTorch's rules.

Outside the graph (no grad needed, or under `no_grad`) an update writes into the storage and
bumps the version counter, so a node that saved this tensor for backward raises instead of
computing a wrong gradient. Inside the graph (the tensor or the operand requires grad, grad
mode on) the tensor is rebound to the out-of-place result: it keeps its identity, gets the
new value and a grad_fn, and the old value stays intact for the nodes that saved it. A leaf
that requires grad can only be updated under `no_grad`, as in PyTorch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..autograd import grad_mode
from ..autograd.engine import Tensor, tensor_methods
from ..ops.movement import SetItem
from .args import const, index_arg, raw


def _update(self: Tensor, name: str, operand, out_of_place: Callable[[Tensor], Tensor],
            in_place: Callable[[np.ndarray], None]) -> Tensor:
    """Apply one in-place update: `in_place(array)` outside the graph, else rebind self to
    `out_of_place(old_self)`."""
    operand_grad = isinstance(operand, Tensor) and operand._requires_grad
    if grad_mode.is_grad_enabled() and (self._requires_grad or operand_grad):
        if self._ctx is None and self._requires_grad:
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad is being used in an in-place "
                f"operation; wrap the update in `with shenjing.no_grad():`"
            )
        self._bump_version()  # nodes that saved the old value see the change, as in torch
        old = Tensor._make(self._data, self._ctx, self._requires_grad, self._version)
        new = out_of_place(old)
        self._data, self._ctx, self._version = new._data, new._ctx, new._version
        self._requires_grad = new._requires_grad
        return self
    try:
        in_place(self._data)
    except (ValueError, TypeError) as e:
        shape = np.shape(raw(operand)) if operand is not None else ()
        raise type(e)(f"{name}: cannot update a tensor of shape {tuple(self.shape)} and dtype "
                      f"{self.dtype} in place with an operand of shape {tuple(shape)} "
                      f"({e})") from None
    self._bump_version()
    return self


def _ufunc_update(ufunc: np.ufunc, value) -> Callable[[np.ndarray], None]:
    def run(arr: np.ndarray) -> None:
        ufunc(arr, value, out=arr, casting="same_kind")

    return run


def _assign(index, value) -> Callable[[np.ndarray], None]:
    def run(arr: np.ndarray) -> None:
        arr[index] = value

    return run


@tensor_methods
class _InPlace:
    def add_(self, o, alpha: float = 1) -> "Tensor":
        o = o if isinstance(o, Tensor) else const(o)
        scaled = o if alpha == 1 else o * alpha
        return _update(self, "add_", o, lambda old: old + scaled,
                       _ufunc_update(np.add, raw(scaled)))

    def sub_(self, o, alpha: float = 1) -> "Tensor":
        return self.add_(o, alpha=-alpha)

    def mul_(self, o) -> "Tensor":
        o = o if isinstance(o, Tensor) else const(o)
        return _update(self, "mul_", o, lambda old: old * o, _ufunc_update(np.multiply, raw(o)))

    def div_(self, o) -> "Tensor":
        o = o if isinstance(o, Tensor) else const(o)
        return _update(self, "div_", o, lambda old: old / o, _ufunc_update(np.divide, raw(o)))

    def __iadd__(self, o):
        return self.add_(o)

    def __isub__(self, o):
        return self.sub_(o)

    def __imul__(self, o):
        return self.mul_(o)

    def __itruediv__(self, o):
        return self.div_(o)

    def clamp_(self, min=None, max=None) -> "Tensor":
        if min is None and max is None:
            raise ValueError("clamp_: at least one of min and max must be given")

        def clip(arr: np.ndarray) -> None:
            np.clip(arr, min, max, out=arr)

        return _update(self, "clamp_", None, lambda old: old.clamp(min, max), clip)

    clip_ = clamp_

    def __setitem__(self, index, value) -> None:
        index = index_arg(index)
        value = value if isinstance(value, Tensor) else const(value)
        _update(self, "__setitem__", value,
                lambda old: SetItem.apply(old, value, index=index),
                _assign(index, raw(value)))

    def copy_(self, src) -> "Tensor":
        """Copy `src` (broadcast to this shape, cast to this dtype) into this tensor."""
        src = src if isinstance(src, Tensor) else const(src)
        if np.shape(raw(src)) != self.shape:
            try:
                np.broadcast_to(raw(src), self.shape)
            except ValueError:
                raise ValueError(f"copy_: source of shape {np.shape(raw(src))} cannot be "
                                 f"copied into a tensor of shape {self.shape}") from None
        return _update(self, "copy_", src,
                       lambda old: SetItem.apply(old, src, index=Ellipsis),
                       _assign(Ellipsis, raw(src)))

    def fill_(self, value) -> "Tensor":
        return self.copy_(value)

    def zero_(self) -> "Tensor":
        return self.copy_(0)

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator=None) -> "Tensor":
        from ..random import get_rng

        return self.copy_(get_rng(generator).uniform(a, b, self.shape).astype(self.dtype))

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator=None) -> "Tensor":
        from ..random import get_rng

        return self.copy_(get_rng(generator).normal(mean, std, self.shape).astype(self.dtype))

    def multinomial(self, num_samples: int, replacement: bool = False, *,
                    generator=None) -> "Tensor":
        from ..random import multinomial

        return multinomial(self, num_samples, replacement, generator=generator)
