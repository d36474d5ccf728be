"""Finding, downloading (checksummed) and safely reading the Keras dataset files.

Each file is looked for under `$SHENJING_DATA` (also in a `keras/` sub-folder); a local copy
must have the published checksum. Otherwise it is downloaded from its canonical URL into
`$SHENJING_DATA/keras/`: the bytes stream into a temporary file beside the destination while
their checksum is computed, a mismatch raises `DatasetChecksumError` and deletes the
temporary file, and only a verified file is renamed (atomically) into place.

`$SHENJING_DATASETS_URL`, when set, is a mirror: every file is fetched from
`$SHENJING_DATASETS_URL/<file name>` instead of its canonical URL (checksums still apply).
It serves machines behind a proxy cache, and the tests, which serve files locally.

Keras ships some sets as pickled NumPy object arrays; they are read with an unpickler that
only rebuilds plain lists, dicts, strings, numbers and NumPy arrays, never other objects.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from ...data import data_home
from ...io.atomic import atomic_write

__all__ = ["DatasetUnavailableError", "DatasetChecksumError", "MIRROR_ENV", "origin_url",
           "find_local", "locate", "safe_load_npz", "safe_unpickle", "sha256_file",
           "file_digest"]

MIRROR_ENV = "SHENJING_DATASETS_URL"
KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class DatasetUnavailableError(FileNotFoundError):
    """A dataset file is neither on disk nor downloadable (offline, or the URL failed)."""


class DatasetChecksumError(ValueError):
    """A dataset file (on disk or just downloaded) does not have its published checksum."""


def origin_url(canonical: str) -> str:
    """`canonical`, or the same file name under the `$SHENJING_DATASETS_URL` mirror."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return canonical
    return mirror.rstrip("/") + "/" + canonical.rsplit("/", 1)[-1]


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    return file_digest(path, "sha256")


_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


def _algorithm(checksum: str) -> str:
    """Keras's convention: a 64-hex-digit hash is SHA-256, a 32-digit one MD5."""
    return "md5" if len(checksum) == 32 else "sha256"


def _search_dirs(subdir: str) -> list[Path]:
    home = data_home()
    if subdir:
        return [home / "keras" / subdir, home / subdir, home / "keras", home]
    return [home / "keras", home]


def find_local(fname: str, checksum: str | None, what: str, subdir: str = "") -> Path | None:
    """The local copy of `fname` under `$SHENJING_DATA`, checked, or None."""
    for folder in _search_dirs(subdir):
        path = folder / fname
        if path.is_file():
            if checksum:
                algorithm = _algorithm(checksum)
                actual = file_digest(path, algorithm)
                if actual != checksum:
                    raise DatasetChecksumError(
                        f"{what}: {path} has {_NAMES[algorithm]} {actual}, expected "
                        f"{checksum}; delete it to download a fresh copy")
            return path
    return None


def locate(fname: str, origin: str, checksum: str | None, what: str, subdir: str = "",
           download: bool = True) -> Path:
    """A local copy of `fname` (checked against `checksum`: SHA-256, or MD5 if 32 hex
    digits), else a verified download from `origin` (or the mirror), else
    DatasetUnavailableError naming the data set, the URL and where to put the file."""
    local = find_local(fname, checksum, what, subdir)
    if local is not None:
        return local
    dirs = _search_dirs(subdir)
    url = origin_url(origin)
    failure = "downloading was not attempted (download=False)"
    if download:
        try:
            return _download(url, dirs[0] / fname, checksum, what)
        except (urllib.error.URLError, OSError) as e:
            failure = f"downloading {url} failed: {e}"
    looked = ", ".join(str(d) for d in dirs)
    raise DatasetUnavailableError(
        f"{what}: {fname} not found (looked in {looked}) and {failure}. Offline, put {fname} "
        f"from {url} into {dirs[0]}, or set $SHENJING_DATA to a folder holding it.")


def _download(url: str, dest: Path, checksum: str | None, what: str) -> Path:
    """Stream `url` into a temporary file beside `dest`, check it, rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.new(_algorithm(checksum) if checksum else "sha256",
                         usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=30) as response, atomic_write(dest) as f:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            f.write(chunk)
        if checksum and digest.hexdigest() != checksum:  # raising here removes the temp
            raise DatasetChecksumError(
                f"{what}: the file downloaded from {url} has {_NAMES[digest.name]} "
                f"{digest.hexdigest()}, expected {checksum}; it was discarded (a corrupt "
                f"transfer or a wrong mirror)")
    return dest


_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("builtins", "list"), ("builtins", "dict"),
    ("collections", "OrderedDict"), ("_codecs", "encode"),
}


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file "
                                         f"(only arrays, lists and dicts are allowed)")
        return super().find_class(module, name)


def safe_unpickle(data: bytes, encoding: str = "ASCII") -> Any:
    """Unpickle `data` allowing only plain containers and NumPy arrays."""
    return _DataOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()


def _read_npy(raw: bytes) -> np.ndarray:
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    shape, fortran, dtype = _header(stream, version)
    if dtype.hasobject:
        arr = safe_unpickle(stream.read(), encoding="latin1")
        return np.asarray(arr, dtype=object) if not isinstance(arr, np.ndarray) else arr
    count = int(np.prod(shape)) if shape else 1
    data = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C")


def _header(stream: io.BytesIO, version: tuple) -> tuple:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    return np.lib.format.read_array_header_2_0(stream)


def safe_load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an .npz file; object arrays are rebuilt by the data-only unpickler."""
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            key = name[:-4] if name.endswith(".npy") else name
            out[key] = _read_npy(z.read(name))
    return out
