"""Pruning, with torch.nn.utils.prune's names and semantics, plus channel pruning that shrinks.

Mask pruning (seed 003 §9 Q4) reparametrizes a tensor: ``prune.l1_unstructured(conv,
"weight", amount=0.5)`` moves the parameter to ``weight_orig``, stores a ``weight_mask``
buffer, and a forward pre-hook (the method object, as in torch) recomputes
``weight = weight_orig * weight_mask`` before every forward, so the
pruned entries stay zero while fine-tuning (their gradient is masked too). Pruning the same
tensor again prunes among the entries still alive, as torch's PruningContainer does;
``prune.remove`` makes the pruning permanent. Masks are computed on NumPy arrays; ties between
equal magnitudes go to the lower flat index.

Masks save no time with dense kernels. `prune_channels` does: it removes whole output
channels of Conv/Linear layers in a Sequential (and the matching BatchNorm entries and input
channels of the next layer), returning a smaller dense model.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Iterable

import numpy as np

import shenjing as sj

from .. import conv as conv_layers
from .. import layers as plain_layers
from ..conv import Conv1d, Conv2d
from ..layers import Flatten, Linear
from ..module import Identity as IdentityModule
from ..module import Module, Parameter, Sequential
from ..norm import BatchNorm1d, BatchNorm2d

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured",
           "L1Unstructured", "RandomStructured", "LnStructured", "CustomFromMask", "identity",
           "random_unstructured", "l1_unstructured", "random_structured", "ln_structured",
           "global_unstructured", "custom_from_mask", "remove", "is_pruned", "prune_channels"]

_HOOKS_ATTR = "_pruning_methods"  # per-module {tensor name: (method, hook handle)}


# ---------------------------------------------------------------------------- hooks
def _methods(module: Module) -> dict:
    """The module's pruning methods by tensor name, each with its forward pre-hook handle."""
    registry = module.__dict__.get(_HOOKS_ATTR)
    if registry is None:
        registry = {}
        object.__setattr__(module, _HOOKS_ATTR, registry)
    return registry


def _attach(module: Module, method: "BasePruningMethod") -> None:
    handle = module.register_forward_pre_hook(method)
    _methods(module)[method._tensor_name] = (method, handle)


def _detach_method(module: Module, name: str) -> None:
    _, handle = _methods(module).pop(name)
    handle.remove()


