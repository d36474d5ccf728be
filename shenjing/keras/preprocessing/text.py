"""`keras.preprocessing.text.Tokenizer`: the legacy word-index tokenizer.

Words are ranked by count (1 = most frequent, ties in first-seen order); `num_words` keeps
ranks below it when encoding; `oov_token` takes rank 1 and stands for unknown words.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

__all__ = ["Tokenizer", "text_to_word_sequence"]

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def text_to_word_sequence(text: str, filters: str = DEFAULT_FILTERS, lower: bool = True,
                          split: str = " ") -> list[str]:
    """`text` with `filters` characters turned into `split`, cut on `split`."""
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [w for w in text.split(split) if w]


class Tokenizer:
    """Fit on texts to build `word_index`, then turn texts into rank sequences or matrices."""

    def __init__(self, num_words: int | None = None, filters: str = DEFAULT_FILTERS,
                 lower: bool = True, split: str = " ", char_level: bool = False,
                 oov_token: str | None = None) -> None:
        self.num_words, self.filters, self.lower, self.split = num_words, filters, lower, split
        self.char_level, self.oov_token = char_level, oov_token
        self.word_counts: Counter = Counter()
        self.word_docs: Counter = Counter()
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}
        self.document_count = 0

    def _words(self, text: str) -> list[str]:
        if self.char_level:
            return list(text.lower() if self.lower else text)
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts: Iterable[str]) -> None:
        for text in texts:
            words = self._words(text)
            self.document_count += 1
            self.word_counts.update(words)
            self.word_docs.update(set(words))
        ranked = [w for w, _ in sorted(self.word_counts.items(), key=lambda kv: -kv[1])]
        if self.oov_token is not None:
            ranked = [self.oov_token] + [w for w in ranked if w != self.oov_token]
        self.word_index = {w: i for i, w in enumerate(ranked, start=1)}
        self.index_word = {i: w for w, i in self.word_index.items()}

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        limit = self.num_words
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        out = []
        for text in texts:
            seq = []
            for w in self._words(text):
                i = self.word_index.get(w)
                if i is not None and (not limit or i < limit):
                    seq.append(i)
                elif oov is not None:
                    seq.append(oov)
            out.append(seq)
        return out

    def sequences_to_texts(self, sequences: Iterable[Iterable[int]]) -> list[str]:
        return [" ".join(self.index_word[i] for i in s if i in self.index_word)
                for s in sequences]

    def texts_to_matrix(self, texts: Iterable[str], mode: str = "binary") -> np.ndarray:
        """One row per text over `num_words` columns: 'binary', 'count', 'freq' or 'tfidf'."""
        if mode not in ("binary", "count", "freq", "tfidf"):
            raise ValueError(f"Tokenizer: mode must be 'binary', 'count', 'freq' or 'tfidf', "
                             f"got {mode!r}")
        seqs = self.texts_to_sequences(texts)
        width = self.num_words or len(self.word_index) + 1
        m = np.zeros((len(seqs), width))
        for row, seq in enumerate(seqs):
            counts = Counter(i for i in seq if i < width)
            for i, c in counts.items():
                if mode == "binary":
                    m[row, i] = 1
                elif mode == "count":
                    m[row, i] = c
                elif mode == "freq":
                    m[row, i] = c / len(seq)
                else:
                    docs = self.word_docs.get(self.index_word.get(i, ""), 0)
                    m[row, i] = (1 + np.log(c)) * np.log(1 + self.document_count / (1 + docs))
        return m
