"""torch-style free functions (`sj.exp(x)`, `sj.max(x, dim=1)`, ...).

Nothing is listed by hand here: every op declared with `api = (...)` and every method
installed with `functions=(...)` or `@tensor_method` is in `autograd.FUNCTIONS`, and each
becomes `shenjing.<name>(x, *args, **kwargs)` = `as_tensor(x).<name>(*args, **kwargs)`.
"""

from __future__ import annotations

from typing import Callable

from . import tensor as _tensor  # noqa: F401  (installs the methods and fills FUNCTIONS)
from .autograd import FUNCTIONS
from .tensor import Tensor, cat, concat, concatenate, matmul, one_hot, pad, stack, where  # noqa: F401
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


_generated = {name: _function(name, m) for name, m in sorted(FUNCTIONS.items())}
globals().update(_generated)  # mm, bmm, repeat_interleave, ... from shenjing/tensor/extra.py

__all__ = sorted([*_generated, "is_tensor", "cat", "concat", "concatenate",
                  "stack", "matmul", "pad", "one_hot", "where"])
