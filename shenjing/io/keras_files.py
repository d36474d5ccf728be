"""Hardened readers for Keras model files: the `.keras` zip and the `.h5` HDF5 file.

`shenjing.keras.saving` decides what a model file means; this module only gets its parts out
safely. Every size a file declares is checked before memory is allocated: a zip member's
uncompressed size and compression ratio before it is read (and reading stops at the declared
size), config.json against MAX_CONFIG_BYTES and MAX_JSON_DEPTH, HDF5 datasets' shapes and
dtypes before their data is read. An `.h5` file may not reach outside itself: external links,
soft links that do not resolve inside the file, datasets with external storage and virtual
datasets are refused. Every failure is a `KerasFileError` or `H5FileError` (ValueErrors) whose
message starts with the outer file's path.
"""

from __future__ import annotations

import faulthandler
import math
import os
import signal
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from shenjing.io import limits
from shenjing.io.errors import H5FileError, KerasFileError, SafetensorsError
from shenjing.io.safetensors import load as st_load

__all__ = ["H5Model", "KerasZip", "import_h5py", "open_h5", "read_keras_zip"]

_REQUIRED = ("config.json", "model.weights.safetensors")


# ----------------------------------------------------------------------------- .keras (zip)


class KerasZip:
    """The parts of a `.keras` archive: config (a dict), weights and optimizer arrays."""

    def __init__(self, path: str, config: dict, weights: dict, optimizer: dict | None) -> None:
        self.path = path
        self.config = config
        self.weights = weights
        self.optimizer = optimizer

    @property
    def weight_elements(self) -> int:
        return sum(int(a.size) for a in self.weights.values())


def _member(zf: zipfile.ZipFile, path: str, name: str, limit: int) -> bytes:
    """One member's bytes, its declared sizes checked first and reading bounded by them."""
    infos = [info for info in zf.infolist() if info.filename == name]
    if len(infos) != 1:
        raise KerasFileError(f"{path!r}: the archive holds {len(infos)} members named {name!r}, "
                             "expected exactly one", path)
    info = infos[0]
    if info.file_size > limit:
        raise KerasFileError(f"{path!r}: member {name!r} declares {info.file_size} bytes, more "
                             f"than the limit of {limit}; refusing to decompress it", path)
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.RATIO_FLOOR_BYTES and ratio > limits.MAX_ZIP_RATIO:
        raise KerasFileError(f"{path!r}: member {name!r} would expand {ratio:.0f} times "
                             f"({info.compress_size} -> {info.file_size} bytes), more than the "
                             f"limit of {limits.MAX_ZIP_RATIO}: a zip bomb?", path)
    if info.flag_bits & 0x1:
        raise KerasFileError(f"{path!r}: member {name!r} is encrypted", path)
    with zf.open(info) as stream:
        data = limits.read_bounded(stream, info.file_size, repr(path), f"member {name!r}",
                                   KerasFileError)
    if len(data) != info.file_size:
        raise KerasFileError(f"{path!r}: member {name!r} holds {len(data)} bytes but declares "
                             f"{info.file_size}", path)
    return data


def _safetensors_member(zf: zipfile.ZipFile, path: str, name: str) -> dict[str, np.ndarray]:
    raw = _member(zf, path, name, limits.MAX_FILE_BYTES)
    try:
        return st_load(raw)
    except SafetensorsError as err:
        detail = str(err).removeprefix("safetensors bytes: ")
        raise KerasFileError(f"{path!r}: member {name!r} is not valid safetensors: {detail}",
                             path) from None


