"""Transfer and incremental learning on any `nn.Module`.

* `freeze(model, prefixes)`: `requires_grad_(False)` on every parameter under the given
  module paths (optimizers skip parameters that do not require grad).
* `replace_head(model, num_classes)`: a fresh last `Linear` with `num_classes` outputs.
* `param_groups(model, lrs)`: optimizer parameter groups with per-prefix (discriminative)
  learning rates, trainable parameters only.
* `load_torch_safetensors(model, path)`: a PyTorch `state_dict` saved with
  `safetensors.torch.save_file` loads into the zoo model of the same architecture.
* `partial_fit(model, optimizer, loss_fn, x, y)`: one pass of updates over a chunk of data
  that just arrived; the optimizer (and its state) is the caller's, so calling it chunk after
  chunk continues training rather than restarting it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

import numpy as np

import shenjing as sj

from .. import nn

__all__ = ["freeze", "unfreeze", "replace_head", "param_groups", "trainable_parameters",
           "load_torch_safetensors", "partial_fit", "module_prefixes"]


def _under(name: str, prefix: str) -> bool:
    prefix = prefix.rstrip(".")
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def module_prefixes(model: nn.Module, depth: int = 2) -> list[str]:
    """Module paths that own parameters, up to `depth` levels (for error messages and help)."""
    seen: list[str] = []
    for name, _ in model.named_parameters():
        parts = name.split(".")[:-1]
        for d in range(1, min(depth, len(parts)) + 1):
            path = ".".join(parts[:d])
            if path not in seen:
                seen.append(path)
    return seen


def _matching(model: nn.Module, prefixes: Iterable[str], what: str) -> list[tuple[str, object]]:
    prefixes = list(prefixes)
    named = list(model.named_parameters())
    for prefix in prefixes:
        if not isinstance(prefix, str) or not prefix.strip("."):
            raise ValueError(f"{what}: prefixes must be non-empty module paths, got {prefix!r}")
        if not any(_under(name, prefix) for name, _ in named):
            raise ValueError(f"{what}: no parameter of {type(model).__name__} lies under "
                             f"{prefix!r}; module paths are {module_prefixes(model)}")
    return [(name, p) for name, p in named if any(_under(name, q) for q in prefixes)]


def freeze(model: nn.Module, prefixes: Iterable[str]) -> list[str]:
    """Stop training the parameters under `prefixes` (e.g. ["features"], ["0", "3"]).

    Returns the names of the parameters frozen. Raises ValueError naming a prefix that matches
    no parameter, and listing the model's module paths.
    """
    matched = _matching(model, prefixes, "freeze")
    for _, p in matched:
        p.requires_grad_(False)
    return [name for name, _ in matched]


def unfreeze(model: nn.Module, prefixes: Iterable[str]) -> list[str]:
    """Undo `freeze` for the parameters under `prefixes`; returns their names."""
    matched = _matching(model, prefixes, "unfreeze")
    for _, p in matched:
        p.requires_grad_(True)
    return [name for name, _ in matched]


def trainable_parameters(model: nn.Module) -> list:
    """The parameters that require grad, in `named_parameters` order."""
    return [p for p in model.parameters() if p.requires_grad]


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"replace_head: {type(model).__name__} has no Linear layer to replace")
    return found[-1]


def replace_head(model: nn.Module, num_classes: int) -> str:
    """Swap the model's last `Linear` for a freshly initialized one with `num_classes` outputs.

    The new layer trains even if the old one was frozen. Returns its module path.
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive int, got {num_classes!r}")
    path, old = _last_linear(model)
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    new = nn.Linear(old.in_features, int(num_classes), bias=old.bias is not None)
    setattr(parent, attr, new)
    return path


def param_groups(model: nn.Module, lrs: Mapping[str, float],
                 default_lr: float | None = None) -> list[dict]:
    """Parameter groups for an optimizer with a learning rate per module prefix.

    `lrs` maps prefixes to learning rates (the first matching prefix wins); trainable
    parameters under none of them form a last group with `default_lr` (the optimizer's
    default when None). Frozen parameters are left out.

    Example: ``optim.Adam(param_groups(model, {"features": 1e-4}), lr=1e-3)``.
    """
    _matching(model, lrs.keys(), "param_groups")
    groups: dict[str | None, list] = {prefix: [] for prefix in lrs}
    groups[None] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            owner = next((q for q in lrs if _under(name, q)), None)
            groups[owner].append(p)
    out = [{"params": ps, "lr": float(lrs[q])} for q, ps in groups.items()
           if q is not None and ps]
    if groups[None]:
        out.append({"params": groups[None]} if default_lr is None
                   else {"params": groups[None], "lr": float(default_lr)})
    if not out:
        raise ValueError("param_groups: every parameter is frozen; nothing to optimize")
    return out


def load_torch_safetensors(model: nn.Module, path: str | os.PathLike,
                           strict: bool = True) -> nn.Module:
    """Load a PyTorch state_dict exported with ``safetensors.torch.save_file(sd, path)``.

    Zoo models use PyTorch's parameter names and layouts, so the arrays go in unchanged.
    Raises ValueError naming missing, unexpected or mis-shaped keys.
    """
    arrays = sj.load(path)
    if not isinstance(arrays, dict):
        raise ValueError(f"load_torch_safetensors: {os.fspath(path)!r} holds no state dict")
    own = model.state_dict()
    missing = [k for k in own if k not in arrays]
    unexpected = [k for k in arrays if k not in own]
    if strict and (missing or unexpected):
        raise ValueError(f"load_torch_safetensors: {os.fspath(path)!r} does not fit "
                         f"{type(model).__name__}: missing keys {missing[:8]}, unexpected keys "
                         f"{unexpected[:8]}")
    for key, value in own.items():
        if key in arrays and tuple(arrays[key].shape) != tuple(value.shape):
            raise ValueError(f"load_torch_safetensors: {key!r} has shape "
                             f"{tuple(arrays[key].shape)} in the file, the model expects "
                             f"{tuple(value.shape)}")
    model.load_state_dict({k: v for k, v in arrays.items() if k in own}, strict=strict)
    return model


def partial_fit(model: nn.Module, optimizer, loss_fn: Callable, x: np.ndarray, y: np.ndarray,
                batch_size: int = 32, shuffle: bool = True,
                rng: np.random.Generator | None = None) -> float:
    """Train `model` for one pass over a chunk (x, y) that just arrived; returns its mean loss.

    The optimizer is the caller's and keeps its state (Adam's moments, step counts) from
    chunk to chunk, as in scikit-learn's `partial_fit`, so data arriving in parts trains the
    same way as one long epoch over the parts in order.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"partial_fit: x and y must be non-empty and of equal length, got "
                         f"{len(x)} and {len(y)}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"partial_fit: batch_size must be a positive int, got {batch_size!r}")
    order = (rng or np.random.default_rng()).permutation(len(x)) if shuffle else np.arange(len(x))
    model.train()
    total = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        loss = loss_fn(model(sj.from_numpy(x[idx])), sj.from_numpy(y[idx]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(x)
