"""Custom autograd Functions written the PyTorch way: forward and backward on Tensors.

A `Function` subclass defined outside the shenjing package (as in torch's "Defining new
autograd Functions" tutorial) has `array_level = False`, and its `apply` is `apply_tensors`
below. Forward runs under no_grad on the tensors it was given (non-tensor arguments pass
through), in either torch style: `forward(ctx, *args)`, or `forward(*args)` with a static
`setup_context(ctx, inputs, output)`. Backward gets one gradient tensor per output and
returns one per input (None where none is needed), also under no_grad.

The node the engine records stays array-level: what `ctx.save_for_backward` got is kept as
arrays, so in-place changes are caught as for the built-in ops, and gradients are converted
on the way in and out. Several differentiable outputs are packed into one node output, each
returned tensor a differentiable slice of it. The built-in ops (shenjing/ops) never come here.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any, Callable

import numpy as np

from .engine import Function, Tensor, _saved_versions
from .grad_mode import _GradMode, no_grad

__all__ = ["Function", "FunctionCtx", "apply_tensors", "once_differentiable"]

FunctionCtx = Function  # torch's type of `ctx`; here ctx is an instance of the Function class


def once_differentiable(backward: Callable) -> Callable:
    """torch's marker for a backward that is not itself differentiable. shenjing's backward
    never records a graph, so every backward is once-differentiable: it returns `backward`."""
    return backward


def apply_tensors(cls: type, *args: Any, **kwargs: Any) -> Any:
    """`Cls.apply(...)` of a Tensor-level Function: run forward, record one node."""
    ctx = cls.__new__(cls)
    torch2 = getattr(cls, "setup_context", None) is not None
    if torch2:  # setup_context sees every argument, defaults included, as in torch
        args, kwargs = _bind(cls, args, kwargs)
    record = _GradMode.enabled
    ctx.needs_input_grad = tuple(record and isinstance(a, Tensor) and a._requires_grad
                                 for a in args)
    with no_grad():  # forward's own ops are not recorded, as in torch
        if torch2:
            output = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, output)
        else:
            output = cls.forward(ctx, *args, **kwargs)
    single = not isinstance(output, tuple)
    outputs = (output,) if single else output
    if ctx.saved:
        ctx.saved = tuple(s._data if isinstance(s, Tensor) else s for s in ctx.saved)
    dirty = ctx.__dict__.get("dirty", ())
    _check_dirty(cls, dirty, args, outputs, record)
    skip = ctx.__dict__.get("non_differentiable", ())
    differentiable = [isinstance(o, Tensor) and o._data.dtype.kind in "fc"
                      and not _among(o, skip) for o in outputs]
    if not (record and any(ctx.needs_input_grad) and any(differentiable)):
        results = tuple(_plain(o, args, dirty) for o in outputs)
        return results[0] if single else results
    ctx.inputs = tuple(_stand_in(a) if _among(a, dirty) else a for a in args)
    node_output, results = _outputs(ctx, outputs, differentiable, args, dirty)
    if ctx.saved:  # versions as they are now: a dirty output was changed before it was saved
        ctx.saved_versions = tuple((c, c.value if made is None else seen, s, made) for
                                   c, seen, s, made in _saved_versions(ctx.saved, ctx.inputs,
                                                                       node_output))
    ctx.backward = _backward_tensors  # the engine calls node.backward(node, grad)
    return results[0] if single else results


_SIGNATURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # class -> forward's


def _bind(cls: type, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Positional arguments of forward with its defaults filled in (torch 2's `inputs`)."""
    sig = _SIGNATURES.get(cls)
    if sig is None:
        sig = _SIGNATURES[cls] = inspect.signature(cls.forward)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.args, bound.kwargs


def _among(x: Any, tensors: tuple) -> bool:
    return any(x is t for t in tensors)


def _check_dirty(cls: type, dirty: tuple, args: tuple, outputs: tuple, record: bool) -> None:
    for d in dirty:
        if not _among(d, args):
            raise ValueError(f"{cls.__name__}: mark_dirty got a tensor that is not an input "
                             f"of forward")
        if record and d._ctx is None and d._requires_grad:
            raise RuntimeError(f"{cls.__name__}: a leaf tensor that requires grad is being "
                               f"used in an in-place operation (mark_dirty)")
        if record and len(outputs) > 1 and _among(d, outputs):
            raise NotImplementedError(f"{cls.__name__}: returning a dirty input among several "
                                      f"outputs is not supported; return it alone")


def _plain(o: Any, args: tuple, dirty: tuple) -> Any:
    """An output when no node is recorded: an input returned as-is becomes an alias."""
    if isinstance(o, Tensor) and _among(o, args) and not _among(o, dirty):
        return o.detach()
    return o


def _stand_in(x: Tensor) -> Tensor:
    """The graph position of a dirty input before forward changed it (it becomes the output)."""
    return Tensor._make(x._data, x._ctx, x._requires_grad, x._version)