# ---------------------------------------------------------------------------- methods
def _nparams_to_prune(amount: int | float, size: int, what: str) -> int:
    """torch's rule: an int is a count, a float in [0, 1] a fraction (rounded)."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"{what}: amount must be an int or a float, got "
                        f"{type(amount).__name__}")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"{what}: amount={amount} must be a non-negative int")
        n = int(amount)
    else:
        if not 0.0 <= float(amount) <= 1.0:
            raise ValueError(f"{what}: amount={amount} must be a float in [0, 1]")
        n = round(float(amount) * size)
    if n > size:
        raise ValueError(f"{what}: amount={amount} must not exceed the {size} units that can "
                         f"be pruned")
    return n


def _check_dim(dim: int, ndim: int, what: str) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"{what}: dim={dim} is out of range for a {ndim}-d tensor")
    return dim % ndim


class BasePruningMethod:
    """A way of computing a mask; also the callable run before each forward."""

    PRUNING_TYPE = "unstructured"  # or "structured" (needs `dim`) or "global"
    _tensor_name: str = ""

    def compute_mask(self, t: np.ndarray, default_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self._tensor_name, self.apply_mask(module))

    def apply_mask(self, module: Module) -> sj.Tensor:
        """orig * mask, recorded in the graph so that orig's gradient is masked."""
        orig = getattr(module, self._tensor_name + "_orig")
        return orig * getattr(module, self._tensor_name + "_mask")

    @classmethod
    def apply(cls, module: Module, name: str, *args, importance_scores=None,
              **kwargs) -> "BasePruningMethod":
        """Prune `module.<name>` with a new `cls(*args, **kwargs)`, stacking on earlier ones."""
        if not isinstance(module, Module):
            raise TypeError(f"prune: expected a Module, got {type(module).__name__}")
        registry = _methods(module)
        method = cls(*args, **kwargs)
        method._tensor_name = name
        old = registry.get(name, (None, None))[0]
        if old is not None:  # a new container, so a failure below leaves the old one as it was
            earlier = tuple(old) if isinstance(old, PruningContainer) else (old,)
            method = PruningContainer(*earlier, method)
            orig = getattr(module, name + "_orig")
            default_mask = getattr(module, name + "_mask").numpy().copy()
        else:
            orig = getattr(module, name, None)
            if not isinstance(orig, Parameter):
                raise ValueError(f"prune: {type(module).__name__} has no parameter {name!r} "
                                 f"(its parameters: {[n for n, _ in module.named_parameters()]})")
            default_mask = np.ones(orig.shape, dtype=orig.dtype)
        # torch scores the current (masked) tensor by default
        scores = (orig.numpy() * default_mask if importance_scores is None
                  else _array(importance_scores))
        if scores.shape != tuple(orig.shape):
            raise ValueError(f"prune: importance_scores has shape {scores.shape}, expected "
                             f"{tuple(orig.shape)} (the shape of {name!r})")
        mask = method.compute_mask(scores, default_mask=default_mask)
        if old is None:
            delattr(module, name)
            module.register_parameter(name + "_orig", orig)
        else:
            _detach_method(module, name)
        module.register_buffer(name + "_mask", sj.from_numpy(mask.astype(orig.dtype)))
        setattr(module, name, method.apply_mask(module))
        _attach(module, method)
        return method

    def prune(self, t: sj.Tensor) -> sj.Tensor:
        """t with this method's mask applied (no module involved)."""
        arr = _array(t)
        return t * sj.from_numpy(self.compute_mask(arr, np.ones_like(arr)))

    def remove(self, module: Module) -> None:
        """Make the pruning permanent: `name` becomes a plain Parameter holding orig * mask."""
        name = self._tensor_name
        with sj.no_grad():
            weight = self.apply_mask(module)
        orig = getattr(module, name + "_orig")
        delattr(module, name)
        delattr(module, name + "_orig")
        delattr(module, name + "_mask")
        with sj.no_grad():
            orig.copy_(weight)
        setattr(module, name, orig)


def _array(t: Any) -> np.ndarray:
    return t.numpy() if isinstance(t, sj.Tensor) else np.asarray(t)


class PruningContainer(BasePruningMethod):
    """Successive pruning of one tensor: each new method prunes only what is still alive."""

    def __init__(self, *methods: BasePruningMethod) -> None:
        self._pruning_methods: tuple = ()
        for m in methods:
            self.add_pruning_method(m)

    def add_pruning_method(self, method: BasePruningMethod) -> None:
        if not isinstance(method, BasePruningMethod):
            raise TypeError(f"{type(method).__name__} is not a BasePruningMethod subclass")
        if self._pruning_methods and method._tensor_name != self._tensor_name:
            raise ValueError(f"can only add pruning methods acting on {self._tensor_name!r} "
                             f"to this container, got one for {method._tensor_name!r}")
        self._tensor_name = method._tensor_name
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t: np.ndarray, default_mask: np.ndarray) -> np.ndarray:
        method = self._pruning_methods[-1]
        new_mask = default_mask.astype(t.dtype if t.dtype.kind == "f" else np.float32)
        if method.PRUNING_TYPE == "unstructured":
            alive = new_mask == 1
        elif method.PRUNING_TYPE == "structured":
            dim = _check_dim(method.dim, t.ndim, type(method).__name__)
            others = tuple(d for d in range(t.ndim) if d != dim)
            alive = [slice(None)] * t.ndim
            alive[dim] = new_mask.sum(axis=others) != 0
            alive = tuple(alive)
        else:
            alive = (slice(None),) * t.ndim
        new_mask[alive] = method.compute_mask(t[alive], default_mask=new_mask[alive])
        return new_mask


class Identity(BasePruningMethod):
    """Prunes nothing: the mask is all ones (useful to reparametrize uniformly)."""

    def compute_mask(self, t: np.ndarray, default_mask: np.ndarray) -> np.ndarray:
        return default_mask.copy()


