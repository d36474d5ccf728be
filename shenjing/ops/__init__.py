"""Primitive differentiable ops: one Function class each, forward and backward together."""

from . import conv, elementwise, linalg, loss, movement, reduce  # noqa: F401
