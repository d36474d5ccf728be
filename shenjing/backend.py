"""The array module behind every op: the seam between shenjing and NumPy (or CuPy).

Ops never import NumPy. They call `xp.exp(a)`, `xp.matmul(a, b)`, ... on the module-level
`xp`, which forwards each name to the active array module. Switching the array module
(`use(...)`) is then one call, and a second backend (CuPy, on a GPU) is one more entry in
`_MODULES`, not a rewrite of every op. `tests/test_backend_seam.py` runs the op table with
a checking module and fails on any NumPy call that bypasses this seam.

Routines that only NumPy has, and that the fast paths rely on, are named in
`NUMPY_ONLY` below: a backend without them must provide an equivalent under the same name.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["xp", "use", "active", "get_array_module", "NUMPY_ONLY"]

# The NumPy routines the fast kernels use beyond the array API (ufunc.at for scatter-adds,
# stride tricks for im2col and pooling windows). CuPy provides all of them under these names.
NUMPY_ONLY = ("add.at", "lib.stride_tricks.as_strided", "lib.stride_tricks.sliding_window_view",
              "errstate", "einsum_path")

_MODULES = {"numpy": "numpy", "cupy": "cupy"}
_active: list[Any] = [np]


class _ArrayModule:
    """Forwards every attribute to the active array module (`xp.exp is numpy.exp`).

    A name is looked up once and then kept in the instance dict, so `xp.exp` costs a plain
    attribute read on the hot path; `use()` forgets them all."""

    def __getattr__(self, name: str):
        value = getattr(_active[0], name)
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"<shenjing array module: {getattr(_active[0], '__name__', _active[0])}>"


xp = _ArrayModule()


def active() -> Any:
    """The array module ops run on now."""
    return _active[0]


def use(module: str | ModuleType | Any) -> Any:
    """Make `module` (a name in `_MODULES` or a module-like object) the array module; returns
    the previous one so a caller can restore it."""
    prev = _active[0]
    if isinstance(module, str):
        if module not in _MODULES:
            raise ValueError(f"backend.use: unknown array module {module!r}; "
                             f"expected one of {sorted(_MODULES)}")
        try:
            module = importlib.import_module(_MODULES[module])
        except ImportError as e:
            raise ImportError(f"backend.use: array module {_MODULES[module]!r} is not "
                              f"installed ({e})") from None
    _active[0] = module
    xp.__dict__.clear()
    return prev


def get_array_module(*arrays) -> Any:
    """The array module that owns `arrays` (the active one for NumPy arrays)."""
    for a in arrays:
        mod = type(a).__module__
        if mod.startswith("cupy"):
            return importlib.import_module("cupy")
    return _active[0]
