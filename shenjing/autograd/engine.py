"""The core: Tensor, Function, the graph and the backward pass, in one place.

Design decisions (pinned by tests/test_autograd.py and tests/test_inplace.py):

* **One constructor.** Every Tensor is made by `Tensor._make(array, ...)`; the public
  `Tensor(data)` and `shenjing.tensor(...)` convert their data and then call it.
* **Ops are array-level.** `Function.forward/backward` take and return arrays (from the
  `xp` array module, see backend.py); `Function.apply` is the one place arrays are wrapped
  into Tensors. Function subclasses written outside the package are torch's kind: their
  forward/backward see Tensors (`array_level = False`; function.py converts for them).
  Backward records no graph: there are no higher-order gradients, which keeps the per-op
  bookkeeping small, and that is what makes small models fast.
* **Declared once.** A Function subclass that sets `api = ("exp",)` becomes `Tensor.exp`
  and `shenjing.exp` (see `Function.__init_subclass__`); methods that need argument
  handling are plain functions decorated with `@tensor_method` (shenjing/tensor/). The
  Tensor class here holds only what autograd needs; its API is installed by those modules.
* **In-place safety, as PyTorch.** Every tensor has a version counter, shared with its
  `detach()`ed aliases, that each in-place op bumps. A node records the versions of the
  tensors whose arrays it saved (`ctx.save_for_backward`) and backward raises PyTorch's
  error when one changed. An in-place op on a tensor inside the graph rebinds that tensor
  to the out-of-place result, so the graph stays correct.
* A graph node is the `Function` instance itself (the `ctx`), recorded only when grad mode
  is on and some input requires grad. Gradients of broadcast inputs are summed back to the
  input's shape here, once, and cast to the input's dtype.
* `backward` never modifies its incoming gradient in place, and returns either that gradient
  (or a view of it) or arrays it made in this call and keeps no reference to: such a fresh
  array becomes a leaf's `.grad` without a copy (g and its views are copied).
* Backward walks the graph in one topological pass (iterative: a 10,000-op chain is fine),
  accumulating into `.grad` of leaves and calling tensor hooks. With `retain_graph=False`
  each node's saved arrays are freed as soon as it has run, so memory does not grow.
"""

from __future__ import annotations

import builtins
import weakref
from typing import Any, Callable

import numpy as np

from ..dtypes import as_dtype, dtype, get_default_dtype
from ..size import Size
from .grad_mode import _GradMode

__all__ = ["Tensor", "Function", "backward", "grad", "tensor_method", "tensor_methods",
           "FUNCTIONS"]

# name -> callable: the `shenjing.*` functions declared by ops and tensor methods
FUNCTIONS: dict[str, Callable] = {}


