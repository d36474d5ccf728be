"""`keras.datasets.mnist.load_data()` and `fashion_mnist.load_data()` over shenjing.data.

Both read the real IDX files through `shenjing.data.datasets.load_idx_arrays` (looked for
under `$SHENJING_DATA`, checksummed, downloaded only when missing) and return Keras's
`(x_train, y_train), (x_test, y_test)`: uint8 images (N, 28, 28) and uint8 labels (N,).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["mnist", "fashion_mnist"]


def _loader(name: str) -> Any:
    def load_data(path: Any = None) -> tuple:
        from ..data.datasets import load_idx_arrays

        x_train, y_train = load_idx_arrays(name, train=True)
        x_test, y_test = load_idx_arrays(name, train=False)
        return ((x_train, y_train.astype(np.uint8)), (x_test, y_test.astype(np.uint8)))

    load_data.__doc__ = (f"({name} train, test) as ((x_train, y_train), (x_test, y_test)); "
                         f"`path` is accepted for Keras compatibility and ignored.")
    return load_data


mnist = SimpleNamespace(load_data=_loader("mnist"))
fashion_mnist = SimpleNamespace(load_data=_loader("fashion-mnist"))
