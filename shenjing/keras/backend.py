"""`keras.backend`: the few session-level helpers Keras programs call."""

from __future__ import annotations

from .layers.base import reset_names
from .losses import EPSILON

__all__ = ["clear_session", "epsilon", "floatx", "image_data_format", "backend",
           "standardize_dtype", "is_float_dtype", "is_int_dtype"]


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


def standardize_dtype(dtype=None) -> str:
    """Keras's dtype string ("float32", "int32", "bool", ...) for a dtype of any spelling:
    a name, a NumPy or shenjing dtype, or Python's int/float/bool; None gives floatx()."""
    import numpy as np

    if dtype is None:
        return floatx()
    named = {int: "int32", "int": "int32", float: "float32", bool: "bool"}
    if isinstance(dtype, (str, type)) and dtype in named:
        return named[dtype]
    for spelling in (dtype, str(dtype).rsplit(".", 1)[-1]):  # "torch.float32" reads too
        try:
            return np.dtype(spelling).name
        except TypeError:
            continue
    raise ValueError(f"Invalid dtype: {dtype!r}")


def is_float_dtype(dtype) -> bool:
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype) -> bool:
    return standardize_dtype(dtype).startswith(("int", "uint"))
