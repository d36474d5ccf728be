"""`shenjing.save` / `shenjing.load`: state dicts to safetensors files, never pickle.

``sj.save(model.state_dict(), "m.safetensors")`` writes an ordinary safetensors file that any
safetensors reader can open: each array is one tensor, named by its key. Nested objects (an
optimizer's state_dict with ``state`` and ``param_groups``) are stored the same way, arrays
named by their path ("state.0.exp_avg"), while the rest of the structure goes as JSON into the
header's ``__metadata__`` under "shenjing.structure", so `load` rebuilds the object exactly.

What round-trips exactly: dicts (any key of the types below, insertion order kept), lists,
tuples (they come back as tuples), str, int (any size), float (including nan and inf), bool,
None, NumPy arrays and NumPy scalars (dtype kept). Tensors (anything with an ndarray `.data`)
come back as NumPy arrays, which `load_state_dict` accepts. dict subclasses such as OrderedDict
come back as plain dicts (equal, same order). Anything else raises TypeError at save time.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from shenjing.io import safetensors

__all__ = ["load", "save"]

STRUCTURE_KEY = "shenjing.structure"
_VERSION = 1
_TENSOR, _SCALAR, _TUPLE, _DICT, _FLOAT = (
    "__tensor__",
    "__scalar__",
    "__tuple__",
    "__dict__",
    "__float__",
)
_TAGS = {_TENSOR, _SCALAR, _TUPLE, _DICT, _FLOAT}
_KEY_TYPES = (str, int, float, bool, type(None), tuple)


class _Encoder:
    """Turns an object into JSON-able structure plus a dict of tensors named by their path."""

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}

    def _name(self, path: tuple) -> str:
        base = ".".join(str(part) for part in path) or "tensor"
        name, n = base, 0
        while name in self.tensors or name == "__metadata__":
            n += 1
            name = f"{base}#{n}"
        return name

    def encode(self, obj: Any, path: tuple) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.ndarray) or isinstance(getattr(obj, "data", None), np.ndarray):
            name = self._name(path)
            self.tensors[name] = obj if isinstance(obj, np.ndarray) else obj.data
            return {_TENSOR: name}
        if isinstance(obj, np.generic):  # before int/float: np.float64 is a float subclass
            name = self._name(path)
            self.tensors[name] = np.asarray(obj)
            return {_SCALAR: name}
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {_FLOAT: repr(float(obj))}
        if isinstance(obj, list):
            return [self.encode(item, (*path, i)) for i, item in enumerate(obj)]
        if isinstance(obj, tuple):
            return {_TUPLE: [self.encode(item, (*path, i)) for i, item in enumerate(obj)]}
        if isinstance(obj, dict):
            return self._encode_dict(obj, path)
        where = ".".join(str(part) for part in path) or "<root>"
        raise TypeError(
            f"shenjing.save: cannot store a {type(obj).__name__} at {where!r}; expected arrays, "
            "Tensors, dicts, lists, tuples, str, int, float, bool or None (shenjing never pickles)"
        )

    def _encode_dict(self, obj: dict, path: tuple) -> dict:
        for key in obj:
            if not isinstance(key, _KEY_TYPES) or isinstance(key, np.generic):
                where = ".".join(str(part) for part in path) or "<root>"
                raise TypeError(
                    f"shenjing.save: dict key {key!r} at {where!r} is a {type(key).__name__}; "
                    "expected str, int, float, bool, None or a tuple of those"
                )
        plain = all(isinstance(key, str) for key in obj) and not (
            len(obj) == 1 and _TAGS & obj.keys()
        )
        if plain:
            return {key: self.encode(value, (*path, key)) for key, value in obj.items()}
        return {
            _DICT: [
                [self.encode(key, (*path, "key")), self.encode(value, (*path, key))]
                for key, value in obj.items()
            ]
        }


def _decode(node: Any, tensors: dict[str, np.ndarray], source: str) -> Any:
    """Inverse of `_Encoder.encode`; every tag is checked so a tampered header fails cleanly."""
    if isinstance(node, list):
        return [_decode(item, tensors, source) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        [(tag, value)] = node.items()
        if tag in (_TENSOR, _SCALAR):
            if not isinstance(value, str) or value not in tensors:
                raise ValueError(
                    f"{source}: the structure refers to tensor {value!r}, which the file lacks"
                )
            array = tensors[value]
            if tag == _TENSOR:
                return array
            if array.ndim != 0:
                raise ValueError(f"{source}: scalar {value!r} has shape {array.shape}, expected ()")
            return array[()]
        if tag == _TUPLE:
            return tuple(_decode(item, tensors, source) for item in value)
        if tag == _DICT:
            return {
                _decode(key, tensors, source): _decode(item, tensors, source) for key, item in value
            }
        if tag == _FLOAT:
            return float(value)
    return {key: _decode(value, tensors, source) for key, value in node.items()}


def save(obj: Any, path: str | os.PathLike) -> None:
    """Save a state dict (flat or nested) to a safetensors file, atomically.

    Args:
        obj: e.g. ``model.state_dict()`` or ``optimizer.state_dict()``; see the module
            docstring for the types that round-trip.
        path: the file to write, conventionally ``*.safetensors``; a file-like object opened
            for binary writing also works.
    """
    encoder = _Encoder()
    structure = encoder.encode(obj, ())
    header = json.dumps(
        {"version": _VERSION, "root": structure},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    metadata = {STRUCTURE_KEY: header}
    if hasattr(path, "write"):
        path.write(safetensors.save(encoder.tensors, metadata))
    else:
        safetensors.save_file(encoder.tensors, path, metadata)


def load(path: str | os.PathLike, *, mmap: bool = False) -> Any:
    """Load what `save` wrote; a safetensors file from elsewhere loads as a dict of arrays.

    Pickle-based files (``torch.save``'s .pt/.pth) are refused with a message saying how to
    convert them: unpickling can run arbitrary code.

    Args:
        path: the file, or a file-like object opened for binary reading.
        mmap: memory-map the file and return read-only arrays viewing it (for big files).
    """
    if hasattr(path, "read"):
        source = "shenjing.load(<file object>)"
        tensors, metadata = safetensors.load_with_metadata(path.read())
    else:
        source = f"shenjing.load({os.fspath(path)!r})"
        tensors, metadata = safetensors.load_file_with_metadata(path, mmap=mmap)

    if STRUCTURE_KEY not in metadata:
        return tensors
    try:
        header = json.loads(metadata[STRUCTURE_KEY])
    except ValueError as err:
        raise ValueError(f"{source}: {STRUCTURE_KEY} metadata is not valid JSON: {err}") from None
    if not isinstance(header, dict) or "root" not in header:
        raise ValueError(f"{source}: {STRUCTURE_KEY} metadata lacks its 'root' entry")
    if header.get("version") != _VERSION:
        raise ValueError(
            f"{source}: structure version {header.get('version')!r} is not supported "
            f"(expected {_VERSION}); was it written by a newer shenjing?"
        )
    try:
        return _decode(header["root"], tensors, source)
    except (TypeError, ValueError) as err:
        if str(err).startswith(source):
            raise
        raise ValueError(f"{source}: malformed {STRUCTURE_KEY} metadata ({err})") from None
