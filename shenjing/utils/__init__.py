"""Utilities around training: `plot_history` and, on first use, the `tensorboard` writer.

Optional dependencies stay optional: matplotlib is imported only when a plot is drawn and
tensorboardX only when a `SummaryWriter` is made, so ``import shenjing.utils`` always works.
"""

from __future__ import annotations

import importlib
from typing import Any

from shenjing.utils.image import make_grid, save_image
from shenjing.utils.plot import plot_history

__all__ = ["plot_history", "make_grid", "save_image", "tensorboard"]


def __getattr__(name: str) -> Any:
    if name == "tensorboard":  # `shenjing.utils.tensorboard` without importing it up front
        return importlib.import_module("shenjing.utils.tensorboard")
    raise AttributeError(f"module 'shenjing.utils' has no attribute {name!r}")
