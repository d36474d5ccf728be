"""`keras.datasets.mnist`, `fashion_mnist` (IDX files via shenjing.data) and `cifar10`."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ...data import data_home
from .files import DatasetUnavailableError, locate, safe_unpickle

__all__ = ["load_mnist", "load_fashion_mnist", "load_cifar10"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


def _idx(name: str) -> tuple:
    from ...data.datasets import load_idx_arrays

    x_train, y_train = load_idx_arrays(name, train=True)
    x_test, y_test = load_idx_arrays(name, train=False)
    return (x_train, y_train.astype(np.uint8)), (x_test, y_test.astype(np.uint8))


def load_mnist(path: str = "mnist.npz") -> tuple:
    """MNIST as ((x_train uint8 (60000, 28, 28), y_train uint8), (x_test, y_test))."""
    return _idx("mnist")


def load_fashion_mnist() -> tuple:
    """Fashion-MNIST, laid out as `load_mnist`."""
    return _idx("fashion-mnist")


def _cifar_batches(folder: Path | None, archive: Path | None) -> dict[str, dict]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    out = {}
    if folder is not None:
        for name in names:
            out[name] = safe_unpickle((folder / name).read_bytes(), encoding="bytes")
        return out
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if base in names and member.isfile():
                out[base] = safe_unpickle(tar.extractfile(member).read(), encoding="bytes")
    missing = set(names) - set(out)
    if missing:
        raise ValueError(f"cifar10: {archive} lacks {sorted(missing)}")
    return out


def _cifar_arrays(batch: dict) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data.transpose(0, 2, 3, 1), np.asarray(batch[b"labels"], np.uint8).reshape(-1, 1)


def load_cifar10(download: bool = True) -> tuple:
    """CIFAR-10 channels-last: x uint8 (50000, 32, 32, 3), y uint8 (50000, 1); test 10000.

    Reads `cifar-10-batches-py/` or `cifar-10-python.tar.gz` under `$SHENJING_DATA`
    (or its `keras/` sub-folder), else downloads the archive with its SHA-256 checked.
    """
    home = data_home()
    folder = next((d / "cifar-10-batches-py" for d in (home / "keras", home)
                   if (d / "cifar-10-batches-py" / "test_batch").is_file()), None)
    archive = None
    if folder is None:
        try:
            archive = locate("cifar-10-python.tar.gz", CIFAR10_URL, CIFAR10_SHA256, "cifar10",
                             download=download)
        except DatasetUnavailableError as e:
            raise DatasetUnavailableError(f"{e} (an extracted cifar-10-batches-py/ folder "
                                          f"there works too)") from None
    batches = _cifar_batches(folder, archive)
    train = [_cifar_arrays(batches[f"data_batch_{i}"]) for i in range(1, 6)]
    x_test, y_test = _cifar_arrays(batches["test_batch"])
    return ((np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
            (x_test, y_test))
