"""`keras.datasets.mnist`, `fashion_mnist` and `cifar10`, as Keras 3 ships them.

mnist: Keras's `mnist.npz` under `$SHENJING_DATA` (checksummed), else the IDX files that
`shenjing.data` finds locally, else a checksummed download of `mnist.npz`.
fashion_mnist: the IDX files `shenjing.data` finds locally (`$SHENJING_DATA/fashion-mnist/`,
system folders), else Keras's four .gz files (local under `$SHENJING_DATA/keras/
fashion-mnist/`, or downloaded with their SHA-256 checked).
cifar10: `cifar-10-batches-py/` or the checksummed `cifar-10-python.tar.gz`.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ...data import data_home
from .files import (
    KERAS_BASE,
    DatasetUnavailableError,
    find_local,
    locate,
    safe_load_npz,
    safe_unpickle,
)

__all__ = ["load_mnist", "load_fashion_mnist", "load_cifar10"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
MNIST_URL = KERAS_BASE + "mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
FASHION_SHA256 = {  # Keras's published hashes of the four archives
    "train-labels-idx1-ubyte.gz":
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "train-images-idx3-ubyte.gz":
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "t10k-labels-idx1-ubyte.gz":
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    "t10k-images-idx3-ubyte.gz":
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
}


def _local_idx(name: str) -> tuple | None:
    """Both splits from IDX files found locally by shenjing.data, or None."""
    from ...data.datasets import load_idx_arrays

    try:
        x_train, y_train = load_idx_arrays(name, train=True, download=False)
        x_test, y_test = load_idx_arrays(name, train=False, download=False)
    except FileNotFoundError:
        return None
    return (x_train, y_train.astype(np.uint8)), (x_test, y_test.astype(np.uint8))


def load_mnist(path: str = "mnist.npz", download: bool = True) -> tuple:
    """MNIST as ((x_train uint8 (60000, 28, 28), y_train uint8), (x_test, y_test))."""
    npz = find_local(path, MNIST_SHA256, "mnist")
    if npz is None:
        local = _local_idx("mnist")
        if local is not None:
            return local
        npz = locate(path, MNIST_URL, MNIST_SHA256, "mnist", download=download)
    arrays = safe_load_npz(npz)
    try:
        return ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]))
    except KeyError as e:
        raise ValueError(f"mnist: {npz} lacks the array {e}; expected x_train, y_train, "
                         f"x_test and y_test") from None


def _read_idx_gz(path: Path, what: str, magic: int) -> np.ndarray:
    from ...data.datasets import read_idx

    return read_idx(path, what, expected_magic=magic)


def load_fashion_mnist(download: bool = True) -> tuple:
    """Fashion-MNIST, laid out as `load_mnist`."""
    local = _local_idx("fashion-mnist")
    if local is not None:
        return local
    paths = {name: locate(name, KERAS_BASE + name, FASHION_SHA256[name], "fashion_mnist",
                          subdir="fashion-mnist", download=download)
             for name in FASHION_SHA256}
    splits = []
    for prefix in ("train", "t10k"):
        x = _read_idx_gz(paths[f"{prefix}-images-idx3-ubyte.gz"], "fashion_mnist", 0x803)
        y = _read_idx_gz(paths[f"{prefix}-labels-idx1-ubyte.gz"], "fashion_mnist", 0x801)
        if len(x) != len(y):
            raise ValueError(f"fashion_mnist: {prefix} split has {len(x)} images but "
                             f"{len(y)} labels")
        splits.append((x.astype(np.uint8), y.astype(np.uint8)))
    return splits[0], splits[1]


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
