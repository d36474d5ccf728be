"""Keras lookup and text layers: StringLookup, IntegerLookup and TextVectorization.

They map tokens to integer ids through a vocabulary given or learnt with `adapt` (most
frequent first; ties keep the order of first appearance). Ids follow Keras: the mask token
(if any) is 0, then the `num_oov_indices` out-of-vocabulary ids, then the vocabulary.
TextVectorization's mask token is "" and its OOV token "[UNK]", so its vocabulary starts
["", "[UNK]", ...]. These layers run on NumPy arrays of strings or ints (before a model or
as its first layer) and are not differentiable.
"""

from __future__ import annotations

import re
import string
import zlib
from collections import Counter
from typing import Any, Iterable

import numpy as np

from ...tensor import Tensor, as_tensor
from .base import Layer

__all__ = ["StringLookup", "IntegerLookup", "TextVectorization"]

_PUNCTUATION = re.compile("[" + re.escape(string.punctuation) + "]")


def _flat_tokens(data: Any) -> list:
    if isinstance(data, Tensor):
        data = data.numpy()
    arr = np.asarray(data, dtype=object)
    return [t.decode() if isinstance(t, bytes) else t for t in arr.reshape(-1).tolist()]


def _by_frequency(tokens: Iterable, exclude: set) -> list:
    counts = Counter(t for t in tokens if t not in exclude)
    first = {}
    for t in counts:
        first.setdefault(t, len(first))
    return sorted(counts, key=lambda t: (-counts[t], first[t]))


