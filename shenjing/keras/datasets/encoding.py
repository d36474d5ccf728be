"""Keras's word-index encoding of the IMDB and Reuters sequence sets, shared by both."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["encode", "remove_long", "build_word_index", "words_to_ranks", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of a review (HTML line breaks dropped, punctuation split off)."""
    return _TOKEN.findall(text.lower().replace("<br />", " "))


def build_word_index(texts: Iterable[str]) -> dict[str, int]:
    """Word -> frequency rank (1 = most frequent; ties broken by first appearance)."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenize(text))
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: first seen first
    return {word: rank for rank, (word, _) in enumerate(ranked, start=1)}


def words_to_ranks(text: str, word_index: dict[str, int]) -> list[int]:
    """A review as word ranks; words missing from the index are skipped, as in Keras's set."""
    return [word_index[w] for w in tokenize(text) if w in word_index]


def remove_long(maxlen: int, seqs: Sequence[list[int]], labels: np.ndarray) -> tuple:
    """Keep the sequences strictly shorter than `maxlen` (Keras's rule) and their labels."""
    keep = [i for i, s in enumerate(seqs) if len(s) < maxlen]
    return [seqs[i] for i in keep], labels[keep]


def _object_array(seqs: list[list[int]]) -> np.ndarray:
    out = np.empty(len(seqs), dtype=object)
    out[:] = seqs
    return out


def encode(x_train: Sequence[Any], y_train: np.ndarray, x_test: Sequence[Any],
           y_test: np.ndarray, num_words: int | None, skip_top: int, maxlen: int | None,
           start_char: int | None, oov_char: int | None, index_from: int, what: str
           ) -> tuple:
    """Apply Keras's steps in Keras's order: shift ranks by `index_from` and prepend
    `start_char`; drop sequences not shorter than `maxlen`; then map ranks outside
    [skip_top, num_words) to `oov_char` (or drop them when it is None)."""
    for name, v in (("num_words", num_words), ("maxlen", maxlen)):
        if v is not None and (not isinstance(v, (int, np.integer)) or v <= 0):
            raise ValueError(f"{what}: {name} must be a positive int or None, got {v!r}")
    train = [list(map(int, s)) for s in x_train]
    test = [list(map(int, s)) for s in x_test]
    if start_char is not None:
        train = [[start_char] + [w + index_from for w in s] for s in train]
        test = [[start_char] + [w + index_from for w in s] for s in test]
    elif index_from:
        train = [[w + index_from for w in s] for s in train]
        test = [[w + index_from for w in s] for s in test]
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if maxlen:
        train, y_train = remove_long(maxlen, train, y_train)
        test, y_test = remove_long(maxlen, test, y_test)
        if not train or not test:
            raise ValueError(f"{what}: after removing sequences of length >= maxlen={maxlen} "
                             f"no sequence is left; increase maxlen")
    xs = train + test
    if not num_words:
        num_words = max((max(s) for s in xs if s), default=0)
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in s] for s in xs]
    else:
        xs = [[w for w in s if skip_top <= w < num_words] for s in xs]
    n = len(train)
    return (_object_array(xs[:n]), y_train), (_object_array(xs[n:]), y_test)
