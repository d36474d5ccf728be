"""MNIST and Fashion-MNIST from their IDX files (gzip or raw), checked before use.

The four files of a set are looked for in the cache (`$SHENJING_DATA/<folder>/` or
`root/<folder>/`), in torchvision's layout (`root/MNIST/raw/`), in system folders (Debian's
`dataset-fashion-mnist` package), and are downloaded from the canonical mirror only as a last
resort. Whatever the source, a file is parsed strictly (magic number, dimensions, exact data
length) and the MD5 of its *uncompressed* bytes is compared with the canonical one: re-packed
.gz wrappers (Debian strips the gzip file name and time stamp) change the compressed bytes but
not the data.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...io import limits
from ...io.errors import IdxFileError
from .._files import DownloadError, data_home, download_url, gunzip_bounded, md5_bytes
from ..dataset import Dataset

__all__ = ["IDX_SETS", "MNIST", "FashionMNIST", "IdxFileError", "load_idx_arrays", "read_idx"]

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type codes (third byte of the magic number) and the big-endian dtypes they stand for.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)


@dataclass(frozen=True)
class IdxSet:
    """Where one IDX data set lives and what its files must contain."""

    title: str
    folder: str
    torchvision_folder: str
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...]
    md5: dict[str, str]  # file name (without .gz) -> MD5 of the uncompressed bytes
    classes: tuple[str, ...]
    install_hint: str

    @staticmethod
    def file_names(train: bool) -> tuple[str, str]:
        prefix = "train" if train else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


IDX_SETS: dict[str, IdxSet] = {
    "mnist": IdxSet(
        title="MNIST",
        folder="mnist",
        torchvision_folder="MNIST",
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",),
        system_dirs=(),
        # The canonical files' uncompressed MD5s.
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        classes=tuple(
            f"{d} - {w}"
            for d, w in enumerate(
                ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
            )
        ),
        install_hint="",
    ),
    "fashion-mnist": IdxSet(
        title="FashionMNIST",
        folder="fashion-mnist",
        torchvision_folder="FashionMNIST",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        # Computed from Debian's dataset-fashion-mnist files and cross-checked: their .gz files
        # are the published ones with the gzip header's file name dropped and its time stamp
        # reset; putting back FNAME and mtime 2017-08-31 10:50:06/27 UTC reproduces the
        # published .gz MD5s (8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...) exactly.
        md5={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        classes=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        install_hint="`apt-get install dataset-fashion-mnist` (installs /usr/share/datasets/"
        "fashion-mnist/), or ",
    ),
}


def _idx_set(name: str) -> IdxSet:
    key = name.lower().replace("_", "-")
    if key not in IDX_SETS:
        raise ValueError(f"unknown IDX data set {name!r}; expected one of {sorted(IDX_SETS)}")
    return IDX_SETS[key]


_AGAIN = "; delete it and download it again"


def read_idx(
    path: str | os.PathLike,
    what: str = "IDX",
    expected_magic: int | None = None,
    expected_md5: str | None = None,
) -> np.ndarray:
    """Parse one IDX file (gzip or raw) into a native-endian array, strictly.

    Args:
        path: the file.
        what: data set name for error messages.
        expected_magic: the 4-byte magic number the file must start with (e.g. 0x803 for
            images), or None to accept any valid IDX header.
        expected_md5: MD5 of the uncompressed bytes, or None to skip the check.

    Raises:
        IdxFileError: (a ValueError) wrong magic number, truncated or oversized data, too many
            dimensions, corrupt gzip, checksum mismatch; the message names the file.
    """
    array, raw = _parse_idx(Path(path), what, expected_magic)
    if expected_md5 is not None:
        _check_md5(Path(path), raw, expected_md5, what)
    return array


def _check_md5(path: Path, raw: bytes, expected: str, what: str) -> None:
    actual = md5_bytes(raw)
    if actual != expected:
        raise IdxFileError(f"{what}: file {path} is corrupted: MD5 of its uncompressed bytes is "
                           f"{actual}, expected {expected}{_AGAIN}", path)


def _idx_bytes(path: Path, what: str) -> bytes:
    """A file's IDX bytes; a .gz is decompressed no further than its header says it holds."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    source = f"{what}: file {path}"
    try:  # the header alone (at most 4 + 4 * 255 bytes) tells how long the data must be
        head = zlib.decompressobj(wbits=31).decompress(raw, 4 + 4 * 255)
    except zlib.error as e:
        raise IdxFileError(f"{source} is a truncated or corrupted gzip file ({e}){_AGAIN}",
                           path) from None
    try:
        _, _, _, expected = _header(head, path, what, None, complete=False)
    except IdxFileError:  # not IDX inside: first say if the gzip itself is damaged
        gunzip_bounded(raw, source, error=IdxFileError)
        raise
    return gunzip_bounded(raw, source, limit=expected, error=IdxFileError)


