"""Training curves as a PNG: seed 000's accuracy and loss figure, one call.

matplotlib is optional and imported only when a plot is made. The figure is drawn on the Agg
canvas directly (no pyplot), so it works without a display, never switches the global
backend of a program that has its own plots, and is safe to call from a training thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shenjing.io.atomic import atomic_write

__all__ = ["plot_history"]

_TRAIN_COLOR = "#FFA500"  # seed 000's colours
_VAL_COLOR = "#00CED1"


def _number(value: Any) -> float:
    """A float out of a number, a NumPy scalar or a one-element array/Tensor."""
    data = getattr(value, "data", None)
    if isinstance(data, np.ndarray):  # a shenjing Tensor
        value = data
    return float(np.asarray(value, dtype=np.float64).reshape(()))


def _as_floats(key: str, values: Any) -> list[float]:
    try:
        return [_number(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(
            f"plot_history: history[{key!r}] must be a sequence of numbers, got {values!r}"
        ) from None


def _title(metric: str) -> str:
    return metric.replace("_", " ").capitalize()


def plot_history(
    history: Any,
    path: str | os.PathLike,
    metrics: Sequence[str] = ("accuracy", "loss"),
) -> Path:
    """Save per-epoch curves of `metrics` and their `val_` counterparts as a PNG.

    One subplot per metric (by default accuracy and loss, as in seed 000), with the training
    curve and, when present, the validation curve, a title, axis labels and a legend. The
    file is written atomically.

    Args:
        history: what `Model.fit` returns (an object with a `.history` dict) or such a dict
            of metric name -> list of per-epoch values.
        path: the PNG file to write.
        metrics: metric names to plot; a metric absent from the history (with no `val_`
            entry either) is skipped.

    Returns:
        The path written.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping):
        raise TypeError(
            "plot_history: expected a History (with a .history dict) or a dict of "
            f"metric -> per-epoch values, got {type(history).__name__}"
        )
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not any(len(values) for values in logs.values()):
        raise ValueError("plot_history: the history is empty; was fit() run for any epochs?")

    panels = []
    for metric in metrics:
        curves = [
            (label, color, _as_floats(key, logs[key]))
            for key, label, color in (
                (metric, "Train", _TRAIN_COLOR),
                (f"val_{metric}", "Validation", _VAL_COLOR),
            )
            if key in logs and len(logs[key])
        ]
        if curves:
            panels.append((metric, curves))
    if not panels:
        raise ValueError(
            f"plot_history: none of the metrics {tuple(metrics)} is in the history; "
            f"it has {sorted(logs)}"
        )

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as err:
        raise ImportError(
            "plot_history needs the optional package matplotlib (pip install matplotlib)"
        ) from err

    figure = Figure(figsize=(6 * len(panels), 4))
    FigureCanvasAgg(figure)
    for i, (metric, curves) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), i + 1)
        for label, color, values in curves:
            epochs = range(1, len(values) + 1)
            axes.plot(
                epochs, values, label=label, color=color, marker="o" if len(values) < 30 else None
            )
        axes.set_title(_title(metric))
        axes.set_xlabel("Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(_title(metric))
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()

    path = Path(os.fspath(path))
    with atomic_write(path, "wb") as f:
        figure.savefig(f, format="png", dpi=100)
    return path
