"""The Optimizer base class: parameter groups, per-parameter state, zero_grad and state_dict.

Semantics follow `torch.optim.Optimizer` (single-tensor, CPU code path):

* `params` is an iterable of Parameters, of `(name, Parameter)` pairs, or of dicts (parameter
  groups with their own options); options a group leaves out come from the defaults.
* `step()` skips a parameter whose `.grad` is None or that does not require grad.
* `state_dict()` is torch's layout: ``{"state": {index: {...}}, "param_groups": [{...,
  "params": [index, ...]}]}`` with parameters numbered in group order. State arrays are
  NumPy arrays of the parameter's dtype; ``"step"`` is a ``np.float32`` scalar, as torch keeps
  a float32 step tensor. `load_state_dict` copies the arrays, so two optimizers never share
  state (torch's `load_state_dict` may alias them).

Updates run on the raw arrays in place with `out=` ufuncs and never record a graph. Every
write into a parameter goes through an array obtained from `Optimizer._param_array(p)`, the
one place an optimizer gets write access to a parameter's storage.
Hyper-parameters are turned into Python floats before they touch an array, so a float32
parameter stays float32 whatever type the user gave the learning rate. Each optimizer's
arithmetic is one element-wise kernel over (param, grad, state..., two scratch arrays);
`Optimizer._apply` runs it on the whole array, or slice by slice for big parameters, with
scratch memory reused across steps so the steady state allocates nothing.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections import defaultdict
from itertools import chain
from typing import Any, Callable, Iterable

import numpy as np

from .. import compiled
from ..autograd import enable_grad, no_grad
from ..backend import get_array_module
from ..tensor import Tensor

__all__ = ["Optimizer", "required", "check_betas", "check_common", "check_hparam",
           "ema_square_", "grad_for_update", "lerp_", "next_step", "scalar_state"]

_CHUNK = 1 << 17  # elements per slice when a big parameter is updated slice by slice
# parameters with more elements than this are updated by slices: at 256K (measured on 2
# cores) Adam on the seed-003 CNN's 692K-element fc weight runs 4.5 -> 3.3 ms a step, SGD
# with momentum on AlexNet's conv weights 5.3 -> 4.4 ms; below it, slicing only costs
_CHUNK_ABOVE = 1 << 18


class _Required:
    """Marks a default that every parameter group must set (torch.optim.optimizer.required)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def _mark_step(step: Callable) -> Callable:
    """Wrap a subclass's `step` so LR schedulers can tell whether it has been called."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        self._opt_called = True
        return step(self, *args, **kwargs)

    wrapper._marks_opt_called = True
    return wrapper


def check_hparam(owner: str, ok: bool, what: str, name: str, value: Any, expected: str) -> None:
    """Raise ValueError naming the optimizer, the argument and its value unless `ok`."""
    if not ok:
        raise ValueError(f"{owner}: Invalid {what}: {name}={value!r} (expected {expected})")


def check_common(owner: str, lr: Any, weight_decay: Any, eps: Any | None = None) -> None:
    """The checks every optimizer makes: lr >= 0, weight_decay >= 0 and eps >= 0."""
    check_hparam(owner, lr >= 0.0, "learning rate", "lr", lr, "lr >= 0")
    check_hparam(owner, weight_decay >= 0.0, "weight_decay value", "weight_decay",
                 weight_decay, "weight_decay >= 0")
    if eps is not None:
        check_hparam(owner, eps >= 0.0, "epsilon value", "eps", eps, "eps >= 0")


def check_betas(owner: str, betas: Any) -> tuple[float, float]:
    """The pair (beta1, beta2), each in [0, 1), as torch's Adam-family checks."""
    betas = tuple(betas)
    if len(betas) != 2:
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        check_hparam(owner, 0.0 <= beta < 1.0, f"beta parameter at index {i}", "betas",
                     betas, f"betas[{i}] in [0, 1)")
    return betas


def scalar_state(value: float) -> np.floating:
    """A per-parameter scalar kept as torch keeps its 0-d state tensors (NAdam's mu_product,
    ASGD's eta and mu): float64 when the default dtype is float64, else float32, so the
    rounding, and hence the trajectory, is torch's."""
    from .. import zeros  # late: the package imports optim

    dtype = np.float64 if zeros(()).numpy().dtype == np.float64 else np.float32
    return dtype(value)


def compiled_update(x: np.ndarray, *arrays) -> bool:
    """An update may run its compiled kernel (shenjing.compiled): the kernels are enabled
    and every array is float32 and C-contiguous (None entries are options that are off)."""
    return (x.dtype == np.float32 and compiled.enabled()
            and all(a is None or (a.dtype == np.float32 and a.flags.c_contiguous)
                    for a in (x,) + arrays))