class _Lookup(Layer):
    """Shared by StringLookup and IntegerLookup: a token -> id table (or its inverse)."""

    _default_oov: Any = "[UNK]"

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1,
                 mask_token: Any = None, oov_token: Any = None, vocabulary: Any = None,
                 invert: bool = False, output_mode: str = "int", **kwargs: Any) -> None:
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(**kwargs)
        if output_mode not in ("int", "multi_hot", "count", "one_hot"):
            raise ValueError(f"{type(self).__name__}: output_mode must be 'int', 'one_hot', "
                             f"'multi_hot' or 'count', got {output_mode!r}")
        self.max_tokens = max_tokens
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = mask_token
        self.oov_token = self._default_oov if oov_token is None else oov_token
        self.invert, self.output_mode = bool(invert), output_mode
        self._vocab: list = []
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    def _specials(self) -> list:
        head = [] if self.mask_token is None else [self.mask_token]
        return head + [self.oov_token] * self.num_oov_indices

    def set_vocabulary(self, vocabulary: Any) -> None:
        """Use `vocabulary` (without the mask and OOV tokens) as the lookup table."""
        tokens = _flat_tokens(vocabulary)
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"{type(self).__name__}: the vocabulary has repeated tokens")
        self._vocab = list(tokens)
        self._index = {t: i + len(self._specials()) for i, t in enumerate(self._vocab)}

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Learn the vocabulary from `data`: tokens by decreasing frequency."""
        vocab = _by_frequency(self._tokens_of(data), {self.mask_token, self.oov_token})
        if self.max_tokens is not None:
            vocab = vocab[:max(int(self.max_tokens) - len(self._specials()), 0)]
        self.set_vocabulary(vocab)

    def _tokens_of(self, data: Any) -> list:
        return _flat_tokens(data)

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        return (self._specials() if include_special_tokens else []) + list(self._vocab)

    def vocabulary_size(self) -> int:
        return len(self._specials()) + len(self._vocab)

    def _prepare(self, x: Any) -> Any:
        return x.numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=object)

    def _ids(self, tokens: np.ndarray) -> np.ndarray:
        flat = _flat_tokens(tokens)
        n_oov = max(self.num_oov_indices, 1)
        first_oov = 0 if self.mask_token is None else 1
        ids = []
        for t in flat:
            if self.mask_token is not None and t == self.mask_token:
                ids.append(0)
            elif t in self._index:
                ids.append(self._index[t])
            elif self.num_oov_indices == 0:
                raise ValueError(f"{type(self).__name__}: token {t!r} is not in the "
                                 f"vocabulary and num_oov_indices=0")
            else:
                ids.append(first_oov + zlib.crc32(str(t).encode()) % n_oov)
        return np.asarray(ids, dtype=np.int64).reshape(np.shape(tokens))

    def _encode(self, ids: np.ndarray) -> np.ndarray:
        if self.output_mode == "int":
            return ids
        size = self.vocabulary_size()
        if self.output_mode == "one_hot":
            return np.eye(size, dtype=np.float32)[ids]
        rows = ids.reshape(ids.shape[0], -1) if ids.ndim > 1 else ids[:, None]
        out = np.zeros((rows.shape[0], size), np.float32)
        for r, row in enumerate(rows):
            np.add.at(out[r], row, 1.0)
        return np.minimum(out, 1.0) if self.output_mode == "multi_hot" else out

    def call(self, inputs: Any) -> Tensor:
        if self.invert:
            table = np.asarray(self.get_vocabulary(), dtype=object)
            ids = np.asarray(inputs, dtype=np.int64)
            return table[ids]
        return as_tensor(self._encode(self._ids(inputs)))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.output_mode == "int":
            return tuple(input_shape)
        return (input_shape[0], self.vocabulary_size())

    def get_config(self) -> dict:
        return {**super().get_config(), "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "mask_token": self.mask_token,
                "oov_token": self.oov_token, "vocabulary": list(self._vocab) or None,
                "invert": self.invert, "output_mode": self.output_mode}


class StringLookup(_Lookup):
    """Maps strings to ids ("[UNK]" is the OOV token, id 0 without a mask token)."""

    _default_oov = "[UNK]"


class IntegerLookup(_Lookup):
    """Maps integer tokens to ids (-1 is the OOV token)."""

    _default_oov = -1

    def _tokens_of(self, data: Any) -> list:
        return [int(t) for t in _flat_tokens(data)]

    def _prepare(self, x: Any) -> Any:
        return x.numpy() if isinstance(x, Tensor) else np.asarray(x)

    def _ids(self, tokens: np.ndarray) -> np.ndarray:
        return super()._ids(np.asarray(tokens, dtype=np.int64).astype(object))


def _standardize(text: str, how: Any) -> str:
    if how is None:
        return text
    if callable(how):
        return how(text)
    if how in ("lower_and_strip_punctuation", "lower"):
        text = text.lower()
    if how in ("lower_and_strip_punctuation", "strip_punctuation"):
        text = _PUNCTUATION.sub("", text)
    return text


class TextVectorization(_Lookup):
    """Turns strings into token ids: standardize (lowercase, strip punctuation), split on
    whitespace (or characters), look up; "" is id 0 (padding), "[UNK]" id 1. With
    output_sequence_length the ids are padded with 0 or truncated to that length."""

    def __init__(self, max_tokens: int | None = None,
                 standardize: Any = "lower_and_strip_punctuation", split: Any = "whitespace",
                 ngrams: Any = None, output_mode: str = "int",
                 output_sequence_length: int | None = None, vocabulary: Any = None,
                 **kwargs: Any) -> None:
        if ngrams is not None:
            raise NotImplementedError("TextVectorization: ngrams is not supported")
        if split not in ("whitespace", "character", None) and not callable(split):
            raise ValueError(f"TextVectorization: split must be 'whitespace', 'character', "
                             f"None or a function, got {split!r}")
        super().__init__(max_tokens=max_tokens, num_oov_indices=1, mask_token="",
                         oov_token="[UNK]", vocabulary=vocabulary, output_mode=output_mode,
                         **kwargs)
        self.standardize, self.split = standardize, split
        self.output_sequence_length = output_sequence_length

    def _split(self, text: str) -> list[str]:
        text = _standardize(text, self.standardize)
        if self.split is None:
            return [text]
        if callable(self.split):
            return list(self.split(text))
        return list(text) if self.split == "character" else text.split()

    def _tokens_of(self, data: Any) -> list:
        return [tok for text in _flat_tokens(data) for tok in self._split(str(text))]

    def call(self, inputs: Any) -> Tensor:
        texts = [str(t) for t in _flat_tokens(inputs)]
        rows = [self._ids(np.asarray(self._split(t) or [""], dtype=object)) for t in texts]
        if self.output_mode != "int":
            return as_tensor(np.stack([self._encode(r[None])[0] for r in rows]))
        length = self.output_sequence_length or max(len(r) for r in rows)
        out = np.zeros((len(rows), length), np.int64)
        for i, r in enumerate(rows):
            out[i, :min(len(r), length)] = r[:length]
        return as_tensor(out)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        return (input_shape[0], self.vocabulary_size())

    def get_config(self) -> dict:
        cfg = super().get_config()
        for key in ("num_oov_indices", "mask_token", "oov_token", "invert"):
            cfg.pop(key)
        return {**cfg, "standardize": self.standardize if isinstance(self.standardize, str)
                else None, "split": self.split if isinstance(self.split, str) else None,
                "output_sequence_length": self.output_sequence_length}
