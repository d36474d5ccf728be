"""An identity over several tensors whose backward hands their gradients to a callback.

Module backward hooks need the gradients of all of a module's inputs (or outputs) at once,
and a Function here has one output. So the tensors are packed into one flat array; each
caller-facing tensor is a slice of it. The graph sums the slices' gradients into the packed
array's gradient before `HookPack.backward` runs, which is the moment every gradient is
known: the callback sees them together and may replace them.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import xp

__all__ = ["HookPack"]


class HookPack(Function):
    """Concatenate the inputs' flat arrays; backward splits the gradient, calls `on_grad`.

    `on_grad(grads)` gets a tuple of arrays shaped as the inputs and returns None (keep
    them) or a tuple of arrays or None, one per input.
    """

    op_name = "backward_hook"

    @staticmethod
    def forward(ctx, *arrays, on_grad=None):
        ctx.shapes = [a.shape for a in arrays]
        ctx.on_grad = on_grad
        dtype = xp.result_type(*arrays)
        return xp.concatenate([xp.ravel(a).astype(dtype, copy=False) for a in arrays])

    @staticmethod
    def backward(ctx, g):
        grads, start = [], 0
        for shape in ctx.shapes:
            n = 1
            for s in shape:
                n *= s
            grads.append(g[start:start + n].reshape(shape))
            start += n
        grads = tuple(grads)
        if ctx.on_grad is not None:
            replaced = ctx.on_grad(grads)
            if replaced is not None:
                grads = tuple(replaced)
        return grads
