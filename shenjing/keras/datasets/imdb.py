"""`keras.datasets.imdb`: 25,000 + 25,000 movie reviews as word-rank sequences.

`load_data()` reads Keras's `imdb.npz` (local copy under `$SHENJING_DATA` first, else a
checksummed download) and encodes it exactly as Keras does. With `source=` a folder or
.tar.gz in the aclImdb layout (`{train,test}/{pos,neg}/*.txt`, read by `shenjing.data.IMDB`)
the same encoding is built from raw text: words ranked by their training-set frequency.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .encoding import build_word_index, encode, words_to_ranks
from .files import locate, safe_load_npz

__all__ = ["load_data", "get_word_index"]

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
NPZ_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_MD5 = "bfafd718b763782e994055a2d397834f"


def _reviews(source: str | os.PathLike, split: str) -> tuple[list[str], np.ndarray]:
    from ...data.datasets import IMDB

    path = os.fspath(source)
    ds = IMDB(archive=path, split=split, download=False) if os.path.isfile(path) else \
        IMDB(root=path, split=split, download=False)
    texts, labels = zip(*(ds[i] for i in range(len(ds)))) if len(ds) else ((), ())
    return list(texts), np.asarray(labels, dtype=np.int64)


def load_data(path: str = "imdb.npz", num_words: int | None = None, skip_top: int = 0,
              maxlen: int | None = None, seed: int = 113, start_char: int | None = 1,
              oov_char: int | None = 2, index_from: int = 3,
              source: str | os.PathLike | None = None, download: bool = True) -> tuple:
    """`(x_train, y_train), (x_test, y_test)`: object arrays of int lists, int labels.

    Each split is shuffled with `np.random.RandomState(seed)`, then encoded as Keras does
    (see `encoding.encode`): ranks shifted by `index_from`, `start_char` first, sequences of
    length >= `maxlen` dropped, ranks outside [skip_top, num_words) become `oov_char`.
    """
    if source is not None:
        train_text, y_train = _reviews(source, "train")
        test_text, y_test = _reviews(source, "test")
        index = build_word_index(train_text)
        x_train = [words_to_ranks(t, index) for t in train_text]
        x_test = [words_to_ranks(t, index) for t in test_text]
    else:
        arrays = safe_load_npz(locate(path, ORIGIN + "imdb.npz", NPZ_SHA256, "imdb",
                                      download=download))
        x_train, y_train = list(arrays["x_train"]), arrays["y_train"]
        x_test, y_test = list(arrays["x_test"]), arrays["y_test"]
    rng = np.random.RandomState(seed)
    order = np.arange(len(x_train))
    rng.shuffle(order)
    x_train, y_train = [x_train[i] for i in order], np.asarray(y_train)[order]
    order = np.arange(len(x_test))
    rng.shuffle(order)
    x_test, y_test = [x_test[i] for i in order], np.asarray(y_test)[order]
    return encode(x_train, y_train, x_test, y_test, num_words, skip_top, maxlen, start_char,
                  oov_char, index_from, "imdb.load_data")


def get_word_index(path: str = "imdb_word_index.json",
                   source: str | os.PathLike | None = None, download: bool = True
                   ) -> dict[str, Any]:
    """Word -> rank (1 = most frequent). Decode a sequence with rank + index_from (3)."""
    if source is not None:
        return build_word_index(_reviews(source, "train")[0])
    file = locate(path, ORIGIN + "imdb_word_index.json", WORD_INDEX_MD5,
                  "imdb.get_word_index", download=download)
    with open(file, encoding="utf-8") as f:
        return json.load(f)
