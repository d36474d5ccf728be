"""Keras lookup and text layers: StringLookup, IntegerLookup and TextVectorization.

They map tokens to integer ids through a vocabulary given or learnt with `adapt`, with
Keras 3's rules:

* ids: in "int" mode the mask token (if any) is 0, then the `num_oov_indices`
  out-of-vocabulary ids, then the vocabulary. In the other modes the mask token has no id
  and its occurrences are dropped; the OOV ids come first.
* `adapt` orders tokens by decreasing count, ties broken by the tokens themselves from high
  to low, then keeps the first `max_tokens` (special tokens included). A 1-D array given to
  `adapt` is as many one-token documents; each row of a 2-D array is one document.
* "one_hot" encodes each element (on the last axis if it has size 1, else on a new one);
  "multi_hot", "count" and "tf_idf" encode the last axis as one sample. "tf_idf" multiplies
  counts by idf = log(1 + documents / (1 + documents holding the token)); the special
  tokens' weight is the mean idf of the vocabulary. `pad_to_max_tokens` widens the encoded
  axis to `max_tokens`.
* With `num_oov_indices > 1`, IntegerLookup puts an unknown token t in OOV bucket
  t mod num_oov_indices as Keras does; StringLookup hashes strings with CRC-32 (Keras uses
  FarmHash, so the bucket of a given string differs; buckets stay deterministic).

TextVectorization standardizes ("lower_and_strip_punctuation", "lower", "strip_punctuation",
a callable or None), splits ("whitespace", "character", a callable or None), forms ngrams
(an int n for 1..n, or a tuple of widths, joined by spaces), then looks up with mask token
"" and OOV token "[UNK]". Callables receive one Python string (Keras hands them a batch
tensor of strings). These layers run on NumPy arrays of strings or ints (before a model or
as its first layer) and are not differentiable.
"""

from __future__ import annotations

import itertools
import math
import os
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
_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_ALIASES = {"binary": "multi_hot", "tf-idf": "tf_idf"}
_DROPPED = -1  # id of a mask token outside "int" mode: not encoded


