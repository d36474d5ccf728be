"""Finding, downloading (checksummed) and safely reading the Keras dataset files.

Each file is looked for under `$SHENJING_DATA` (also in a `keras/` sub-folder), then
downloaded from its canonical URL into `$SHENJING_DATA/keras/` with its SHA-256 checked.
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

__all__ = ["DatasetUnavailableError", "locate", "safe_load_npz", "safe_unpickle", "sha256_file"]


class DatasetUnavailableError(FileNotFoundError):
    """A dataset file is neither on disk nor downloadable (offline, or checksum mismatch)."""


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _search_dirs(subdir: str) -> list[Path]:
    home = data_home()
    return [home / "keras" / subdir, home / subdir, home / "keras", home]


def locate(fname: str, origin: str, sha256: str | None, what: str, subdir: str = "",
           download: bool = True) -> Path:
    """A local copy of `fname` (checked against `sha256` if given), else a download."""
    dirs = _search_dirs(subdir) if subdir else [data_home() / "keras", data_home()]
    for folder in dirs:
        path = folder / fname
        if path.is_file():
            if sha256 and sha256_file(path) != sha256:
                raise ValueError(f"{what}: {path} has SHA-256 {sha256_file(path)}, expected "
                                 f"{sha256}; delete it to download a fresh copy")
            return path
    dest = dirs[0] / fname
    failure = "downloading was not attempted (download=False)"
    if download:
        try:
            return _download(origin, dest, sha256)
        except (urllib.error.URLError, OSError, ValueError) as e:
            failure = f"download from {origin} failed: {e}"
    looked = ", ".join(str(d) for d in dirs)
    raise DatasetUnavailableError(
        f"{what}: {fname} not found (looked in {looked}) and {failure}. Put {fname} from "
        f"{origin} into {dirs[0]} (or set SHENJING_DATA to a folder holding it).")


def _download(url: str, dest: Path, sha256: str | None) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=30) as response, atomic_write(dest) as f:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            f.write(chunk)
        if sha256 and digest.hexdigest() != sha256:  # raising here leaves no file behind
            raise ValueError(f"downloaded bytes have SHA-256 {digest.hexdigest()}, expected "
                             f"{sha256}")
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
