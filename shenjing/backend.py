"""The array module behind every op: NumPy today, CuPy later.

Ops ask `get_array_module(*arrays)` for `xp` instead of calling `np.*` for math, so a
second backend only has to provide the same functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["get_array_module", "np"]


def get_array_module(*arrays) -> object:
    """Return the array module that owns `arrays` (always NumPy for now)."""
    return np