class RandomUnstructured(BasePruningMethod):
    """Zero `amount` randomly chosen entries (shenjing's global generator)."""

    def __init__(self, amount: int | float) -> None:
        self.amount = amount

    def compute_mask(self, t: np.ndarray, default_mask: np.ndarray) -> np.ndarray:
        k = _nparams_to_prune(self.amount, t.size, type(self).__name__)
        mask = default_mask.copy()
        if k:
            scores = sj.rand(t.size, dtype=sj.float64).numpy()
            mask.reshape(-1)[np.argsort(-scores, kind="stable")[:k]] = 0
        return mask


class L1Unstructured(BasePruningMethod):
    """Zero the `amount` entries of smallest absolute value."""

    def __init__(self, amount: int | float) -> None:
        self.amount = amount

    def compute_mask(self, t: np.ndarray, default_mask: np.ndarray) -> np.ndarray:
        k = _nparams_to_prune(self.amount, t.size, type(self).__name__)
        mask = default_mask.copy()
        if k:
            mask.reshape(-1)[np.argsort(np.abs(t).reshape(-1), kind="stable")[:k]] = 0
        return mask


class _Structured(BasePruningMethod):
    """Prune whole slices along `dim`, keeping those whose `_scores` are largest."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: int | float, dim: int = -1) -> None:
        self.amount, self.dim = amount, dim

    def _scores(self, t: np.ndarray, dim: int) -> np.ndarray:
        raise NotImplementedError

    def compute_mask(self, t: np.ndarray, default_mask: np.ndarray) -> np.ndarray:
        what = type(self).__name__
        dim = _check_dim(self.dim, t.ndim, what)
        k = _nparams_to_prune(self.amount, t.shape[dim], what)
        if k == 0:
            return default_mask.copy()
        keep = np.argsort(-self._scores(t, dim), kind="stable")[:t.shape[dim] - k]
        mask = np.zeros_like(default_mask)
        index = [slice(None)] * t.ndim
        index[dim] = keep
        mask[tuple(index)] = 1
        return mask * default_mask


class RandomStructured(_Structured):
    """Remove `amount` randomly chosen slices along `dim`."""

    def _scores(self, t: np.ndarray, dim: int) -> np.ndarray:
        return sj.rand(t.shape[dim], dtype=sj.float64).numpy()


class LnStructured(_Structured):
    """Remove the `amount` slices along `dim` with the smallest L`n` norm."""

    def __init__(self, amount: int | float, n: float | int | str, dim: int = -1) -> None:
        super().__init__(amount, dim)
        if n == "fro":
            n = 2
        if isinstance(n, str) or isinstance(n, bool) or not isinstance(n, numbers.Real):
            raise ValueError(f"LnStructured: n must be a number, inf, -inf or 'fro', got {n!r}")
        self.n = n

    def _scores(self, t: np.ndarray, dim: int) -> np.ndarray:
        rows = np.moveaxis(t, dim, 0).reshape(t.shape[dim], -1).astype(np.float64)
        return np.linalg.norm(rows, ord=self.n, axis=1)


class CustomFromMask(BasePruningMethod):
    """Use a given mask (combined with any earlier mask)."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Any) -> None:
        self.mask = _array(mask)

    def compute_mask(self, t: np.ndarray, default_mask: np.ndarray) -> np.ndarray:
        if self.mask.shape != default_mask.shape:
            raise ValueError(f"custom_from_mask: mask has shape {self.mask.shape}, expected "
                             f"{default_mask.shape}")
        return default_mask * self.mask.astype(default_mask.dtype)


# ---------------------------------------------------------------------------- functions
def identity(module: Module, name: str) -> Module:
    """Reparametrize `name` with an all-ones mask."""
    Identity.apply(module, name)
    return module


