"""`keras.backend`: the few session-level helpers Keras programs call."""

from __future__ import annotations

from .layers.base import reset_names
from .losses import EPSILON

__all__ = ["clear_session", "epsilon", "floatx", "image_data_format", "backend"]


def clear_session() -> None:
    """Reset the layer-name counters, so new layers are named 'dense', 'dense_1', ... again."""
    reset_names()


def epsilon() -> float:
    """The fuzz factor Keras's losses clip with (1e-7)."""
    return EPSILON


def floatx() -> str:
    return "float32"


def image_data_format() -> str:
    return "channels_last"


def backend() -> str:
    return "shenjing"
