"""Reverse-mode automatic differentiation: Function, the graph, and the backward pass.

Design decisions (pinned by tests/test_autograd.py):

* **Backward is array-level.** `Function.backward` receives and returns raw arrays, not
  Tensors, so no graph is recorded while differentiating: there are no higher-order
  gradients. This keeps the per-op bookkeeping small, which is what makes small models fast.
* A graph node is the `Function` instance itself (the `ctx`). It is recorded only when grad
  mode is on and some input requires grad; otherwise `apply` is a plain array call.
* Gradients of broadcast inputs are summed back to the input's shape here, once, so no op
  repeats that logic. Gradients are cast to the input's dtype.
* `backward` never modifies its incoming gradient in place, and returns either that gradient
  (or a view of it) or arrays it made in this call and keeps no reference to: such a fresh
  array becomes a leaf's `.grad` without a copy (g and its views are copied).
* Backward walks the graph in one topological pass (iterative: a 10,000-op chain is fine),
  accumulating into `.grad` of leaves. With `retain_graph=False` each node's saved arrays
  are freed as soon as it has run, so memory does not grow across training steps.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

__all__ = [
    "Function",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "backward",
    "grad",
    "gradcheck",
    "GradcheckError",
]

_Tensor: Any = None  # set by shenjing.tensor at import time (tensor.py sits above this module)


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class set_grad_enabled:
    """Context manager and decorator that sets grad mode on or off."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode  # takes effect at call, as torch.set_grad_enabled does

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        _GradMode.enabled = self.prev

    def __call__(self, fn: Callable) -> Callable:
        """As a decorator: restore the mode set at construction, apply it at each call."""
        _GradMode.enabled = self.prev
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class _GradModeContext:
    mode = True

    def __new__(cls, fn: Callable | None = None):
        self = super().__new__(cls)
        return self if fn is None else self(fn)  # `@no_grad` without parentheses, as torch

    def __enter__(self) -> None:
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc) -> None:
        _GradMode.enabled = self.prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording inside a `with` block or a decorated function."""

    mode = False


class enable_grad(_GradModeContext):
    """Re-enable graph recording (e.g. inside a `no_grad` block)."""

    mode = True


class Function:
    """One differentiable op: a static `forward` on arrays and a static `backward`.

    `forward(ctx, *arrays, **attrs)` computes the output array and saves what backward needs
    (`ctx.save_for_backward(...)` or plain attributes). `backward(ctx, grad)` returns one
    gradient array per positional input (a single array when there is one input), or None
    for inputs that need none; `ctx.needs_input_grad[i]` says which are wanted.
    """

    saved: tuple = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run forward on the inputs' arrays and record the node when a gradient is needed."""
        Tensor = _Tensor
        ctx = cls.__new__(cls)
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        try:
            out = cls.forward(ctx, *arrays, **attrs)
        except (ValueError, IndexError) as e:
            raise type(e)(_op_error(cls, arrays, e)) from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if out.dtype is _FLOAT64 and "dtype" not in attrs and not _any_float64(arrays):
            out = out.astype(_default_float())  # int * 0.5, int.exp(): as torch
        if _GradMode.enabled:
            needs = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
            if True in needs:
                ctx.inputs = inputs
                ctx.needs_input_grad = needs
                t = Tensor.__new__(Tensor)
                t.data = out
                t.grad = None
                t.requires_grad = True
                t._ctx = ctx
                return t
        t = Tensor.__new__(Tensor)
        t.data = out
        t.grad = None
        t.requires_grad = False
        t._ctx = None
        return t


_FLOAT64 = np.dtype(np.float64)  # NumPy's canonical instance: an identity test is enough here


def _any_float64(arrays) -> bool:
    """Whether an operand is float64; if none is, NumPy's float64 result is promotion creep
    (integer or bool arrays meeting Python floats or float math) and torch gives the default
    float dtype instead. Ops asked for a dtype (Cast) keep theirs."""
    return any(getattr(a, "dtype", None) == np.float64 for a in arrays)