def random_unstructured(module: Module, name: str, amount: int | float) -> Module:
    """Zero `amount` (count, or fraction of the live entries) random entries of `name`."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module: Module, name: str, amount: int | float,
                    importance_scores: Any = None) -> Module:
    """Zero the `amount` live entries of `name` with the smallest |importance| (|weight|)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module: Module, name: str, amount: int | float, dim: int) -> Module:
    """Zero `amount` random slices of `name` along `dim`."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module: Module, name: str, amount: int | float, n, dim: int,
                  importance_scores: Any = None) -> Module:
    """Zero the `amount` slices of `name` along `dim` with the smallest L`n` norm."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module: Module, name: str, mask: Any) -> Module:
    """Prune `name` with the given 0/1 mask."""
    CustomFromMask.apply(module, name, mask=mask)
    return module


def global_unstructured(parameters: Iterable[tuple[Module, str]], pruning_method: type,
                        importance_scores: dict | None = None, **kwargs) -> None:
    """Prune all `(module, name)` tensors together: `amount` counts over their union, so
    layers with many small weights lose more of them than layers with large ones."""
    parameters = list(parameters)
    if not parameters:
        raise ValueError("global_unstructured: expected at least one (module, name) pair")
    importance_scores = importance_scores or {}
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f"global_unstructured: only unstructured methods apply, got "
                        f"{pruning_method.__name__} ({method.PRUNING_TYPE})")
    scores, masks = [], []
    for module, name in parameters:
        current = getattr(module, name)
        scores.append(_array(importance_scores.get((module, name), current)).reshape(-1))
        mask = getattr(module, name + "_mask", None)
        masks.append(np.ones(current.numel()) if mask is None else mask.numpy().reshape(-1))
    container = PruningContainer(method)
    flat = np.concatenate(scores).astype(np.float64)
    final = container.compute_mask(flat, np.concatenate(masks).astype(np.float64))
    start = 0
    for module, name in parameters:
        shape = tuple(getattr(module, name).shape)
        n = math.prod(shape)
        custom_from_mask(module, name, final[start:start + n].reshape(shape))
        start += n


def remove(module: Module, name: str) -> Module:
    """Make the pruning of `name` permanent and drop `name_orig`, `name_mask` and the hook."""
    entry = _methods(module).get(name)
    if entry is None:
        raise ValueError(f"Parameter {name!r} of module {type(module).__name__} has to be "
                         f"pruned before pruning can be removed")
    entry[0].remove(module)
    _detach_method(module, name)
    return module


def is_pruned(module: Module) -> bool:
    """Whether `module` or any sub-module has a pruned tensor."""
    return any(m.__dict__.get(_HOOKS_ATTR) for m in module.modules())


# ---------------------------------------------------------------------------- shrinking
_CONVS = (Conv1d, Conv2d)
_WEIGHTED = (*_CONVS, Linear)


