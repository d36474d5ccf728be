"""`keras.datasets.reuters`: 11,228 Reuters newswires in 46 topics, as word-rank sequences
(read from a local or checksummed `reuters.npz`, encoded as Keras does)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .encoding import encode
from .files import locate, safe_load_npz

__all__ = ["load_data", "get_word_index", "get_label_names"]

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
NPZ_SHA256 = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
WORD_INDEX_MD5 = "4d44cc38712099c9e383dc6e5f11a921"

LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas",
    "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs",
    "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead",
)


def load_data(path: str = "reuters.npz", num_words: int | None = None, skip_top: int = 0,
              maxlen: int | None = None, test_split: float = 0.2, seed: int = 113,
              start_char: int | None = 1, oov_char: int | None = 2, index_from: int = 3,
              download: bool = True) -> tuple:
    """`(x_train, y_train), (x_test, y_test)`: all wires shuffled with
    `np.random.RandomState(seed)`, encoded as in `imdb.load_data`, and the last
    `test_split` of them kept for testing."""
    if not 0.0 <= test_split < 1.0:
        raise ValueError(f"reuters.load_data: test_split must be in [0, 1), got {test_split}")
    arrays = safe_load_npz(locate(path, ORIGIN + "reuters.npz", NPZ_SHA256, "reuters",
                                  download=download))
    xs, labels = list(arrays["x"]), np.asarray(arrays["y"])
    order = np.arange(len(xs))
    np.random.RandomState(seed).shuffle(order)
    xs, labels = [xs[i] for i in order], labels[order]
    (enc, y), _ = encode(xs, labels, [], np.zeros(0, labels.dtype), num_words, skip_top, None,
                         start_char, oov_char, index_from, "reuters.load_data")
    if maxlen:
        keep = [i for i, s in enumerate(enc) if len(s) < maxlen]
        enc, y = enc[keep], y[keep]
    cut = int(len(enc) * (1 - test_split))
    return (enc[:cut], y[:cut]), (enc[cut:], y[cut:])


def get_word_index(path: str = "reuters_word_index.json", download: bool = True
                   ) -> dict[str, Any]:
    """Word -> rank (1 = most frequent)."""
    file = locate(path, ORIGIN + "reuters_word_index.json", WORD_INDEX_MD5,
                  "reuters.get_word_index", download=download)
    with open(file, encoding="utf-8") as f:
        return json.load(f)


def get_label_names() -> tuple[str, ...]:
    """The 46 topic names, in label order."""
    return LABEL_NAMES