def _outputs(ctx: Function, outputs: tuple, differentiable: list, args: tuple,
             dirty: tuple) -> tuple[Tensor, tuple]:
    """The node's one output tensor and the tensors apply returns, with `ctx.layout`
    saying how the node's gradient splits into one gradient per output.

    One differentiable output is the node output itself. Several are packed, flattened one
    after another into one array, and each returned tensor is its (differentiable) slice,
    so the engine sums their gradients into the node."""
    parts = [o._data for o, d in zip(outputs, differentiable) if d]
    common = np.result_type(*parts)
    node_output = None
    if len(parts) > 1:
        packed = np.concatenate([p.ravel().astype(common) for p in parts])
        node_output = Tensor._make(packed, ctx, True)
    layout, results, start = [], [], 0
    for o, d in zip(outputs, differentiable):
        if not d:
            layout.append(("zeros", o._data.shape, o._data.dtype) if isinstance(o, Tensor)
                          else None)
            results.append(_plain(o, args, dirty))
        elif node_output is None:  # the one differentiable output
            layout.append(("whole",))
            if _among(o, dirty) or not _among(o, args):
                # forward's own tensor (or the changed input) becomes the output, as in torch;
                # so tracers that follow tensors by identity (ONNX export) see it too
                o._ctx, o._requires_grad = ctx, True
                node_output = o
            else:  # an input returned unchanged: a new tensor on the same storage
                node_output = Tensor._make(o._data, ctx, True)
            results.append(node_output)
        else:
            stop = start + o._data.size
            layout.append(("slice", start, stop, o._data.shape, o._data.dtype))
            piece = node_output[start:stop].reshape(o._data.shape)
            results.append(piece if o._data.dtype == common else piece.to(o._data.dtype))
            start = stop
    ctx.layout = tuple(layout)
    return node_output, tuple(results)


def _output_grads(ctx: Function, grad: np.ndarray) -> tuple:
    """The gradient of each output, as tensors (copies: backward may change them in place);
    zeros for outputs without one, or None after `ctx.set_materialize_grads(False)`."""
    materialize = ctx.__dict__.get("materialize_grads", True)
    grads = []
    for spec in ctx.layout:
        if spec is None:
            grads.append(None)
        elif spec[0] == "whole":
            grads.append(Tensor._make(np.array(grad, copy=True)))
        elif spec[0] == "zeros":
            grads.append(Tensor._make(np.zeros(spec[1], spec[2])) if materialize else None)
        else:
            _, start, stop, shape, dtype = spec
            grads.append(Tensor._make(grad[start:stop].reshape(shape).astype(dtype)))
    return tuple(grads)


def _backward_tensors(ctx: Function, grad: np.ndarray) -> tuple:
    """The node's array-level backward: the user's backward on tensors, converted."""
    cls = type(ctx)
    with no_grad():
        result = cls.backward(ctx, *_output_grads(ctx, grad))
    result = result if isinstance(result, tuple) else (result,)
    inputs = ctx.inputs
    n = len(inputs)
    if len(result) > n and all(r is None for r in result[n:]):
        result = result[:n]
    if len(result) != n:
        raise RuntimeError(f"{cls.__name__}.backward returned {len(result)} gradients; "
                           f"expected {n}, one per input of forward (None where none)")
    return tuple(_grad_array(ctx, i, r) for i, r in enumerate(result))


def _grad_array(ctx: Function, i: int, r: Any) -> np.ndarray | None:
    """Gradient `r` for input i as an array the engine may keep (never a saved or input
    array, which a leaf's .grad must not share)."""
    x = ctx.inputs[i]
    name = type(ctx).__name__
    if r is None:
        return None
    if not isinstance(x, Tensor):
        raise RuntimeError(f"{name}.backward returned a gradient for input {i}, which is not "
                           f"a tensor; return None there")
    if not ctx.needs_input_grad[i]:
        return None
    arr = r._data if isinstance(r, Tensor) else np.asarray(r)
    if arr.shape != x._data.shape and not _reducible(arr.shape, x._data.shape):
        raise RuntimeError(f"{name}.backward returned a gradient of shape {list(arr.shape)} "
                           f"for input {i}, which has shape {list(x._data.shape)}")
    held = [s for s in ctx.saved if isinstance(s, np.ndarray)]
    held += [a._data for a in ctx.inputs if isinstance(a, Tensor)]
    if any(np.may_share_memory(arr, h) for h in held):
        arr = np.array(arr, copy=True)
    return arr


def _reducible(grad_shape: tuple, shape: tuple) -> bool:
    """Whether a gradient of grad_shape sums down to shape (shape broadcasts up to it)."""
    try:
        return np.broadcast_shapes(grad_shape, shape) == grad_shape
    except ValueError:
        return False
