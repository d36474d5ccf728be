"""Grad mode: whether ops record the graph (no_grad, enable_grad, set_grad_enabled)."""

from __future__ import annotations

import functools
from typing import Callable

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class set_grad_enabled:
    """Context manager and decorator that sets grad mode on or off."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode  # takes effect at call, as torch.set_grad_enabled does

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        _GradMode.enabled = self.prev

    def __call__(self, fn: Callable) -> Callable:
        """As a decorator: restore the mode set at construction, apply it at each call."""
        _GradMode.enabled = self.prev
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class _GradModeContext:
    mode = True

    def __new__(cls, fn: Callable | None = None):
        self = super().__new__(cls)
        return self if fn is None else self(fn)  # `@no_grad` without parentheses, as torch

    def __enter__(self) -> None:
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc) -> None:
        _GradMode.enabled = self.prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording inside a `with` block or a decorated function."""

    mode = False


class enable_grad(_GradModeContext):
    """Re-enable graph recording (e.g. inside a `no_grad` block)."""

    mode = True