def _array(data: Any, dtype: Any = object) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.numpy()
    arr = np.asarray(data, dtype=dtype)
    if arr.dtype == object:
        flat = [t.decode() if isinstance(t, bytes) else t for t in arr.reshape(-1).tolist()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        arr = out.reshape(arr.shape)
    return arr


def _rank_tokens(documents: Iterable[list], exclude: set) -> tuple[list, Counter, Counter]:
    """Tokens by decreasing count, ties by the token from high to low; counts per token
    and the number of documents holding each token."""
    counts: Counter = Counter()
    doc_counts: Counter = Counter()
    for doc in documents:
        kept = [t for t in doc if t not in exclude]
        counts.update(kept)
        doc_counts.update(set(kept))
    ranked = sorted(counts, reverse=True)  # high to low ...
    ranked.sort(key=lambda t: -counts[t])  # ... then by count (the sort is stable)
    return ranked, counts, doc_counts


class _Lookup(Layer):
    """Shared by StringLookup, IntegerLookup and TextVectorization: token <-> id tables."""

    _default_oov: Any = "[UNK]"
    _default_mask: Any = None

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1,
                 mask_token: Any = None, oov_token: Any = None, vocabulary: Any = None,
                 idf_weights: Any = None, invert: bool = False, output_mode: str = "int",
                 pad_to_max_tokens: bool = False, sparse: bool = False,
                 **kwargs: Any) -> None:
        for unused in ("vocabulary_dtype", "encoding", "oov_method"):
            kwargs.pop(unused, None)
        super().__init__(**kwargs)
        name = type(self).__name__
        output_mode = _ALIASES.get(output_mode, output_mode)
        if output_mode not in _MODES:
            raise ValueError(f"{name}: output_mode must be one of {_MODES}, got "
                             f"{output_mode!r}")
        if max_tokens is not None and int(max_tokens) <= 1:
            raise ValueError(f"{name}: max_tokens must be greater than 1, got {max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{name}: pad_to_max_tokens=True needs max_tokens")
        if int(num_oov_indices) < 0:
            raise ValueError(f"{name}: num_oov_indices must be >= 0, got {num_oov_indices}")
        if invert and output_mode != "int":
            raise ValueError(f"{name}: invert=True needs output_mode='int', got "
                             f"{output_mode!r}")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{name}: idf_weights is only used with output_mode='tf_idf'")
        if output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError(f"{name}: with output_mode='tf_idf' and a vocabulary, "
                             f"idf_weights must be given too")
        if sparse:
            raise NotImplementedError(f"{name}: sparse=True is not supported (dense only)")
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = mask_token
        self.oov_token = self._default_oov if oov_token is None else oov_token
        self.invert, self.output_mode = bool(invert), output_mode
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self._vocab: list = []
        self._index: dict = {}
        self._idf: np.ndarray | None = None
        self._input_vocabulary = vocabulary is not None
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ------------------------------------------------------------------ vocabulary
    def _oov_start(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def _specials(self) -> list:
        return [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices

    def _token(self, t: Any) -> Any:
        return t

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Use `vocabulary` as the table. It may start with the special tokens in their
        order (mask, then OOV); with output_mode 'tf_idf', `idf_weights` (one per entry)."""
        name = type(self).__name__
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{name}: idf_weights must be set when output_mode='tf_idf'")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"{name}: idf_weights is only used with output_mode='tf_idf'")
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = self._read_vocabulary(vocabulary)
        given = [self._token(t) for t in _array(vocabulary).reshape(-1).tolist()]
        if not given:
            raise ValueError(f"{name}: cannot set an empty vocabulary")
        specials = self._specials()
        found = given[:len(specials)] == specials
        tokens = given[len(specials):] if found else given
        repeated = [t for t, c in Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError(f"{name}: the vocabulary repeats {repeated}")
        for token, what, check in ((self.mask_token, "mask", self.mask_token is not None),
                                   (self.oov_token, "OOV", self.invert)):
            if check and token in tokens:
                raise ValueError(f"{name}: the {what} token {token!r} is in the vocabulary "
                                 f"at an unexpected place; leave the special tokens out or "
                                 f"put them first, in this order: {specials}")
        if self.max_tokens is not None and len(specials) + len(tokens) > self.max_tokens:
            raise ValueError(f"{name}: the vocabulary has {len(specials) + len(tokens)} "
                             f"entries with the special tokens, more than max_tokens="
                             f"{self.max_tokens}")
        self._vocab = list(tokens)
        self._index = {t: i + len(specials) for i, t in enumerate(self._vocab)}
        if idf_weights is not None:
            idf = np.asarray(_array(idf_weights, np.float64), np.float64).reshape(-1)
            if len(idf) != len(given):
                raise ValueError(f"{name}: idf_weights has {len(idf)} entries, the "
                                 f"vocabulary {len(given)}")
            front = np.zeros(0) if found else np.full(len(specials), idf.mean())
            self._idf = self._pad_back(np.concatenate([front, idf]))

    def _read_vocabulary(self, path: str | os.PathLike) -> list[str]:
        """A vocabulary file: one token per line (UTF-8), as Keras reads it."""
        name = type(self).__name__
        if not os.path.isfile(path):
            raise ValueError(f"{name}: vocabulary file {os.fspath(path)!r} does not exist")
        if self.output_mode == "tf_idf":
            raise ValueError(f"{name}: output_mode='tf_idf' cannot read its vocabulary from a "
                             f"file; pass the tokens and idf_weights")
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        return lines

    def _pad_back(self, idf: np.ndarray) -> np.ndarray:
        if self.pad_to_max_tokens and self.max_tokens is not None:
            idf = np.concatenate([idf, np.zeros(max(self.max_tokens - len(idf), 0))])
        return idf.astype(np.float32)

    def _documents(self, data: Any) -> list[list]:
        arr = _array(data)
        if arr.ndim == 0:
            return [[self._token(arr.item())]]
        if arr.ndim == 1:  # a plain list of tokens: as many one-token documents
            return [[self._token(t)] for t in arr.tolist()]
        return [[self._token(t) for t in row] for row in arr.reshape(len(arr), -1).tolist()]

    def _batch_documents(self, batch: Any) -> list[list]:
        """Documents of one batch from an iterable given to adapt: a 1-D batch is one
        document (Keras's update_state), each row of a larger one a document."""
        arr = _array(batch)
        if arr.ndim <= 1:
            return [[self._token(t) for t in arr.reshape(-1).tolist()]]
        return self._documents(arr)

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Learn the vocabulary (and, for 'tf_idf', the idf weights) from `data`: an array
        or list, or an iterable of batches (at most `steps` of them)."""
        if self._input_vocabulary:
            raise ValueError(f"{type(self).__name__} {self.name!r}: cannot adapt a layer "
                             f"given its vocabulary")
        if isinstance(data, (list, tuple, np.ndarray, Tensor, str, bytes)) or \
                not hasattr(data, "__iter__"):
            documents = self._documents(data)
        else:
            documents = [doc for batch in itertools.islice(data, steps)
                         for doc in self._batch_documents(batch)]
        exclude = {t for t in (self.mask_token, self.oov_token) if t is not None}
        ranked, _, doc_counts = _rank_tokens(documents, exclude)
        if self.max_tokens is not None:
            ranked = ranked[:max(self.max_tokens - self._token_start(), 0)]
        self._vocab = ranked
        self._index = {t: i + self._token_start() for i, t in enumerate(ranked)}
        if self.output_mode == "tf_idf":
            n = len(documents)
            idf = np.array([math.log(1.0 + n / (1.0 + doc_counts[t])) for t in ranked])
            mean = idf.mean() if len(idf) else 0.0
            self._idf = self._pad_back(np.concatenate([np.full(self._token_start(), mean),
                                                       idf]))

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The tokens in id order (with the mask and OOV tokens unless asked not to)."""
        return (self._specials() if include_special_tokens else []) + list(self._vocab)

    def vocabulary_size(self) -> int:
        return self._token_start() + len(self._vocab)

    def _vocab_idf(self) -> list | None:
        """The idf weights of the vocabulary proper (saved with it in the config)."""
        if self._idf is None or not self._vocab:
            return None
        start = self._token_start()
        return self._idf[start:start + len(self._vocab)].tolist()

    @property
    def idf_weights(self) -> np.ndarray | None:
        return None if self._idf is None else self._idf.copy()

    # ------------------------------------------------------------------ lookup
    def _prepare(self, x: Any) -> Any:
        if isinstance(x, Tensor):
            return x.numpy()
        return np.asarray(x) if self.invert else np.asarray(x, dtype=object)

    def _oov_id(self, token: Any) -> int:
        if self.num_oov_indices == 0:
            raise ValueError(f"{type(self).__name__}: token {token!r} is not in the "
                             f"vocabulary and num_oov_indices=0; set num_oov_indices=1")
        if self.num_oov_indices == 1:
            return self._oov_start()
        return self._oov_start() + self._bucket(token)

    def _bucket(self, token: Any) -> int:
        return zlib.crc32(str(token).encode()) % self.num_oov_indices

    def _ids(self, tokens: Any) -> np.ndarray:
        arr = _array(tokens)
        mask_id = 0 if self.output_mode == "int" else _DROPPED
        ids = []
        for t in (self._token(v) for v in arr.reshape(-1).tolist()):
            if self.mask_token is not None and t == self.mask_token:
                ids.append(mask_id)
            else:
                i = self._index.get(t)
                ids.append(self._oov_id(t) if i is None else i)
        return np.asarray(ids, dtype=np.int64).reshape(arr.shape)

    def _depth(self) -> int:
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    def _encode(self, ids: np.ndarray) -> np.ndarray:
        """Keras's encodings of an id array (see the module docstring)."""
        if self.output_mode == "int":
            return ids
        depth = self._depth()
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if self.output_mode == "one_hot":
            if ids.ndim > 1 and ids.shape[-1] == 1:
                ids = ids[..., 0]
            table = np.vstack([np.eye(depth, dtype=np.float32), np.zeros((1, depth),
                                                                         np.float32)])
            return table[np.where(ids == _DROPPED, depth, ids)]
        rows = ids.reshape(math.prod(ids.shape[:-1]), ids.shape[-1])
        out = np.zeros((len(rows), depth + 1), np.float64)
        for r, row in enumerate(rows):
            np.add.at(out[r], np.where(row == _DROPPED, depth, row), 1.0)
        out = out[:, :depth].reshape(ids.shape[:-1] + (depth,))
        if self.output_mode == "multi_hot":
            out = np.minimum(out, 1.0)
        elif self.output_mode == "tf_idf":
            if self._idf is None:
                raise ValueError(f"{type(self).__name__}: output_mode='tf_idf' needs idf "
                                 f"weights: call adapt() or pass idf_weights")
            out = out * self._idf
        return out.astype(np.float32)

    def _invert(self, inputs: Any) -> np.ndarray:
        ids = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{type(self).__name__}(invert=True) takes integer ids, got "
                            f"dtype {ids.dtype}")
        table = self.get_vocabulary()
        out = np.empty(ids.shape, dtype=object)
        flat = out.reshape(-1)
        for k, i in enumerate(ids.reshape(-1).tolist()):
            flat[k] = table[i] if 0 <= i < len(table) else self.oov_token
        return out

    def call(self, inputs: Any) -> Any:
        if self.invert:
            return self._invert(inputs)
        return as_tensor(self._encode(self._ids(inputs)))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        depth = self._depth()
        if self.output_mode == "one_hot":
            return (shape[:-1] if len(shape) > 1 and shape[-1] == 1 else shape) + (depth,)
        return shape[:-1] + (depth,)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "mask_token": self.mask_token,
                "oov_token": self.oov_token,
                "vocabulary": list(self._vocab) or None, "idf_weights": self._vocab_idf(),
                "invert": self.invert, "output_mode": self.output_mode,
                "pad_to_max_tokens": self.pad_to_max_tokens}


class StringLookup(_Lookup):
    """Maps strings to ids ("[UNK]" is the OOV token, id 0 without a mask token)."""

    _default_oov = "[UNK]"
    _accepts_strings = True

    def _token(self, t: Any) -> Any:
        return t.decode() if isinstance(t, bytes) else str(t)


class IntegerLookup(_Lookup):
    """Maps integer tokens to ids (-1 is the OOV token)."""

    _default_oov = -1

    def _token(self, t: Any) -> Any:
        return int(t)

    def _prepare(self, x: Any) -> Any:
        return x.numpy() if isinstance(x, Tensor) else np.asarray(x)

    def _bucket(self, token: Any) -> int:
        return int(token) % self.num_oov_indices  # Keras's floormod

    def _invert(self, inputs: Any) -> Any:
        return as_tensor(super()._invert(inputs).astype(np.int64))


def _standardize(text: str, how: Any) -> str:
    if how is None:
        return text
    if callable(how):
        out = how(text)
        return out.decode() if isinstance(out, bytes) else str(out)
    if how in ("lower_and_strip_punctuation", "lower"):
        text = text.lower()
    if how in ("lower_and_strip_punctuation", "strip_punctuation"):
        text = _PUNCTUATION.sub("", text)
    return text


def _ngram_widths(ngrams: Any) -> tuple[int, ...] | None:
    if ngrams is None:
        return None
    if isinstance(ngrams, (int, np.integer)) and not isinstance(ngrams, bool):
        if ngrams < 1:
            raise ValueError(f"TextVectorization: ngrams must be >= 1, got {ngrams}")
        return tuple(range(1, int(ngrams) + 1))
    if isinstance(ngrams, (tuple, list)) and ngrams and all(
            isinstance(n, (int, np.integer)) and n >= 1 for n in ngrams):
        return tuple(int(n) for n in ngrams)
    raise ValueError(f"TextVectorization: ngrams must be None, an int or a tuple of ints "
                     f">= 1, got {ngrams!r}")


class TextVectorization(_Lookup):
    """Turns strings into token ids or bag-of-token vectors: standardize, split, ngrams,
    look up ("" is id 0 (padding) and "[UNK]" id 1 in 'int' mode). In 'int' mode rows are
    padded with 0 or truncated to output_sequence_length (else to the longest row)."""

    _accepts_strings = True

    def __init__(self, max_tokens: int | None = None,
                 standardize: Any = "lower_and_strip_punctuation", split: Any = "whitespace",
                 ngrams: Any = None, output_mode: str = "int",
                 output_sequence_length: int | None = None, pad_to_max_tokens: bool = False,
                 vocabulary: Any = None, idf_weights: Any = None, **kwargs: Any) -> None:
        if standardize not in (None, "lower_and_strip_punctuation", "lower",
                               "strip_punctuation") and not callable(standardize):
            raise ValueError(f"TextVectorization: standardize must be "
                             f"'lower_and_strip_punctuation', 'lower', 'strip_punctuation', "
                             f"None or a function, got {standardize!r}")
        if split not in ("whitespace", "character", None) and not callable(split):
            raise ValueError(f"TextVectorization: split must be 'whitespace', 'character', "
                             f"None or a function, got {split!r}")
        mode = _ALIASES.get(output_mode, output_mode)
        if output_sequence_length is not None:
            if mode != "int":
                raise ValueError(f"TextVectorization: output_sequence_length must not be set "
                                 f"when output_mode is {mode!r} (only 'int')")
            if not isinstance(output_sequence_length, (int, np.integer)) or \
                    output_sequence_length < 0:
                raise ValueError(f"TextVectorization: output_sequence_length must be a "
                                 f"non-negative int or None, got {output_sequence_length!r}")
        if kwargs.pop("ragged", False):
            raise NotImplementedError("TextVectorization: ragged=True is not supported")
        fixed = {"num_oov_indices": 1, "mask_token": "", "oov_token": "[UNK]", "invert": False}
        for key, value in fixed.items():
            if key in kwargs and kwargs.pop(key) != value:
                raise ValueError(f"TextVectorization: {key} is fixed to {value!r}")
        widths = _ngram_widths(ngrams)
        super().__init__(max_tokens=max_tokens, num_oov_indices=1, mask_token="",
                         oov_token="[UNK]", vocabulary=vocabulary, idf_weights=idf_weights,
                         output_mode=mode, pad_to_max_tokens=pad_to_max_tokens, **kwargs)
        self.standardize, self.split = standardize, split
        self.ngrams = tuple(ngrams) if isinstance(ngrams, list) else ngrams
        self._widths = widths
        self.output_sequence_length = output_sequence_length

    def _token(self, t: Any) -> Any:
        return t.decode() if isinstance(t, bytes) else str(t)

    def _tokens(self, text: str) -> list[str]:
        """One string's tokens: standardized, split, then recombined into ngrams."""
        text = _standardize(text, self.standardize)
        if self.split is None:
            words = [text]
        elif callable(self.split):
            words = [self._token(w) for w in self.split(text)]
        elif self.split == "character":
            words = list(text)
        else:
            words = text.split()
        if self._widths is None:
            return words
        return [" ".join(words[i:i + n]) for n in self._widths
                for i in range(len(words) - n + 1)]

    def _texts(self, data: Any) -> list[str]:
        arr = _array(data)
        if arr.ndim > 1 and self.split is not None and arr.shape[-1] != 1:
            raise ValueError(f"TextVectorization: to split strings the input must have rank "
                             f"1 or a last dimension of 1, got shape {arr.shape}")
        return [self._token(t) for t in arr.reshape(-1).tolist()]

    def _documents(self, data: Any) -> list[list]:
        return [self._tokens(t) for t in self._texts(data)]

    def _batch_documents(self, batch: Any) -> list[list]:
        return self._documents(batch)  # one document per string

    def call(self, inputs: Any) -> Tensor:
        docs = self._documents(inputs)
        if self.output_mode == "one_hot" and len({len(d) for d in docs}) > 1:
            raise ValueError("TextVectorization: output_mode='one_hot' needs the same number "
                             "of tokens in every string (use split=None for one token each)")
        if self.output_mode == "one_hot":  # each token encoded: (batch, [tokens,] depth)
            return as_tensor(self._encode(np.stack([self._row_ids(d) for d in docs])))
        if self.output_mode != "int":
            return as_tensor(np.stack([self._encode(self._row_ids(d)) for d in docs])
                             if docs else np.zeros((0, self._depth()), np.float32))
        rows = [self._row_ids(d) for d in docs]
        if self.split is None and self.output_sequence_length is None and self._widths is None:
            return as_tensor(np.concatenate(rows).reshape(np.shape(self._prepare(inputs))))
        length = self.output_sequence_length
        if length is None:
            length = max((len(r) for r in rows), default=0)
        out = np.zeros((len(rows), length), np.int64)
        for i, r in enumerate(rows):
            out[i, :min(len(r), length)] = r[:length]
        return as_tensor(out)

    def _row_ids(self, tokens: list[str]) -> np.ndarray:
        arr = np.empty(len(tokens), dtype=object)
        arr[:] = tokens
        return self._ids(arr)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        return (input_shape[0], self._depth())

    def get_config(self) -> dict:
        cfg = super().get_config()
        for key in ("num_oov_indices", "mask_token", "oov_token", "invert"):
            cfg.pop(key)
        return {**cfg, "standardize": self.standardize if isinstance(self.standardize, str)
                else None, "split": self.split if isinstance(self.split, str) else None,
                "ngrams": list(self.ngrams) if isinstance(self.ngrams, tuple) else self.ngrams,
                "output_sequence_length": self.output_sequence_length}
