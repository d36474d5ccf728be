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


add = _method("add")
sub = _method("sub")
mul = _method("mul")
div = _method("div")
pow = _method("pow")
neg = _method("neg")
abs = _method("abs")
exp = _method("exp")
log = _method("log")
log1p = _method("log1p")
sqrt = _method("sqrt")
rsqrt = _method("rsqrt")
sin = _method("sin")
cos = _method("cos")
tanh = _method("tanh")
sigmoid = _method("sigmoid")
relu = _method("relu")
clamp = _method("clamp")
clip = _method("clip")
maximum = _method("maximum")
minimum = _method("minimum")
sign = _method("sign")
sum = _method("sum")
mean = _method("mean")
prod = _method("prod")
max = _method("max")
min = _method("min")
amax = _method("amax")
amin = _method("amin")
argmax = _method("argmax")
argmin = _method("argmin")
var = _method("var")
std = _method("std")
logsumexp = _method("logsumexp")
norm = _method("norm")
softmax = _method("softmax")
log_softmax = _method("log_softmax")
reshape = _method("reshape")
flatten = _method("flatten")
transpose = _method("transpose")
permute = _method("permute")
squeeze = _method("squeeze")
unsqueeze = _method("unsqueeze")
broadcast_to = _method("broadcast_to")
split = _method("split")
chunk = _method("chunk")
flip = _method("flip")
gather = _method("gather")
take_along_dim = _method("take_along_dim")
square = _method("square")
eq = _method("eq")
ne = _method("ne")
lt = _method("lt")
le = _method("le")
gt = _method("gt")
ge = _method("ge")
isnan = _method("isnan")
isinf = _method("isinf")
isfinite = _method("isfinite")
all = _method("all")
any = _method("any")
allclose = _method("allclose")
equal = _method("equal")
numel = _method("numel")
t = _method("t")
narrow = _method("narrow")
unbind = _method("unbind")
masked_fill = _method("masked_fill")
index_select = _method("index_select")
detach = _method("detach")
clone = _method("clone")
mm = bmm = matmul


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def repeat_interleave(x: Tensor, repeats: int, dim: int | None = None) -> Tensor:
    """Repeat each element `repeats` times along dim (flattened when dim is None)."""
    if dim is None:
        x, dim = x.flatten(), 0
    d = dim % x.ndim
    idx = [i for i in range(x.shape[d]) for _ in range(int(repeats))]
    return x.index_select(d, idx)
