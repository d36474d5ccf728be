"""Module hooks (torch.nn.Module's forward, forward-pre and full backward hooks).

A handle removes its hook. A full backward hook sees, once per backward pass, the gradients
of the module's positional tensor inputs and of its outputs, as torch's does: the inputs and
outputs are routed through one `HookPack` identity each, whose backward is the moment all
of those gradients are known.
"""

from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict
from typing import Any, Callable

from ..autograd import is_grad_enabled
from ..ops.backward_hook import HookPack
from ..tensor import Tensor, from_numpy

__all__ = ["RemovableHandle", "BackwardHook"]

_ids = itertools.count()


class RemovableHandle:
    """Returned by `register_*_hook`; `remove()` (or leaving a `with` block) unregisters it."""

    def __init__(self, *dicts: OrderedDict) -> None:
        self.id = next(_ids)
        self._dicts = dicts

    def remove(self) -> None:
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks: OrderedDict, hook: Callable, prepend: bool,
             extra: OrderedDict | None = None, flag: Any = None) -> RemovableHandle:
    """Register `hook` in `hooks` (first when `prepend`); `extra` records a per-hook flag."""
    if not callable(hook):
        raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks, *(() if extra is None else (extra,)))
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    if extra is not None:
        extra[handle.id] = flag
    return handle


def _as_tensors(grads: tuple) -> tuple:
    return tuple(None if g is None else from_numpy(g) for g in grads)


def _as_arrays(grads, n: int, what: str) -> tuple:
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    if len(grads) != n:
        raise ValueError(f"backward hook returned {len(grads)} {what}, expected {n}")
    return tuple(g.numpy() if isinstance(g, Tensor) else g for g in grads)


class BackwardHook:
    """One forward call's plumbing for full backward (pre-)hooks."""

    def __init__(self, module, hooks: list, pre_hooks: list) -> None:
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.n_inputs = 0
        self.input_index: list | None = None
        self.output_index: list = []
        self.n_outputs = 0
        self.grad_outputs: tuple = ()

    @staticmethod
    def _route(values: list, index: list, on_grad) -> list:
        """Replace values[i] (i in index) by slices of one HookPack identity."""
        picked = [values[i] for i in index]
        packed = HookPack.apply(*picked, on_grad=on_grad)
        out = list(values)
        if len(picked) == 1:
            out[index[0]] = packed.reshape(picked[0].shape)
            return out
        start = 0
        for i, t in zip(index, picked):
            n = t.numel()
            out[i] = packed[start:start + n].reshape(t.shape)
            start += n
        return out

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        index = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not index or not is_grad_enabled():
            return args
        self.input_index = index
        return tuple(self._route(list(args), index, self._on_input_grad))

    def setup_output_hook(self, result):
        single = isinstance(result, Tensor)
        values = [result] if single else list(result) if isinstance(result, tuple) else None
        if values is None:
            return result
        self.n_outputs = len(values)
        index = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
        if not index or not is_grad_enabled():
            return result
        self.output_index = index
        values = self._route(values, index, self._on_output_grad)
        return values[0] if single else tuple(values)

    def _spread(self, grads: tuple, index: list, n: int) -> tuple:
        full = [None] * n
        for i, g in zip(index, grads):
            full[i] = g
        return tuple(full)

    def _on_output_grad(self, grads: tuple):
        grad_outputs = _as_tensors(self._spread(grads, self.output_index, self.n_outputs))
        changed = False
        for hook in self.pre_hooks:
            res = hook(self.module, grad_outputs)
            if res is not None:
                res = res if isinstance(res, (tuple, list)) else (res,)
                grad_outputs = _as_tensors(_as_arrays(res, self.n_outputs, "grad_outputs"))
                changed = True
        self.grad_outputs = grad_outputs
        if self.input_index is None:  # nothing upstream needs a gradient: call the hooks now
            if self.hooks:
                warnings.warn("Full backward hook is firing when gradients are computed with "
                              "respect to module outputs since no inputs require gradients",
                              UserWarning, stacklevel=2)
            nones = (None,) * self.n_inputs
            for hook in self.hooks:
                res = hook(self.module, nones, grad_outputs)
                if res is not None and any(r is not None for r in res):
                    raise RuntimeError("backward hook for a module whose inputs do not "
                                       "require grad must return None or only Nones")
        if not changed:
            return None
        return tuple(None if g is None else g.numpy()
                     for i, g in enumerate(grad_outputs) if i in self.output_index)

    def _on_input_grad(self, grads: tuple):
        grad_inputs = _as_tensors(self._spread(grads, self.input_index, self.n_inputs))
        changed = False
        for hook in self.hooks:
            res = hook(self.module, grad_inputs, self.grad_outputs)
            if res is not None:
                grad_inputs = _as_tensors(_as_arrays(res, self.n_inputs, "grad_inputs"))
                changed = True
        if not changed:
            return None
        return tuple(grad_inputs[i].numpy() if grad_inputs[i] is not None else None
                     for i in self.input_index)
