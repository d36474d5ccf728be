"""Compiled kernels (numba) for the few places where a profile shows NumPy cannot get there.

Why: float32 `exp` runs at ~3.8 ns per element in NumPy on an AVX2 machine, twenty times a
multiply, and an LSTM step makes five passes of it plus a dozen more elementwise passes over
its gate block (benchmarks/RESULTS.md, "Issue 12"). One compiled loop per step does the whole
gate math in one pass with an exp built from a polynomial that the compiler vectorizes
(~1.2 ns per element, relative error below 2e-7).

Optional by design: numba is an extra (`pip install shenjing[extras]`), imported on first
use, never at `import shenjing`. Every caller keeps its NumPy path, used when numba is
missing, when `SHENJING_COMPILED=0`, inside `use_compiled(False)`, or for dtypes other than
float32; the tests run both paths and compare them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os

from . import backend

__all__ = ["available", "enabled", "use_compiled", "kernels"]

_AVAILABLE = importlib.util.find_spec("numba") is not None
_enabled = _AVAILABLE and os.environ.get("SHENJING_COMPILED", "1") != "0"
_kernels = None


def available() -> bool:
    """True when numba is installed."""
    return _AVAILABLE


def enabled() -> bool:
    """True when callers should take their compiled path: switched on, and the active array
    module is NumPy (the kernels read host memory; another backend keeps its own ops)."""
    return _enabled and backend.active().__name__ == "numpy"


@contextlib.contextmanager
def use_compiled(flag: bool):
    """Turn the compiled kernels on or off inside a `with` block (tests, A/B timing)."""
    global _enabled
    if flag and not _AVAILABLE:
        raise RuntimeError("use_compiled(True) needs numba: pip install numba "
                           "(or shenjing[extras]); without it shenjing runs its NumPy kernels")
    before, _enabled = _enabled, bool(flag)
    try:
        yield
    finally:
        _enabled = before


def kernels():
    """The compiled kernels module (compiled on first use, then loaded from numba's cache)."""
    global _kernels
    if _kernels is None:
        from . import _numba_kernels
        _kernels = _numba_kernels
    return _kernels
