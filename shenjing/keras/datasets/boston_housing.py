"""`keras.datasets.boston_housing`: 506 Boston suburbs, 13 features, median price (k$)."""

from __future__ import annotations

import numpy as np

from .files import locate, safe_load_npz

__all__ = ["load_data"]

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/boston_housing.npz"
SHA256 = "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5"


def load_data(path: str = "boston_housing.npz", test_split: float = 0.2, seed: int = 113,
              download: bool = True) -> tuple:
    """`(x_train, y_train), (x_test, y_test)`: rows shuffled with
    `np.random.RandomState(seed)`, the last `test_split` of them for testing."""
    if not 0.0 <= test_split < 1.0:
        raise ValueError(f"boston_housing.load_data: test_split must be in [0, 1), got "
                         f"{test_split}")
    arrays = safe_load_npz(locate(path, ORIGIN, SHA256, "boston_housing", download=download))
    x, y = arrays["x"], arrays["y"]
    order = np.arange(len(x))
    np.random.RandomState(seed).shuffle(order)
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))