def _header(
    raw: bytes, path: Path, what: str, expected_magic: int | None, complete: bool = True
) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """Shape, dtype, header length and total length declared by an IDX header, checked."""
    if len(raw) < 4:
        if not complete:
            return (), np.dtype("u1"), 0, limits.MAX_FILE_BYTES
        raise IdxFileError(f"{what}: file {path} is truncated: expected an IDX header, got "
                           f"{len(raw)} bytes{_AGAIN}", path)
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise IdxFileError(
            f"{what}: file {path} has magic number 0x{magic:08x}, expected "
            f"0x{expected_magic:08x} ({_describe_magic(expected_magic)}); is it the right file?",
            path)
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or type_code not in _IDX_DTYPES or ndim == 0:
        raise IdxFileError(f"{what}: file {path} is not an IDX file (magic number "
                           f"0x{magic:08x})", path)
    if ndim > limits.MAX_NDIM:
        raise IdxFileError(f"{what}: file {path} declares {ndim} dimensions, more than the "
                           f"limit of {limits.MAX_NDIM}", path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        if not complete:
            return (), np.dtype("u1"), header, limits.MAX_FILE_BYTES
        raise IdxFileError(f"{what}: file {path} is truncated: expected a {header}-byte "
                           f"header, got {len(raw)} bytes{_AGAIN}", path)
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    limits.check_shape(shape, f"{what}: file {path}", "the IDX header", IdxFileError)
    dtype = _IDX_DTYPES[type_code]
    return shape, dtype, header, header + math.prod(shape) * dtype.itemsize  # exact ints


def _parse_idx(path: Path, what: str, expected_magic: int | None) -> tuple[np.ndarray, bytes]:
    """The array in an IDX file and the file's uncompressed bytes; structure checked.

    The declared dimensions are multiplied as Python ints (no overflow) and compared with the
    bytes actually present before any array is made.
    """
    raw = _idx_bytes(path, what)
    shape, dtype, header, total = _header(raw, path, what, expected_magic)
    expected, got = total - header, len(raw) - header
    if got != expected:
        kind = "truncated" if got < expected else "too long"
        noun = "image" if len(shape) == 3 else "label" if len(shape) == 1 else "array"
        raise IdxFileError(
            f"{what}: file {path.name} is {kind}: expected {expected} bytes of {noun} data "
            f"for shape {shape}, got {got} (in {path.parent}){_AGAIN}", path
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("=")), raw


def _describe_magic(magic: int) -> str:
    if magic == IMAGES_MAGIC:
        return "an IDX file of images: unsigned bytes, 3 dimensions"
    if magic == LABELS_MAGIC:
        return "an IDX file of labels: unsigned bytes, 1 dimension"
    return "an IDX file"


def _search_dirs(spec: IdxSet, root: str | os.PathLike | None) -> list[Path]:
    base = Path(root).expanduser() if root is not None else data_home()
    dirs = [base / spec.folder, base / spec.torchvision_folder / "raw"]
    return dirs + [Path(d) for d in spec.system_dirs]


def _locate(spec: IdxSet, name: str, root: str | os.PathLike | None, download: bool) -> Path:
    """Find `name` (.gz or raw) in the search folders, else download it, else explain."""
    dirs = _search_dirs(spec, root)
    for folder in dirs:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    failures = []
    if download:
        dest = dirs[0] / f"{name}.gz"

        def check(tmp: Path) -> None:
            actual = md5_bytes(_idx_bytes(tmp, spec.title))
            if actual != spec.md5[name]:
                raise ValueError(f"MD5 of the uncompressed bytes is {actual}, "
                                 f"expected {spec.md5[name]}")

        for mirror in spec.mirrors:
            try:
                return download_url(mirror + f"{name}.gz", dest, check=check)
            except DownloadError as e:
                failures.append(str(e))
    looked = ", ".join(str(d) for d in dirs)
    tried = f" Download failed: {'; '.join(failures)}." if failures else (
        " Downloading was not attempted (download=False)." if not download else "")
    raise FileNotFoundError(
        f"{spec.title}: file {name}.gz (or {name}) not found; looked in {looked}.{tried} "
        f"To get it: {spec.install_hint}copy the four IDX files into {dirs[0]} "
        f"(or set SHENJING_DATA to a folder holding {spec.folder}/), or download them "
        f"from {spec.mirrors[0]} on a machine with internet access."
    )


def load_idx_arrays(
    name: str,
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split of MNIST or Fashion-MNIST, checked.

    The fast path behind `MNIST`, `FashionMNIST` and `keras.datasets.mnist.load_data()`.

    Args:
        name: "mnist" or "fashion-mnist" ("fashion_mnist" also works).
        train: the 60,000-image training split, else the 10,000-image test split.
        root: folder holding `mnist/` or `fashion-mnist/`; default `$SHENJING_DATA`.
        download: fetch missing files from the canonical mirror.

    Returns:
        images (uint8, N×28×28) and labels (int64, N).
    """
    spec = _idx_set(name)
    images_name, labels_name = spec.file_names(train)
    images_path = _locate(spec, images_name, root, download)
    labels_path = _locate(spec, labels_name, root, download)
    images, images_raw = _parse_idx(images_path, spec.title, IMAGES_MAGIC)
    labels, labels_raw = _parse_idx(labels_path, spec.title, LABELS_MAGIC)
    if len(labels) != len(images):
        raise IdxFileError(
            f"{spec.title}: label file {labels_path} holds {len(labels)} labels but image file "
            f"{images_path} holds {len(images)} images; expected one label per image"
        )
    _check_md5(images_path, images_raw, spec.md5[images_name], spec.title)
    _check_md5(labels_path, labels_raw, spec.md5[labels_name], spec.title)
    return images, labels.astype(np.int64)


class MNIST(Dataset):
    """MNIST handwritten digits, as torchvision.datasets.MNIST.

    Items are `(image, label)`: the image is a PIL "L" image (a uint8 28×28 array when Pillow
    is missing) passed through `transform`, the label an int passed through
    `target_transform`. `.data` holds all images (uint8 N×28×28), `.targets` the labels (int64).
    """

    _set_name = "mnist"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = True,
    ) -> None:
        spec = _idx_set(self._set_name)
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.classes = list(spec.classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.data, self.targets = load_idx_arrays(self._set_name, train, root, download)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image = _as_image(self.data[index])
        target = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        root = self.root if self.root is not None else data_home()
        return (f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {root}\n    Split: {'Train' if self.train else 'Test'}")


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando's 10 clothing classes), same format and interface as MNIST."""

    _set_name = "fashion-mnist"


def _as_image(array: np.ndarray) -> Any:
    """A PIL image of a uint8 array when Pillow is installed (as torchvision), else the array."""
    try:
        from PIL import Image
    except ImportError:
        return array
    return Image.fromarray(array)