def _default_float() -> np.dtype:
    from .tensor import get_default_dtype  # tensor.py sits above this module

    return get_default_dtype()


def _op_name(cls: type) -> str:
    return getattr(cls, "op_name", cls.__name__.lower())


def _op_error(cls: type, arrays: list, err: Exception) -> str:
    shapes = " and ".join(str(tuple(a.shape)) for a in arrays if hasattr(a, "shape"))
    msg = str(err)
    if "broadcast" in msg:
        return f"{_op_name(cls)}: shapes {shapes} cannot be broadcast together"
    return f"{_op_name(cls)} on shapes {shapes}: {msg}"


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient that was broadcast up to g.shape back down to `shape`."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


_FREED_GRAPH = (
    "backward: trying to backward through the graph a second time; its saved "
    "arrays were freed. Pass retain_graph=True to the first backward call."
)


def _topological_order(root_ctx: Function) -> list:
    """Nodes of the graph under `root_ctx`, each after all the nodes it depends on."""
    order = []
    visited = set()
    stack = [(root_ctx, False)]
    Tensor = _Tensor
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        if not hasattr(node, "inputs"):
            raise RuntimeError(_FREED_GRAPH)
        visited.add(id(node))
        stack.append((node, True))
        for x in node.inputs:
            if isinstance(x, Tensor) and x._ctx is not None and id(x._ctx) not in visited:
                stack.append((x._ctx, False))
    return order


def backward(tensor, gradient=None, retain_graph: bool = False) -> None:
    """Accumulate d(tensor)/d(leaf) into every leaf's `.grad` (Tensor.backward calls this)."""
    Tensor = _Tensor
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph "
            "(was it computed under no_grad, or from tensors without requires_grad=True?)"
        )
    if gradient is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs; this "
                f"tensor has shape {tuple(tensor.shape)}, so pass a gradient of that shape"
            )
        g0 = np.ones_like(tensor.data)
    else:
        g0 = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient)
        if g0.shape != tensor.data.shape:
            raise ValueError(
                f"backward: gradient has shape {tuple(g0.shape)}, expected "
                f"{tuple(tensor.data.shape)} (the shape of the tensor)"
            )
        g0 = g0.astype(tensor.data.dtype, copy=False)
    if tensor._ctx is None:  # a leaf
        _accumulate_leaf(tensor, g0)
        return
    grads: dict[int, np.ndarray] = {id(tensor._ctx): g0}
    for node in reversed(_topological_order(tensor._ctx)):
        g = grads.pop(id(node), None)
        if not hasattr(node, "inputs"):
            raise RuntimeError(_FREED_GRAPH)
        if g is None:
            continue
        inputs = node.inputs
        in_grads = node.backward(node, g)
        if type(in_grads) is not tuple:  # a one-input op may return its gradient bare
            in_grads = (in_grads,)
        for x, need, gx in zip(inputs, node.needs_input_grad, in_grads):
            if not need or gx is None:
                continue
            xd = x.data
            if gx.shape != xd.shape:
                gx = _unbroadcast(gx, xd.shape)
            if gx.dtype != xd.dtype:
                gx = gx.astype(xd.dtype)
            ctx = x._ctx
            if ctx is None:
                # an array the op made for this input alone becomes .grad without a copy
                own = (gx is not g and gx.base is None and gx.flags.writeable
                       and not _returned_twice(gx, in_grads))
                _accumulate_leaf(x, gx, own)
            else:
                key = id(ctx)
                prev = grads.get(key)
                grads[key] = gx if prev is None else prev + gx
        if not retain_graph:
            node.__dict__.clear()


def _returned_twice(gx: np.ndarray, in_grads) -> bool:
    """Whether backward handed the same array to two inputs (then neither may own it)."""
    n = 0
    for a in in_grads:
        if a is gx:
            n += 1
    return n > 1


