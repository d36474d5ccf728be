"""torch-style free functions (`sj.exp(x)`, `sj.max(x, dim=1)`, ...).

Nothing is listed by hand here: every op declared with `api = (...)` and every method
installed with `functions=(...)` or `@tensor_method` is in `autograd.FUNCTIONS`, and each
becomes `shenjing.<name>(x, *args, **kwargs)` = `as_tensor(x).<name>(*args, **kwargs)`.
"""

from __future__ import annotations

from typing import Callable

from . import tensor as _tensor  # noqa: F401  (installs the methods and fills FUNCTIONS)
from .autograd import FUNCTIONS
from .tensor import (Tensor, cat, concat, concatenate, matmul, one_hot, pad,  # noqa: F401
                     stack, where)
from .tensor.args import as_operand


def _function(name: str, method: Callable) -> Callable:
    def fn(x, *args, **kwargs):
        return method(as_operand(x), *args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Function form of Tensor.{name}." + (f"\n\n{method.__doc__}" if method.__doc__
                                                       else "")
    return fn


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def repeat_interleave(x: Tensor, repeats: int, dim: int | None = None) -> Tensor:
    """Repeat each element `repeats` times along dim (flattened when dim is None)."""
    if dim is None:
        x, dim = x.flatten(), 0
    d = dim % x.ndim
    idx = [i for i in range(x.shape[d]) for _ in range(int(repeats))]
    return x.index_select(d, idx)


_generated = {name: _function(name, m) for name, m in sorted(FUNCTIONS.items())}
globals().update(_generated)
mm = bmm = matmul

__all__ = sorted([*_generated, "is_tensor", "repeat_interleave", "cat", "concat", "concatenate",
                  "stack", "matmul", "mm", "bmm", "pad", "one_hot", "where"])
