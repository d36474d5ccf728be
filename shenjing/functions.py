"""torch-style free functions (`sj.exp(x)`, `sj.max(x, dim=1)`, ...) over Tensor methods."""

from __future__ import annotations

from .tensor import Tensor, _as, cat, concat, concatenate, matmul, one_hot, pad, stack, where

__all__ = ["add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "log1p", "sqrt",
           "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "clamp", "clip", "maximum",
           "minimum", "sign", "sum", "mean", "prod", "max", "min", "amax", "amin", "argmax",
           "argmin", "var", "std", "logsumexp", "norm", "softmax", "log_softmax", "reshape",
           "flatten", "transpose", "permute", "squeeze", "unsqueeze", "broadcast_to", "split",
           "chunk", "flip", "gather", "take_along_dim", "square", "where", "cat", "concat",
           "concatenate", "stack", "matmul", "mm", "bmm", "pad", "one_hot", "eq", "ne", "lt",
           "le", "gt", "ge", "isnan", "isinf", "isfinite", "all", "any", "allclose", "equal",
           "numel", "t", "narrow", "unbind", "masked_fill", "index_select", "is_tensor",
           "repeat_interleave", "detach", "clone"]


def _method(name: str):
    def fn(x, *args, **kwargs):
        return getattr(_as(x), name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"Function form of Tensor.{name}."
    return fn


for _name in __all__:
    if _name not in globals():
        globals()[_name] = _method(_name)

mm = bmm = matmul
del _name


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def repeat_interleave(x: Tensor, repeats: int, dim: int | None = None) -> Tensor:
    """Repeat each element `repeats` times along dim (flattened when dim is None)."""
    if dim is None:
        x, dim = x.flatten(), 0
    d = dim % x.ndim
    idx = [i for i in range(x.shape[d]) for _ in range(int(repeats))]
    return x.index_select(d, idx)