class _Version:
    """A tensor's in-place version counter, shared by tensors that share storage."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    This class holds storage, gradient and graph state; its methods (arithmetic, reductions,
    shape ops, ...) are installed by the op declarations and shenjing/tensor/.
    """

    __slots__ = ("_data", "grad", "_requires_grad", "_ctx", "_version", "_hooks",
                 "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data: Any, dtype=None, requires_grad: bool = False) -> None:
        from ..tensor.convert import to_array  # conversion rules live with the public API

        self._init(to_array(data, dtype, copy=False), None, False)
        if requires_grad:
            self.requires_grad_(True)

    def _init(self, array, ctx, requires_grad: bool, version: _Version | None = None) -> None:
        self._data = array
        self.grad = None
        self._requires_grad = requires_grad
        self._ctx = ctx
        self._version = _Version() if version is None else version
        self._hooks = None
        self._retains_grad = False

    @classmethod
    def _make(cls, array, ctx=None, requires_grad: bool = False,
              version: _Version | None = None) -> "Tensor":
        """The one constructor: wrap an array (shared, not copied) into a Tensor."""
        t = cls.__new__(cls)  # the slot writes of _init, inlined: this runs for every op
        t._data = array
        t.grad = None
        t._requires_grad = requires_grad
        t._ctx = ctx
        t._version = _Version() if version is None else version
        t._hooks = None
        t._retains_grad = False
        return t

    # ------------------------------------------------------------------ storage
    @property
    def data(self) -> "Tensor":
        """A tensor sharing this one's storage, cut from the graph, as torch's `.data`
        (with its own version counter: changes through it are invisible to autograd)."""
        return Tensor._make(self._data)

    @data.setter
    def data(self, value) -> None:
        arr = value._data if isinstance(value, Tensor) else np.asarray(value)
        self._data = arr

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied), as torch's `.numpy()` on the CPU."""
        return self._data

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> dtype:
        """The element type, `shenjing.float32` and so on (one object per dtype)."""
        return as_dtype(self._data.dtype)

    @property
    def _version_value(self) -> int:
        return self._version.value

    def _bump_version(self) -> None:
        """Record an in-place change of this tensor's storage."""
        self._version.value += 1

    # ------------------------------------------------------------------ graph
    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def requires_grad_(self, requires_grad: builtins.bool = True) -> "Tensor":
        if requires_grad and self._data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require gradients; this tensor has dtype "
                f"{self.dtype} (convert with .float() first)"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError(
                "requires_grad_(False) on a non-leaf tensor; use .detach() to cut it from "
                "the graph"
            )
        self._requires_grad = builtins.bool(requires_grad)
        return self

    @property
    def requires_grad(self) -> builtins.bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: builtins.bool) -> None:
        self.requires_grad_(value)  # integer tensors never require grad, as at construction

    def backward(self, gradient=None, retain_graph: builtins.bool = False) -> None:
        """Accumulate the gradient of this tensor into the `.grad` of every leaf."""
        backward(self, gradient, retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's storage and version counter, cut from the graph."""
        return Tensor._make(self._data, version=self._version)

    def detach_(self) -> "Tensor":
        self._ctx = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward, as torch."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        if self._ctx is not None and not self._retains_grad:
            self._retains_grad = True
            self._ctx.retained = weakref.ref(self)
            self._ctx.__dict__.setdefault("tensor_hooks", {})

    @property
    def retains_grad(self) -> builtins.bool:
        return self._retains_grad

    def register_hook(self, hook: Callable) -> "_HookHandle":
        """Call `hook(grad)` with this tensor's gradient during backward; a returned tensor
        replaces the gradient. Returns a handle whose `remove()` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self._ctx is not None:  # a non-leaf: its node runs the hook on its whole gradient
            hooks = self._ctx.__dict__.setdefault("tensor_hooks", {})
        else:
            if self._hooks is None:
                self._hooks = {}
            hooks = self._hooks
        handle = _HookHandle(hooks)
        hooks[handle.id] = hook
        return handle


class _HookHandle:
    _next = [0]

    def __init__(self, hooks: dict) -> None:
        self.hooks = hooks
        self.id = _HookHandle._next[0]
        _HookHandle._next[0] += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)


_NOT_METHODS = frozenset({"__module__", "__qualname__", "__dict__", "__weakref__", "__doc__",
                          "__firstlineno__", "__static_attributes__"})


def tensor_methods(cls: type | None = None, *, functions: tuple = ()):
    """Class decorator: install everything the class body defines (methods, properties,
    aliases) on Tensor, and the names in `functions` as `shenjing.<name>` functions. The body
    reads as a slice of the Tensor class; shenjing/tensor/ is written this way."""

    def install(cls: type) -> type:
        for name, value in cls.__dict__.items():
            if name not in _NOT_METHODS:
                setattr(Tensor, name, value)
        for name in functions:
            FUNCTIONS[name] = getattr(Tensor, name)
        return cls

    return install(cls) if cls is not None else install


def tensor_method(fn: Callable | None = None, *, names: tuple = (), function: bool = True):
    """Install `fn` as a Tensor method under its name (and `names`), and unless
    `function=False` also as the `shenjing.<name>` function (`sj.f(x, ...)` = `x.f(...)`)."""

    def install(fn: Callable) -> Callable:
        for name in (fn.__name__, *names):
            setattr(Tensor, name, fn)
            if function and not name.startswith("_"):
                FUNCTIONS[name] = fn
        return fn

    return install(fn) if fn is not None else install


class Function:
    """One differentiable op: a static `forward` on arrays and a static `backward`.

    `forward(ctx, *arrays, **attrs)` computes the output array and saves what backward needs
    with `ctx.save_for_backward(...)` (arrays saved that way are checked for in-place changes
    at backward time) or as plain attributes (values that no in-place op can change).
    `backward(ctx, grad)` returns one gradient array per positional input (a single array
    when there is one input), or None for inputs that need none; `ctx.needs_input_grad[i]`
    says which are wanted.

    Declaring `api = ("name", ...)` on a subclass installs `Tensor.name(self, *args, **kw)`
    and `shenjing.name(x, *args, **kw)` as `Cls.apply(x, *args, **kw)`: one class is the op,
    its method and its function.

    A subclass defined outside the shenjing package is a PyTorch-style custom Function
    (`array_level = False`, unless it sets `array_level = True`): forward and backward take
    and return Tensors, and `ctx.saved_tensors`, `mark_non_differentiable`, `mark_dirty`,
    `set_materialize_grads` and `setup_context` work as in torch (see function.py).
    """

    saved: tuple = ()
    saved_versions: tuple = ()
    api: tuple = ()
    array_level = True  # False: forward/backward take and return Tensors, as torch's

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "array_level" not in cls.__dict__ and "forward" in cls.__dict__:
            module = cls.__module__
            cls.array_level = module == "shenjing" or module.startswith("shenjing.")
        if not cls.array_level and "apply" not in cls.__dict__:
            from .function import apply_tensors  # builds on this module, so imported here

            cls.apply = classmethod(apply_tensors)
        for name in cls.__dict__.get("api", ()):
            tensor_method(_api_method(cls, name))

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        """What forward saved, as tensors (torch's `ctx.saved_tensors`)."""
        return tuple(Tensor._make(a) if type(a) is np.ndarray else a for a in self.saved)

    def mark_non_differentiable(self, *tensors) -> None:
        """Outputs (returned by forward) that get no gradient, as torch's."""
        self.non_differentiable = tuple(tensors)

    def mark_dirty(self, *tensors) -> None:
        """Inputs forward changed in place and returns, as torch's."""
        self.dirty = tuple(tensors)

    def set_materialize_grads(self, value: builtins.bool) -> None:
        """False: backward gets None, not zeros, for outputs that got no gradient."""
        self.materialize_grads = builtins.bool(value)

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run forward on the inputs' arrays and record the node when a gradient is needed."""
        ctx = cls.__new__(cls)
        arrays = [x._data if isinstance(x, Tensor) else x for x in inputs]
        try:
            out = cls.forward(ctx, *arrays, **attrs)
        except (ValueError, IndexError) as e:
            raise type(e)(_op_error(cls, arrays, e)) from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if out.dtype is _FLOAT64 and "dtype" not in attrs and not _any_float64(arrays):
            out = out.astype(get_default_dtype().dtype)  # int * 0.5, int.exp(): as torch
        version = _view_version(out, inputs)
        if _GradMode.enabled:
            needs = tuple(isinstance(x, Tensor) and x._requires_grad for x in inputs)
            if True in needs:
                ctx.inputs = inputs
                ctx.needs_input_grad = needs
                t = Tensor._make(out, ctx, True, version)
                if ctx.saved:
                    ctx.saved_versions = _saved_versions(ctx.saved, inputs, t)
                return t
        return Tensor._make(out, version=version)


def _view_version(out, inputs: tuple) -> _Version | None:
    """The version counter of the input whose storage `out` is (or views), else None: as in
    torch, a view (reshape, slice, transpose, expand, ...) shares its base's counter, so an
    in-place change of either is seen by every node that saved the other."""
    base = out.base
    for x in inputs:
        if isinstance(x, Tensor):
            data = x._data
            if out is data or (base is not None and (base is data or base is data.base)):
                return x._version
    return None


def _api_method(cls: type, name: str) -> Callable:
    def method(self, *args, **attrs):
        return cls.apply(self, *args, **attrs)

    method.__name__ = name
    method.__qualname__ = f"Tensor.{name}"
    method.__doc__ = cls.__doc__
    return method


def _shares_storage(saved, array) -> bool:
    """Whether a saved array is `array` or a view of the same memory (as NumPy records it)."""
    if saved is array:
        return True
    base = getattr(saved, "base", None)
    return base is not None and (base is array or base is getattr(array, "base", 0))


def _saved_versions(saved: tuple, inputs: tuple, out: Tensor) -> tuple:
    """(version counter, version now, saved array, producer) for each input or output whose
    storage the node saved: backward checks them (PyTorch's in-place safety). The producer is
    the input's node, or None for the node's own output (no reference cycle through it)."""
    found = []
    out_data = out._data
    for s in saved:
        if type(s) is not np.ndarray:
            continue
        if s is out_data or (s.base is not None and _shares_storage(s, out_data)):
            found.append((out._version, 0, s, None))
            continue
        for x in inputs:
            if type(x) is not np.ndarray and isinstance(x, Tensor) and (
                    s is x._data or (s.base is not None and _shares_storage(s, x._data))):
                found.append((x._version, x._version.value, s, x._ctx or _LEAF))
                break
    return tuple(found)


_LEAF = "leaf"


def _check_versions(node: Function) -> None:
    for counter, seen, arr, producer in node.saved_versions:
        if counter.value != seen:
            made_by = _node_name(node if producer is None else producer)
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: [shenjing.{arr.dtype} tensor of shape "
                f"{list(arr.shape)}], which is output 0 of {made_by}, is at version "
                f"{counter.value}; expected version {seen} instead. Hint: the tensor was "
                f"changed in place (add_, mul_, copy_, x[...] = ..., an optimizer step) after "
                f"{_node_name(node)} saved it for backward; change a clone instead, or "
                f"compute before the change."
            )


def _node_name(ctx) -> str:
    return "AccumulateGrad (a leaf)" if ctx is _LEAF else f"{type(ctx).__name__}Backward"


_FLOAT64 = np.dtype(np.float64)  # NumPy's canonical instance: an identity test is enough here


def _any_float64(arrays) -> bool:
    """Whether an operand is float64; if none is, NumPy's float64 result is promotion creep
    (integer or bool arrays meeting Python floats or float math) and torch gives the default
    float dtype instead. Ops asked for a dtype (Cast) keep theirs."""
    return any(getattr(a, "dtype", None) == np.float64 for a in arrays)


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


def backward(tensor: Tensor, gradient=None, retain_graph: bool = False) -> None:
    """Accumulate d(tensor)/d(leaf) into every leaf's `.grad` (Tensor.backward calls this)."""
    if not tensor._requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph "
            "(was it computed under no_grad, or from tensors without requires_grad=True?)"
        )
    data = tensor._data
    if gradient is None:
        if data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs; this "
                f"tensor has shape {tuple(data.shape)}, so pass a gradient of that shape"
            )
        g0 = np.ones_like(data)
    else:
        g0 = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient)
        if g0.shape != data.shape:
            raise ValueError(
                f"backward: gradient has shape {tuple(g0.shape)}, expected "
                f"{tuple(data.shape)} (the shape of the tensor)"
            )
        g0 = g0.astype(data.dtype, copy=False)
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
        if "tensor_hooks" in node.__dict__:
            g = _run_output_hooks(node, g)
        _check_versions(node)
        inputs = node.inputs
        in_grads = node.backward(node, g)
        if type(in_grads) is not tuple:  # a one-input op may return its gradient bare
            in_grads = (in_grads,)
        for x, need, gx in zip(inputs, node.needs_input_grad, in_grads):
            if not need or gx is None:
                continue
            xd = x._data
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