def _accumulate_leaf(x, g: np.ndarray, own: bool = False) -> None:
    """Add g into x.grad; a first gradient not `own`ed is copied so no two leaves (nor the
    caller's upstream gradient) share an array."""
    if x.grad is None:
        t = _Tensor.__new__(_Tensor)
        t.data = g if own else np.array(g, copy=True)
        t.grad = None
        t.requires_grad = False
        t._ctx = None
        x.grad = t
    else:
        x.grad.data = x.grad.data + g


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool = False) -> tuple:
    """Gradients of `outputs` w.r.t. `inputs` as new tensors, leaving `.grad` untouched."""
    single = not isinstance(inputs, (list, tuple))
    inputs = [inputs] if single else list(inputs)
    saved = [x.grad for x in inputs]
    for x in inputs:
        x.grad = None
    try:
        backward(outputs, grad_outputs, retain_graph=retain_graph)
        result = tuple(x.grad for x in inputs)
    finally:
        for x, s in zip(inputs, saved):
            x.grad = s
    return result[0] if single else result


# ----------------------------------------------------------------------------- gradcheck


class GradcheckError(RuntimeError):
    """Raised by gradcheck when analytic and numerical gradients disagree."""


def gradcheck(
    fn: Callable,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    max_full: int = 64,
    seed: int = 0,
) -> bool:
    """Compare backward's gradients of `fn(*inputs)` with central differences in float64.

    Every input that requires grad must be float64. For outputs of at most `max_full`
    elements the whole Jacobian is compared (one backward per output element); larger
    outputs are projected on three random directions (one backward each), which still
    checks every input element. Returns True, or raises GradcheckError naming the input,
    the worst element and both values.
    """
    Tensor = _Tensor
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True; nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; gradcheck needs float64 "
                f"inputs (central differences are meaningless in float32)"
            )

    def run() -> np.ndarray:
        with enable_grad():
            out = fn(*inputs)
        return out

    out = run()
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    m = out.data.size
    rng = np.random.default_rng(seed)
    if m <= max_full:
        directions = [np.eye(m, dtype=np.float64)[k].reshape(out.shape) for k in range(m)]
    else:
        directions = [rng.standard_normal(out.shape) for _ in range(3)]

    for k, v in enumerate(directions):
        out = run()
        if not out.requires_grad:
            analytic = [np.zeros_like(inputs[i].data) for i in checked]
        else:
            grads = grad(out, [inputs[i] for i in checked], grad_outputs=Tensor(v))
            analytic = [
                np.zeros_like(inputs[i].data) if g is None else g.data
                for i, g in zip(checked, grads)
            ]
        for i, a in zip(checked, analytic):
            x = inputs[i].data
            num = np.zeros_like(x)
            flat = x.reshape(-1)  # a view: perturb in place, restore after
            num_flat = num.reshape(-1)
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                with no_grad():
                    fp = float(np.sum(fn(*inputs).data * v))
                flat[j] = orig - eps
                with no_grad():
                    fm = float(np.sum(fn(*inputs).data * v))
                flat[j] = orig
                num_flat[j] = (fp - fm) / (2 * eps)
            bad = ~(np.abs(a - num) <= atol + rtol * np.abs(num))  # a NaN on either side is bad
            if bad.any():
                err = np.abs(a - num) - rtol * np.abs(num)
                w = np.unravel_index(int(np.argmax(err)), x.shape) if x.ndim else ()
                what = f"output element {np.unravel_index(k, out.shape)}" if m <= max_full else (
                    f"random output direction {k}")
                msg = (
                    f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(x.shape)}), "
                    f"{what}, at input element {tuple(int(t) for t in w)}: "
                    f"analytical {float(a[w]):.10g} vs numerical {float(num[w]):.10g} "
                    f"({int(bad.sum())} of {bad.size} elements outside atol={atol}, rtol={rtol})"
                )
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True