_NORMS = (BatchNorm1d, BatchNorm2d)
# Modules that act on each channel separately, so a pruned channel can be followed through.
_PER_CHANNEL = (IdentityModule, *(
    getattr(plain_layers, n) for n in ("ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid",
                                       "Tanh", "Dropout", "Dropout1d", "Dropout2d")), *(
    getattr(conv_layers, n) for n in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d")))


def _new_like(layer: Module, in_ch: int, out_ch: int) -> Module:
    has_bias = getattr(layer, "bias", None) is not None
    dtype = layer.weight.dtype
    if isinstance(layer, Linear):
        return Linear(in_ch, out_ch, bias=has_bias, dtype=dtype)
    return type(layer)(in_ch, out_ch, layer.kernel_size, stride=layer.stride,
                       padding=layer.padding, dilation=layer.dilation, bias=has_bias,
                       padding_mode=layer.padding_mode, dtype=dtype)


def _copy_into(module: Module, arrays: dict[str, np.ndarray]) -> Module:
    with sj.no_grad():
        for name, value in arrays.items():
            getattr(module, name).copy_(sj.from_numpy(np.array(value)))
    return module


def _plan(children: list[Module], i: int) -> tuple[int, list[int], bool] | None:
    """For the weighted layer at i: the index of the next weighted layer, the BatchNorms in
    between, and whether a Flatten separates them; None when channels cannot be followed."""
    norms, flattened = [], False
    for j in range(i + 1, len(children)):
        m = children[j]
        if isinstance(m, _WEIGHTED):
            if isinstance(m, _CONVS) and (flattened or m.groups != 1):
                return None
            return j, norms, flattened
        if isinstance(m, _NORMS):
            norms.append(j)
        elif isinstance(m, Flatten) and not flattened:
            flattened = True
        elif not isinstance(m, _PER_CHANNEL):
            return None
    return None


def prune_channels(model: Sequential, amount: float, n: float = 2) -> Sequential:
    """A smaller dense copy of `model` with `amount` of the output channels (conv filters,
    Linear units) of each hidden Conv/Linear layer removed, those of smallest L`n` norm,
    together with the matching BatchNorm entries and input channels of the next layer
    (through Flatten too). The last weighted layer keeps its outputs (they are the model's).

    Works on a flat `nn.Sequential` whose layers between two weighted ones act per channel
    (activations, pooling, dropout, BatchNorm, one Flatten); other layers stop the pruning of
    the layer before them. Pruned tensors (`weight_orig`) are made permanent in the copy first.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"prune_channels: expected an nn.Sequential, got {type(model).__name__}")
    if isinstance(amount, bool) or not 0.0 <= float(amount) < 1.0:
        raise ValueError(f"prune_channels: amount={amount!r} must be a fraction in [0, 1)")
    model = copy.deepcopy(model)
    for m in model.modules():
        for name in list(m.__dict__.get(_HOOKS_ATTR, {})):
            remove(m, name)
    names = [name for name, _ in model.named_children()]
    children = [getattr(model, name) for name in names]
    for i, layer in enumerate(children):
        if not isinstance(layer, _WEIGHTED) or (isinstance(layer, _CONVS) and layer.groups != 1):
            continue
        plan = _plan(children, i)
        if plan is None:
            continue
        j, norms, flattened = plan
        weight = layer.weight.numpy()
        channels = weight.shape[0]
        n_keep = max(1, channels - round(float(amount) * channels))
        scores = np.linalg.norm(weight.reshape(channels, -1).astype(np.float64), ord=n, axis=1)
        keep = np.sort(np.argsort(-scores, kind="stable")[:n_keep])
        small = _copy_into(_new_like(layer, weight.shape[1], n_keep),
                           _sliced(layer, keep, axis=0))
        children[i] = small
        for k in norms:
            children[k] = _shrink_norm(children[k], keep)
        nxt = children[j]
        in_index = keep
        if flattened:
            per_channel, rest = divmod(nxt.weight.shape[1], channels)
            if rest:
                raise ValueError(f"prune_channels: {names[j]} has {nxt.weight.shape[1]} inputs,"
                                 f" not a multiple of the {channels} channels before Flatten")
            in_index = (keep[:, None] * per_channel + np.arange(per_channel)).reshape(-1)
        out_ch = nxt.weight.shape[0]
        arrays = {"weight": nxt.weight.numpy()[:, in_index]}
        if getattr(nxt, "bias", None) is not None:
            arrays["bias"] = nxt.bias.numpy()
        children[j] = _copy_into(_new_like(nxt, len(in_index), out_ch), arrays)
    for name, child in zip(names, children):
        setattr(model, name, child)
    return model


def _sliced(layer: Module, keep: np.ndarray, axis: int) -> dict[str, np.ndarray]:
    out = {"weight": np.take(layer.weight.numpy(), keep, axis=axis)}
    if getattr(layer, "bias", None) is not None:
        out["bias"] = layer.bias.numpy()[keep]
    return out


def _shrink_norm(norm: Module, keep: np.ndarray) -> Module:
    small = type(norm)(len(keep), eps=norm.eps, momentum=norm.momentum, affine=norm.affine,
                       track_running_stats=norm.track_running_stats)
    arrays = {}
    for name in ("weight", "bias", "running_mean", "running_var"):
        if getattr(norm, name, None) is not None:
            arrays[name] = getattr(norm, name).numpy()[keep]
    if norm.track_running_stats:
        arrays["num_batches_tracked"] = norm.num_batches_tracked.numpy()
    small.train(norm.training)
    return _copy_into(small, arrays)
