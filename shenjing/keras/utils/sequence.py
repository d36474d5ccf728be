"""`pad_sequences` with Keras's exact semantics (also `keras.preprocessing.sequence`)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences: Sequence[Any], maxlen: int | None = None, dtype: Any = "int32",
                  padding: str = "pre", truncating: str = "pre", value: Any = 0.0
                  ) -> np.ndarray:
    """Pad (or cut) every sequence to one length: a (num_samples, maxlen, *item_shape) array.

    As Keras: `maxlen` defaults to the longest sequence; 'pre' padding puts `value` before a
    short sequence and 'post' after it; 'pre' truncating drops the start of a long sequence
    and 'post' its end; an empty sequence becomes a row of `value`.
    """
    if padding not in ("pre", "post"):
        raise ValueError(f"pad_sequences: padding must be 'pre' or 'post', got {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: truncating must be 'pre' or 'post', got "
                         f"{truncating!r}")
    if not hasattr(sequences, "__len__"):
        raise TypeError("pad_sequences: sequences must be a list (or array) of sequences")
    lengths, item_shape = [], None
    for i, s in enumerate(sequences):
        if not hasattr(s, "__len__"):
            raise ValueError(f"pad_sequences: sequences[{i}] is {s!r}, not a sequence; "
                             f"expected a list of lists")
        lengths.append(len(s))
        if item_shape is None and len(s):
            item_shape = np.asarray(s).shape[1:]
    item_shape = item_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    elif not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be a non-negative int or None, got "
                         f"{maxlen!r}")
    dt = np.dtype(dtype)
    if dt.kind in "USO" or not isinstance(value, str):
        pass
    else:
        raise ValueError(f"pad_sequences: dtype {dtype!r} is numeric but value is the string "
                         f"{value!r}; pass dtype=object for strings")
    out = np.full((len(sequences), int(maxlen), *item_shape), value, dtype=dt)
    for i, s in enumerate(sequences):
        if not len(s) or not maxlen:
            continue
        kept = np.asarray(s, dtype=dt)
        if kept.shape[1:] != item_shape:
            raise ValueError(f"pad_sequences: sequences[{i}] items have shape "
                             f"{kept.shape[1:]}, expected {item_shape} like the others")
        kept = kept[-maxlen:] if truncating == "pre" else kept[:maxlen]
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out
