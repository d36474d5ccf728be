"""Keras's progress bar: `469/469 [==============================] - 5s 11ms/step - loss: ...`.

On a terminal (stdout.isatty()) the bar is redrawn in place with `\\r`, at most every
`interval` seconds; otherwise (a log file, a pipe, a notebook capture) only the final line of
each epoch is written, so logs get one line per epoch instead of thousands. `verbose=2`
writes one summary line per epoch without the bar, as Keras does.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Iterable

import numpy as np

__all__ = ["Progbar", "format_value", "format_time"]


def format_value(value: Any) -> str:
    """A metric as Keras prints it: 4 decimals, or scientific notation when tiny."""
    if isinstance(value, (list, tuple, np.ndarray)):
        value = float(np.mean(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


def format_time(seconds: float, unit: str) -> str:
    """' 11ms/step', ' 2s/step', ' 850us/step' (Keras's thresholds)."""
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f" {seconds * 1e3:.0f}ms/{unit}"
    return f" {seconds * 1e6:.0f}us/{unit}"


def _eta(seconds: float) -> str:
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


class Progbar:
    """Displays a progress bar (keras.utils.Progbar).

    Args:
        target: total number of steps, or None if unknown.
        width: width of the bar in characters (30, as Keras 2).
        verbose: 0 silent, 1 bar, 2 one line at the end.
        interval: minimum seconds between redraws on a terminal.
        stateful_metrics: names whose values are shown as given; the others are averaged
            over the steps seen so far (Keras's rule). `fit` passes running averages, so it
            marks all its metrics stateful.
        unit_name: "step" or "sample".
        dynamic: force (True) or forbid (False) in-place redrawing; default: stdout.isatty().
    """

    def __init__(self, target: int | None, width: int = 30, verbose: int = 1,
                 interval: float = 0.05, stateful_metrics: Iterable[str] | None = None,
                 unit_name: str = "step", dynamic: bool | None = None) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics or ())
        out = sys.stdout
        if dynamic is None:
            dynamic = (hasattr(out, "isatty") and out.isatty()) or "ipykernel" in sys.modules
        self._dynamic = bool(dynamic)
        self._values: dict[str, list] = {}
        self._order: list[str] = []
        self._seen = 0
        self._start = time.perf_counter()
        self._last_update = 0.0
        self._time_after_first_step: float | None = None
        self._prev_width = 0
        self._finalized = False

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, current: int, values: Iterable, finalize: bool) -> None:
        for k, v in values:
            if k not in self._order:
                self._order.append(k)
            if k in self.stateful_metrics or finalize:
                self._values[k] = [v, 1]
            elif k not in self._values:
                base = max(current - self._seen, 1)
                self._values[k] = [v * base, base]
            else:
                base = max(current - self._seen, 1)
                self._values[k][0] += v * base
                self._values[k][1] += base
        self._seen = current

    def _value(self, k: str) -> Any:
        total, count = self._values[k]
        if isinstance(total, (int, float, np.floating, np.integer)):
            return float(total) / max(1, count)
        return total

    def _step_time(self, current: int, now: float) -> float:
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per = (now - self._time_after_first_step) / (current - 1)
        else:
            per = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per

    def _metrics(self) -> str:
        return "".join(f" - {k}: {format_value(self._value(k))}" for k in self._order)

    # ------------------------------------------------------------------ drawing
    def _bar(self, current: int) -> str:
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = int(math.log10(self.target)) + 1 if self.target > 0 else 1
        bar = f"{current:{digits}d}/{self.target} ["
        done = int(self.width * current / self.target) if self.target > 0 else self.width
        if done > 0:
            bar += "=" * (done - 1) + (">" if current < self.target else "=")
        return bar + "." * (self.width - done) + "]"

    def update(self, current: int, values: Iterable | None = None,
               finalize: bool | None = None) -> None:
        """Record step `current` with `values` [(name, value), ...] and redraw if due."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values or [], finalize)
        now = time.perf_counter()
        per_step = self._step_time(current, now)
        if self.verbose == 1:
            due = finalize or (self._dynamic and now - self._last_update >= self.interval)
            if not due:
                return
            bar = self._bar(current)
            if finalize or self.target is None:
                info = f" - {now - self._start:.0f}s" + format_time(per_step, self.unit_name)
            else:
                info = f" - ETA: {_eta(per_step * (self.target - current))}"
            line = bar + info + self._metrics()
            if self._dynamic:
                pad = " " * max(self._prev_width - len(line), 0)
                msg = "\r" + line + pad + ("\n" if finalize else "")
            else:
                msg = line + "\n"
            self._prev_width = len(line)
            self._write(msg)
        elif self.verbose == 2 and finalize:
            elapsed = now - self._start
            count = "" if self.target is None else (
                f"{current:{int(math.log10(max(self.target, 1))) + 1}d}/{self.target}")
            line = (f"{count} - {elapsed:.0f}s" + self._metrics()
                    + " -" + format_time(elapsed, "epoch")
                    + " -" + format_time(per_step, self.unit_name))
            self._write(line + "\n")
        self._last_update = now
        self._finalized = finalize

    def add(self, n: int, values: Iterable | None = None) -> None:
        self.update(self._seen + n, values)

    @staticmethod
    def _write(msg: str) -> None:
        out = sys.stdout
        out.write(msg)
        out.flush()