def grad_for_update(g: np.ndarray, x: np.ndarray, weight_decay: float, maximize: bool,
                    out: np.ndarray) -> np.ndarray:
    """The gradient an update uses: negated when maximizing, plus L2 decay `weight_decay * x`.

    Returns `g` itself when neither applies; otherwise writes into `out` (the user's `.grad`
    is never modified).
    """
    xp = get_array_module(g)
    if weight_decay != 0:
        xp.multiply(x, weight_decay, out=out)
        (xp.subtract if maximize else xp.add)(out, g, out=out)
        return out
    if maximize:
        return xp.negative(g, out=out)
    return g


def lerp_(dst: np.ndarray, end: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """dst += weight * (end - dst), in place (torch's lerp_ for the usual small weights)."""
    xp = get_array_module(dst)
    xp.subtract(end, dst, out=tmp)
    tmp *= weight
    dst += tmp


def ema_square_(dst: np.ndarray, g: np.ndarray, decay: float, tmp: np.ndarray) -> None:
    """dst = decay * dst + (1 - decay) * g * g, in place (an EMA of the squared gradient)."""
    xp = get_array_module(dst)
    dst *= decay
    xp.multiply(g, 1.0 - decay, out=tmp)
    tmp *= g
    dst += tmp


_TORCH_BACKEND_FLAGS = ("foreach", "fused", "capturable", "differentiable")


def _accept_torch_flags(init: Callable) -> Callable:
    """Wrap a subclass's `__init__` so that torch's implementation switches are accepted.

    `foreach` and `fused` choose among torch kernels computing the same update: any value is
    accepted and ignored. `capturable` (CUDA graphs) and `differentiable` (autograd through
    the step) have no counterpart here: False is accepted, True refused.
    """

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        for flag in _TORCH_BACKEND_FLAGS:
            if kwargs.pop(flag, None) and flag in ("capturable", "differentiable"):
                raise ValueError(f"{type(self).__name__}: {flag}=True is not supported (a "
                                 f"torch CUDA/autograd option with no NumPy counterpart); "
                                 f"leave {flag}=False")
        return init(self, *args, **kwargs)

    wrapper._accepts_torch_flags = True
    return wrapper


class Optimizer:
    """Base class of every optimizer: holds `param_groups` and per-parameter `state`.

    Subclasses call `super().__init__(params, defaults)` and implement `_update(group)`,
    which updates the parameters of one group; `step` takes care of the closure.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_marks_opt_called", False):
            cls.step = _mark_step(step)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_accepts_torch_flags", False):
            cls.__init__ = _accept_torch_flags(init)

    #: state keys holding a scalar (kept as a NumPy scalar by load_state_dict), besides "step"
    _scalar_state_keys: tuple[str, ...] = ()

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or dicts, "
                f"but got a single {type(params).__name__}; wrap it in a list"
            )
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scratch: dict = {}  # shape -> two scratch views (see _buffers)
        self._flat_scratch: dict = {}  # dtype -> the two flat buffers behind them
        self._opt_called = False
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. to unfreeze layers later)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: param_group must be a dict, but got "
                            f"{type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{name}: optimizer parameters need to be organized in ordered "
                            "collections, but the ordering of tensors in sets changes between "
                            "runs; use a list instead")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(tensors):
            raise ValueError(f"{name}: all optimizer params should be with or without names; "
                             "some parameter names are missing")
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: optimizer can only optimize Tensors, but parameter "
                                f"{i} of the group is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (parameter {i} of "
                                 "the group was computed by an op; pass the leaf or .detach() "
                                 "it and set requires_grad)")
        group = dict(param_group)
        group["params"] = tensors
        if names:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            group.setdefault(key, default)
        if len({id(p) for p in tensors}) != len(tensors):
            warnings.warn(f"{name}: a parameter group contains duplicate parameters; each is "
                          "updated once per appearance", stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in tensors):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        if self.param_groups and ("param_names" in group) != (
                "param_names" in self.param_groups[0]):
            raise ValueError(f"{name}: all optimizer param groups should be with or without "
                             "names")
        self.param_groups.append(group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set `.grad` to None (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        with no_grad():
                            p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; `closure` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update(group)
        self._opt_called = True
        return loss

    def _update(self, group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    def _params_with_grad(self, group: dict[str, Any]) -> list:
        """(parameter, its array, its gradient array) for each parameter to update."""
        out = []
        for p in group["params"]:
            gt = p.grad
            if gt is None or not p.requires_grad:
                continue
            x, g = self._param_array(p), gt.numpy()
            if g.shape != x.shape:
                raise ValueError(
                    f"{type(self).__name__}.step: a parameter of shape {tuple(x.shape)} has a "
                    f"gradient of shape {tuple(g.shape)}"
                )
            if g.dtype != x.dtype:
                g = g.astype(x.dtype)
            out.append((p, x, g))
        return out

    @staticmethod
    def _param_array(p: Tensor) -> np.ndarray:
        """The storage of parameter `p`, which an update then writes in place.

        The only place where an optimizer takes write access to a parameter: every update
        (the kernels run by `_apply`, LBFGS's steps) writes into an array returned here, so
        this is where the parameter's autograd version is bumped: a graph that saved `p`
        before the step then refuses to backward instead of using the new values (torch).
        """
        p._bump_version()
        return p.numpy()

    def _apply(self, kernel: Callable, arrays: list, *scalars: Any) -> None:
        """Run an element-wise update `kernel(*arrays, tmp1, tmp2, *scalars)` in place.

        `arrays` starts with the parameter's array and its gradient; state arrays follow
        (None where an option is off). Parameters up to `_CHUNK_ABOVE` elements are updated in
        one go. Bigger ones are cut into `_CHUNK`-element slices updated one after the other,
        so the kernel's several passes run while a slice is still in cache: 1.7x faster on a
        37.7M-element (AlexNet fc) Adam update than whole-array passes over main memory.
        """
        x = arrays[0]
        n = x.size
        if n <= _CHUNK_ABOVE or not all(a is None or a.flags.c_contiguous for a in arrays):
            kernel(*arrays, *self._buffers(x, x.shape), *scalars)
            return
        flats = [None if a is None else a.reshape(-1) for a in arrays]
        tmp1, tmp2 = self._buffers(x, (_CHUNK,))
        for i in range(0, n, _CHUNK):
            j = min(i + _CHUNK, n)
            if j - i < _CHUNK:
                tmp1, tmp2 = tmp1[:j - i], tmp2[:j - i]
            kernel(*[None if f is None else f[i:j] for f in flats], tmp1, tmp2, *scalars)

    def _buffers(self, x: np.ndarray, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Two scratch arrays of `shape` and x's dtype, views of two flat buffers.

        Only one parameter is updated at a time, so every shape can use the same memory;
        the steady state allocates nothing.
        """
        dtype = x.dtype
        bufs = self._scratch.get(shape)
        if bufs is None or bufs[0].dtype != dtype:
            size = math.prod(shape)
            flat = self._flat_scratch.get(dtype)
            if flat is None or flat[0].size < size:
                xp = get_array_module(x)
                flat = self._flat_scratch[dtype] = (xp.empty(size, dtype), xp.empty(size, dtype))
                self._scratch.clear()  # views of the old, smaller buffers
            bufs = (flat[0][:size].reshape(shape), flat[1][:size].reshape(shape))
            self._scratch[shape] = bufs
        return bufs

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Optimizer state in torch's layout; the arrays are shared, not copied."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)] if isinstance(p, Tensor) else p: s
                 for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state saved by `state_dict` (or torch's), so training resumes exactly.

        Arrays (NumPy, or anything NumPy can read, such as torch tensors) are copied into the
        dtype of their parameter; "step" becomes a np.float32 scalar. Group options are taken
        from the saved groups; the parameters stay those of this optimizer.
        """
        name = type(self).__name__
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has a different "
                             f"number of parameter groups ({len(saved_groups)}) than the "
                             f"optimizer ({len(groups)})")
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"{name}.load_state_dict: loaded state dict contains a "
                                 f"parameter group that doesn't match the size of optimizer's "
                                 f"group: group {i} has {len(sg['params'])} parameters in the "
                                 f"state dict and {len(g['params'])} in the optimizer")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                p = id_map[k]
                state[p] = {key: _cast_state(p, key, value, self._scalar_state_keys)
                            for key, value in v.items()}
            else:
                state[k] = copy.deepcopy(v)
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            sg["params"] = g["params"]
            if "param_names" in g and "param_names" not in sg:
                sg["param_names"] = g["param_names"]
            new_groups.append(sg)
        self.state = state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines) + "\n)"


def _cast_state(p: Tensor, key: Any, value: Any, scalar_keys: tuple = ()) -> Any:
    """A private copy of one saved state value: "step" a np.float32, the keys in
    `scalar_keys` NumPy scalars of their saved dtype, other arrays in the parameter's dtype,
    lists element by element (LBFGS's history)."""
    if key == "step":
        return np.float32(float(value))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(p, None, v) for v in value)
    arr = value.numpy() if isinstance(value, Tensor) else value
    if isinstance(arr, np.ndarray) or hasattr(arr, "__array__"):
        arr = np.array(np.asarray(arr))  # a private copy (asarray: foreign __array__)
        if key in scalar_keys:
            if arr.size != 1:
                raise ValueError(f"load_state_dict: state {key!r} must be a scalar, got an "
                                 f"array of shape {arr.shape}")
            return arr.reshape(())[()]
        dtype = p.numpy().dtype
        if arr.dtype.kind == "f" and dtype.kind == "f":
            arr = arr.astype(dtype, copy=False)
        return arr
    return copy.deepcopy(value)


def next_step(state: dict) -> float:
    """Count one more step in state["step"] (a np.float32, as torch's) and return it."""
    t = float(state["step"]) + 1.0
    state["step"] = np.float32(t)
    return t
