"""`keras.preprocessing.sequence.pad_sequences` (the same function as keras.utils')."""

from ..utils.sequence import pad_sequences

__all__ = ["pad_sequences"]
