"""`keras.preprocessing`: the legacy `sequence.pad_sequences` (and `text.Tokenizer`)."""

from . import sequence, text

__all__ = ["sequence", "text"]