def _run_hooks(hooks: dict, g: np.ndarray) -> np.ndarray:
    """Call each hook with the gradient as a Tensor; a returned tensor replaces it."""
    for hook in list(hooks.values()):
        out = hook(Tensor._make(g))
        if out is not None:
            g = out._data if isinstance(out, Tensor) else np.asarray(out)
    return g


def _run_output_hooks(node: Function, g: np.ndarray) -> np.ndarray:
    """Hooks and retain_grad of the non-leaf tensor `node` produced, on its whole gradient."""
    hooks = node.tensor_hooks
    if hooks:
        g = _run_hooks(hooks, g)
    ref = node.__dict__.get("retained")
    t = ref() if ref is not None else None
    if t is not None:
        t.grad = Tensor._make(np.array(g, copy=True)) if t.grad is None else (
            Tensor._make(t.grad._data + g))
    return g


def _returned_twice(gx: np.ndarray, in_grads) -> bool:
    """Whether backward handed the same array to two inputs (then neither may own it)."""
    n = 0
    for a in in_grads:
        if a is gx:
            n += 1
    return n > 1


def _accumulate_leaf(x: Tensor, g: np.ndarray, own: bool = False) -> None:
    """Add g into x.grad; a first gradient not `own`ed is copied so no two leaves (nor the
    caller's upstream gradient) share an array. Leaf hooks see the gradient first."""
    if x._hooks:
        g, own = _run_hooks(x._hooks, g), False
    if x.grad is None:
        x.grad = Tensor._make(g if own else np.array(g, copy=True))
    else:
        x.grad._data = x.grad._data + g


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
