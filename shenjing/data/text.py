"""Text tools for classification: tokenizer, vocabulary, padding, bucketed batches.

Together they replace the seed's torchtext `Field` / `build_vocab` / `BucketIterator`:

    vocab = Vocab.build(tokenize(t) for t, _ in train, max_size=25_000)
    loader = DataLoader(encoded, batch_sampler=BucketBatchSampler(lengths, 64, seed=0),
                        collate_fn=PadCollate(vocab.pad_index, min_len=5))
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..random import Generator, get_rng
from ._files import atomic_write_text
from .sampler import Sampler

__all__ = ["BucketBatchSampler", "PadCollate", "Vocab", "pad_sequences", "tokenize"]

_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# A word (letters/digits, with inner apostrophes as in "don't"), or one punctuation mark.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks; IMDB's `<br />` line breaks become spaces.

    >>> tokenize("A wretched movie, isn't it?<br />Yes!")
    ['a', 'wretched', 'movie', ',', "isn't", 'it', '?', 'yes', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize: expected a str, got {type(text).__name__}")
    return _TOKEN.findall(_HTML_BREAK.sub(" ", text).lower())


class Vocab:
    """A token <-> index mapping: specials first, then tokens by descending frequency.

    Ties in frequency are broken alphabetically, as torchtext's legacy vocabulary, so the
    same corpus always gives the same indices. Unknown tokens map to `unk_index` when the
    `'<unk>'` special is present.
    """

    FORMAT = "shenjing.vocab"

    def __init__(self, itos: Sequence[str], unk_token: str | None = "<unk>",
                 pad_token: str | None = "<pad>", freqs: Counter | None = None) -> None:
        self.itos = list(itos)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dup = [t for t, c in Counter(self.itos).items() if c > 1][:5]
            raise ValueError(f"Vocab: tokens must be unique, repeated: {dup}")
        for name, token in (("unk_token", unk_token), ("pad_token", pad_token)):
            if token is not None and token not in self.stoi:
                raise ValueError(f"Vocab: {name} {token!r} is not in the vocabulary")
        self.unk_token, self.pad_token = unk_token, pad_token
        self.freqs = freqs if freqs is not None else Counter()

    @classmethod
    def build(cls, corpus_tokens: Iterable[Iterable[str]], max_size: int | None = 25_000,
              min_freq: int = 1, specials: Sequence[str] = ("<unk>", "<pad>")) -> Vocab:
        """Count the tokens of every document and keep the most frequent.

        Args:
            corpus_tokens: one token list per document (e.g. `tokenize(text)` each).
            max_size: most tokens kept, not counting the specials (None: no limit).
            min_freq: tokens seen fewer times are dropped.
            specials: come first, in this order; `'<unk>'` and `'<pad>'` set unk/pad_index.
        """
        if max_size is not None and max_size < 0:
            raise ValueError(f"Vocab.build: max_size should be non-negative, got {max_size}")
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq should be at least 1, got {min_freq}")
        if isinstance(corpus_tokens, str):
            raise TypeError("Vocab.build: expected token lists per document, got a str; "
                            "pass [tokenize(text) for text in texts]")
        freqs: Counter = Counter()
        for doc in corpus_tokens:
            if isinstance(doc, str):
                raise TypeError("Vocab.build: each document should be a list of tokens, got a "
                                "str; tokenize it first")
            freqs.update(doc)
        special_set = set(specials)
        ranked = sorted((t for t in freqs if t not in special_set and freqs[t] >= min_freq),
                        key=lambda t: (-freqs[t], t))
        if max_size is not None:
            ranked = ranked[:max_size]
        unk = "<unk>" if "<unk>" in special_set else None
        pad = "<pad>" if "<pad>" in special_set else None
        return cls(list(specials) + ranked, unk, pad, freqs)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    @property
    def unk_index(self) -> int | None:
        return None if self.unk_token is None else self.stoi[self.unk_token]

    @property
    def pad_index(self) -> int | None:
        return None if self.pad_token is None else self.stoi[self.pad_token]

    def __getitem__(self, token: str) -> int:
        index = self.stoi.get(token)
        if index is not None:
            return index
        if self.unk_token is None:
            raise KeyError(f"Vocab: token {token!r} is not in the vocabulary and there is no "
                           "'<unk>' special to map it to")
        return self.stoi[self.unk_token]

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        return [self[t] for t in tokens]

    __call__ = lookup_indices

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in indices]

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (temporary file + rename)."""
        record = {"format": self.FORMAT, "version": 1, "itos": self.itos,
                  "unk_token": self.unk_token, "pad_token": self.pad_token}
        atomic_write_text(path, json.dumps(record, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a vocabulary written by `save`."""
        with open(path, encoding="utf-8") as f:
            try:
                record = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"Vocab.load: {path} is not valid JSON ({e})") from e
        if not isinstance(record, dict) or record.get("format") != cls.FORMAT:
            raise ValueError(f"Vocab.load: {path} is not a shenjing vocabulary file (expected "
                             f"\"format\": \"{cls.FORMAT}\")")
        return cls(record["itos"], record.get("unk_token"), record.get("pad_token"))

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, unk={self.unk_token!r}, pad={self.pad_token!r})"


def pad_sequences(sequences: Sequence[Sequence[int]], padding_value: int = 0,
                  max_len: int | None = None, min_len: int = 0, dtype: Any = np.int64
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad index sequences into one (N, T) array.

    Args:
        sequences: N lists (or 1-D arrays) of token indices.
        padding_value: fills the tail of shorter sequences (the vocabulary's pad_index).
        max_len: truncate longer sequences to this length.
        min_len: pad to at least this length (a TextCNN needs T >= its widest filter).

    Returns:
        (padded, lengths): the (N, T) array and each sequence's length after truncation.
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if max_len is not None:
        lengths = np.minimum(lengths, max_len)
    width = max(int(lengths.max(initial=0)), min_len)
    padded = np.full((len(sequences), width), padding_value, dtype=dtype)
    for row, (seq, n) in enumerate(zip(sequences, lengths)):
        padded[row, :n] = np.asarray(seq[:n], dtype=dtype)
    return padded, lengths


class PadCollate:
    """collate_fn for (token indices, label) samples -> (tokens, lengths, labels) tensors.

    Args:
        pad_index: the padding index (`vocab.pad_index`).
        max_len: truncate longer sequences.
        min_len: pad every batch to at least this many time steps.
        batch_first: tokens as (batch, time), else (time, batch) as torchtext's default.
    """

    def __init__(self, pad_index: int, max_len: int | None = None, min_len: int = 0,
                 batch_first: bool = True) -> None:
        self.pad_index, self.max_len, self.min_len = pad_index, max_len, min_len
        self.batch_first = batch_first

    def __call__(self, batch: Sequence[tuple[Sequence[int], Any]]) -> tuple[Any, Any, Any]:
        from ..tensor import from_numpy

        sequences = [sample[0] for sample in batch]
        tokens, lengths = pad_sequences(sequences, self.pad_index, self.max_len, self.min_len)
        if not self.batch_first:
            tokens = np.ascontiguousarray(tokens.T)
        labels = np.array([sample[1] for sample in batch])
        return from_numpy(tokens), from_numpy(lengths), from_numpy(labels)


class BucketBatchSampler(Sampler):
    """Batches of indices whose sequences have similar lengths, as torchtext's BucketIterator.

    Indices are shuffled, cut into pools of `batch_size * bucket_size_multiplier`, each pool
    is sorted by length and cut into batches, and the batches are shuffled: little padding,
    yet a different mix every epoch. Every index appears exactly once per epoch.

    Args:
        lengths: the length of each sample's sequence.
        batch_size: indices per batch.
        shuffle: randomize pools and batch order (False: sorted by length overall).
        seed: seeds this sampler's own stream; None draws from the global one.
        drop_last: drop batches smaller than batch_size.
        bucket_size_multiplier: pool size in batches.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True,
                 seed: int | None = None, drop_last: bool = False,
                 bucket_size_multiplier: int = 100) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"BucketBatchSampler: batch_size should be a positive integer, got "
                             f"{batch_size!r}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1:
            raise ValueError(f"BucketBatchSampler: lengths should be 1-D, got shape "
                             f"{self.lengths.shape}")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.pool_size = batch_size * bucket_size_multiplier
        self.generator = Generator(seed) if seed is not None else None

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        rng = get_rng(self.generator)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        pool_size = self._pool()
        batches = []
        for start in range(0, n, pool_size):
            pool = order[start: start + pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            for b in range(0, len(pool), self.batch_size):
                batch = pool[b: b + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return iter(batches)

    def __len__(self) -> int:
        n, pool = len(self.lengths), self._pool()
        sizes = [min(pool, n - start) for start in range(0, n, pool)]
        if self.drop_last:
            return sum(size // self.batch_size for size in sizes)
        return sum(-(-size // self.batch_size) for size in sizes)

    def _pool(self) -> int:
        """Pool size: whole data set when not shuffling, so batches are sorted overall."""
        return self.pool_size if self.shuffle else max(len(self.lengths), 1)