def read_keras_zip(path: str) -> KerasZip:
    """Read a `.keras` archive's config.json, model weights and optimizer state, checked.

    Raises:
        KerasFileError: a damaged zip, missing/duplicated/oversized/encrypted members, a zip
            bomb, bad JSON or safetensors; the message names `path`.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for required in _REQUIRED:
                if required not in names:
                    raise KerasFileError(f"load_model: {path!r} is a zip archive but not a "
                                         f".keras model: it has no {required}", path)
            raw = _member(zf, path, "config.json", limits.MAX_CONFIG_BYTES)
            config = limits.loads_json(raw, repr(path), "its config.json", KerasFileError)
            weights = _safetensors_member(zf, path, "model.weights.safetensors")
            optimizer = (_safetensors_member(zf, path, "optimizer.safetensors")
                         if "optimizer.safetensors" in names else None)
    except KerasFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError,
            NotImplementedError, RuntimeError, ValueError) as e:
        # zipfile reports damage as all of these (bad CRC, unknown compression, encryption)
        raise KerasFileError(f"load_model: {path!r} is not a valid .keras file (a damaged or "
                             f"truncated zip archive: {type(e).__name__}: {e})", path) from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise KerasFileError(f"load_model: the config.json in {path!r} does not describe a "
                             "model (expected an object with a 'class_name')", path)
    return KerasZip(path, config, weights, optimizer)


# ----------------------------------------------------------------------------- .h5 (HDF5)


def import_h5py() -> Any:
    try:
        import h5py
    except ImportError as e:
        raise ImportError("saving or loading .h5 files needs h5py, an optional dependency: "
                          "pip install h5py (or use the .keras format, which needs nothing "
                          "extra)") from e
    return h5py


def _h5_errors(h5py: Any) -> tuple[type[BaseException], ...]:
    """What h5py raises for damaged files (HDF5 library errors surface as these)."""
    return (OSError, KeyError, RuntimeError, TypeError, ValueError, AttributeError,
            IndexError, OverflowError, UnicodeDecodeError)


PROBE_TIMEOUT_S = 30.0  # a metadata walk takes milliseconds; a stuck child is abandoned


def _walk_structure(h5py: Any, path: str) -> None:
    """Touch every object header, attribute and link of a file, reading no dataset data."""
    with h5py.File(path, "r") as f:
        pending = [f]
        while pending:
            group = pending.pop()
            for name in list(group.attrs):
                group.attrs[name]
            for name in group:
                link = group.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    continue
                obj = group[name]
                if isinstance(obj, h5py.Group):
                    pending.append(obj)
                else:
                    obj.shape, obj.dtype, obj.external, obj.is_virtual  # noqa: B018
                    for attr in list(obj.attrs):
                        obj.attrs[attr]


def _probe(h5py: Any, path: str) -> None:
    """Walk the file's structure in a forked child first: libhdf5 can crash (segfault) on a
    corrupt or crafted file, and a crash must become an error, not kill this process.

    Where fork is unavailable the probe is skipped; a child that neither finishes nor crashes
    within PROBE_TIMEOUT_S (e.g. a lock held by another thread at fork time) is killed and the
    file is read in-process as before.
    """
    if not hasattr(os, "fork"):
        return
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            faulthandler.disable()  # a crash here is expected and reported by the parent
            _walk_structure(h5py, path)
            code = 0
        except BaseException:
            code = 2  # a Python-level error: the parent reports it properly
        finally:
            os._exit(code)
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.001)
    if os.WIFSIGNALED(status):
        raise H5FileError(f"load_model: {path!r} is a corrupt or hostile HDF5 file: the HDF5 "
                          f"library crashed (signal {os.WTERMSIG(status)}) while reading its "
                          "structure", path)


class H5Model:
    """An open `.h5` file, read step by step so shapes are checked before data is read.

    Use as a context manager; `attr_json` reads a JSON attribute, `datasets` lists a group's
    datasets (path -> dataset) after checking every link and storage, `read` reads them
    after comparing their shapes with the caller's expectations.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.h5py = import_h5py()
        _probe(self.h5py, path)
        try:
            self.file = self.h5py.File(path, "r")
        except _h5_errors(self.h5py) as e:
            raise H5FileError(f"load_model: {path!r} is not a readable HDF5 file (damaged or "
                              f"truncated?): {e}", path) from None

    def __enter__(self) -> H5Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.file.close()
        except _h5_errors(self.h5py):
            pass

    def fail(self, message: str) -> H5FileError:
        return H5FileError(f"{self.path!r}: {message}", self.path)

    def has_attr(self, name: str) -> bool:
        try:
            return name in self.file.attrs
        except _h5_errors(self.h5py) as e:
            raise self.fail(f"cannot read its attributes: {e}") from None

    def attr_json(self, name: str) -> Any:
        """A root attribute holding JSON (str or bytes), size- and depth-checked."""
        try:
            raw = self.file.attrs[name]
        except _h5_errors(self.h5py) as e:
            raise self.fail(f"attribute {name!r} cannot be read: {e}") from None
        if isinstance(raw, np.ndarray) and raw.shape == () and raw.dtype.kind in "OSU":
            raw = raw[()]
        if isinstance(raw, np.bytes_):
            raw = bytes(raw)
        if not isinstance(raw, (str, bytes)):
            raise self.fail(f"attribute {name!r} must be a JSON string, got "
                            f"{type(raw).__name__}")
        return limits.loads_json(raw, repr(self.path), f"attribute {name!r}", H5FileError)

    def has_group(self, name: str) -> bool:
        try:
            return self.file.get(name, getlink=True) is not None
        except _h5_errors(self.h5py) as e:
            raise self.fail(f"cannot look up {name!r}: {e}") from None

    def _check_link(self, where: str, link: Any) -> None:
        h5py = self.h5py
        if isinstance(link, h5py.ExternalLink):
            raise self.fail(f"{where!r} is an external link to {link.filename!r}; links to "
                            "other files are refused (they would read data from outside it)")
        if isinstance(link, h5py.SoftLink):
            target = link.path
            node = self.file
            for part in [p for p in target.split("/") if p]:
                inner = node.get(part, getlink=True) if hasattr(node, "get") else None
                if inner is None or not isinstance(inner, h5py.HardLink):
                    raise self.fail(f"{where!r} is a soft link to {target!r}, which does not "
                                    "resolve to an object inside the file through plain "
                                    "links; refused")
                node = node[part]
        elif not isinstance(link, h5py.HardLink):
            raise self.fail(f"{where!r} is a link of unknown kind {type(link).__name__}")

    def datasets(self, group_name: str | None) -> dict[str, Any]:
        """Every dataset under `group_name` (root when None), links and storage checked."""
        h5py = self.h5py
        try:
            if group_name is not None:
                self._check_link(group_name, self.file.get(group_name, getlink=True))
                root = self.file[group_name]
            else:
                root = self.file
            if not isinstance(root, h5py.Group):
                raise self.fail(f"{group_name!r} is not a group")
            found: dict[str, Any] = {}
            self._collect(root, "", found, set(), 0)
            return found
        except H5FileError:
            raise
        except _h5_errors(h5py) as e:
            raise self.fail(f"cannot read group {group_name!r}: {e}") from None

    def _collect(self, group: Any, prefix: str, found: dict, seen: set, depth: int) -> None:
        h5py = self.h5py
        if depth > limits.MAX_JSON_DEPTH:
            raise self.fail(f"groups nest deeper than {limits.MAX_JSON_DEPTH} levels")
        key = group.id.__hash__()
        if key in seen:
            raise self.fail(f"group {group.name!r} contains itself (a link cycle)")
        seen = seen | {key}
        for name in group:
            where = f"{group.name.rstrip('/')}/{name}"
            self._check_link(where, group.get(name, getlink=True))
            obj = group[name]
            path = f"{prefix}{name}"
            if isinstance(obj, h5py.Group):
                self._collect(obj, path + "/", found, seen, depth + 1)
            elif isinstance(obj, h5py.Dataset):
                self._check_dataset(where, obj)
                found[path] = obj
            else:
                raise self.fail(f"{where!r} is neither a group nor a dataset")

    def _check_dataset(self, where: str, dataset: Any) -> None:
        if dataset.external:
            files = [entry[0] for entry in dataset.external]
            raise self.fail(f"dataset {where!r} keeps its data in external files {files!r:.200}; "
                            "refused (it would read data from outside this file)")
        if dataset.is_virtual:
            raise self.fail(f"dataset {where!r} is a virtual dataset mapping other data; "
                            "refused")
        if dataset.dtype.kind not in "biuf" or dataset.dtype.fields is not None:
            raise self.fail(f"dataset {where!r} has dtype {dataset.dtype}, expected numbers")
        if dataset.shape is None:
            raise self.fail(f"dataset {where!r} has no shape (an empty dataspace)")
        shape = limits.check_shape(list(dataset.shape), repr(self.path), f"dataset {where!r}",
                                   H5FileError)
        declared = math.prod(shape) * dataset.dtype.itemsize
        stored = dataset.id.get_storage_size()
        if declared > limits.RATIO_FLOOR_BYTES and declared > stored * limits.MAX_ZIP_RATIO:
            raise self.fail(f"dataset {where!r} declares {declared} bytes but stores only "
                            f"{stored}; refusing to allocate it (a decompression bomb or a "
                            "dataset without data)")

    def read(
        self, datasets: Mapping[str, Any], expected: Mapping[str, tuple] | None = None,
        on_mismatch: Callable[[str, tuple, tuple], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Read datasets; with `expected` (path -> shape) every shape is compared first.

        A dataset whose shape differs is passed to `on_mismatch(path, file_shape, shape)`
        (which raises, or returns to skip it); none is read before all are compared.
        """
        if expected is not None:
            skip = set()
            for path, dataset in datasets.items():
                want = expected.get(path)
                if want is not None and tuple(dataset.shape) != tuple(want):
                    if on_mismatch is None:
                        raise self.fail(f"weight {path!r} has shape {tuple(dataset.shape)} in "
                                        f"the file but {tuple(want)} in the model")
                    on_mismatch(path, tuple(dataset.shape), tuple(want))
                    skip.add(path)
            datasets = {k: v for k, v in datasets.items() if k not in skip}
        out = {}
        for path, dataset in datasets.items():
            try:
                out[path] = np.asarray(dataset[()])
            except _h5_errors(self.h5py) as e:
                raise self.fail(f"dataset {path!r} cannot be read (damaged?): {e}") from None
        return out


def dataset_elements(datasets: Mapping[str, Any]) -> int:
    """Total elements the datasets declare (their shapes are already checked)."""
    return sum(math.prod(d.shape) for d in datasets.values())


def open_h5(path: str) -> H5Model:
    """Open an `.h5` file for checked reading (see `H5Model`)."""
    return H5Model(path)
