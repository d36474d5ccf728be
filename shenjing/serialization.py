"""`shenjing.save` / `shenjing.load`: state dicts to safetensors files, never pickle.

``sj.save(model.state_dict(), "m.safetensors")`` writes an ordinary safetensors file that any
safetensors reader can open: each array is one tensor, named by its key. Nested objects (an
optimizer's state_dict with ``state`` and ``param_groups``) are stored the same way, arrays
named by their path ("state.0.exp_avg"), while the rest of the structure goes as JSON into the
header's ``__metadata__`` under "shenjing.structure", so `load` rebuilds the object exactly.

What round-trips exactly: dicts (any key of the types below, insertion order kept), lists,
tuples (they come back as tuples), str, int (any size), float (including nan and inf), bool,
None, NumPy arrays and NumPy scalars (dtype kept). Tensors (anything whose `.numpy()` gives an
ndarray) come back as NumPy arrays, which `load_state_dict` accepts. dict subclasses such as
OrderedDict come back as plain dicts (equal, same order). Anything else raises TypeError at
save time.

Loading never trusts the file: a malformed file raises `SafetensorsError`, a well-formed one
whose shenjing structure is tampered with (unknown tags, wrong JSON types, references to
missing tensors, nesting deeper than MAX_DEPTH) raises its subclass `CheckpointError`; both
are ValueErrors whose message names the file.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from shenjing.io import safetensors
from shenjing.io.errors import CheckpointError, SafetensorsError
from shenjing.io.limits import loads_json

__all__ = ["CheckpointError", "SafetensorsError", "load", "save"]

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
MAX_DEPTH = 200  # JSON levels of the structure; each Python container adds one to three


def _tensor_array(obj: Any) -> np.ndarray | None:
    """The ndarray of a shenjing Tensor (or of anything whose `.numpy()` returns one)."""
    if isinstance(obj, np.ndarray):
        return obj
    to_numpy = getattr(obj, "numpy", None)
    if callable(to_numpy) and hasattr(obj, "requires_grad"):
        array = to_numpy()
        if isinstance(array, np.ndarray):
            return array
    data = getattr(obj, "data", None)
    return data if isinstance(data, np.ndarray) else None  # older duck-typed tensors


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
        array = None if isinstance(obj, np.generic) else _tensor_array(obj)
        if array is not None:
            name = self._name(path)
            self.tensors[name] = array
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
            return _decode_tensor(tag, value, tensors, source)
        if tag == _TUPLE:
            _expect(isinstance(value, list), source,
                    f"{_TUPLE} holds {value!r:.60}, expected a list")
            return tuple(_decode(item, tensors, source) for item in value)
        if tag == _DICT:
            return _decode_dict(value, tensors, source)
        if tag == _FLOAT:
            _expect(value in ("nan", "inf", "-inf"), source,
                    f"{_FLOAT} holds {value!r:.60}, expected 'nan', 'inf' or '-inf'")
            return float(value)
    return {key: _decode(value, tensors, source) for key, value in node.items()}


def _expect(condition: bool, source: str, message: str) -> None:
    if not condition:
        raise CheckpointError(f"{source}: malformed {STRUCTURE_KEY} metadata: {message}", source)


def _decode_tensor(tag: str, value: Any, tensors: dict[str, np.ndarray], source: str) -> Any:
    _expect(isinstance(value, str) and value in tensors, source,
            f"the structure refers to tensor {value!r:.80}, which the file lacks")
    array = tensors[value]
    if tag == _TENSOR:
        return array
    _expect(array.ndim == 0, source, f"scalar {value!r} has shape {array.shape}, expected ()")
    return array[()]


def _decode_dict(value: Any, tensors: dict[str, np.ndarray], source: str) -> dict:
    _expect(isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value),
            source, f"{_DICT} must hold a list of [key, value] pairs, got {value!r:.80}")
    result = {}
    for raw_key, item in value:
        key = _decode(raw_key, tensors, source)
        _expect(isinstance(key, _KEY_TYPES) and _hashable(key), source,
                f"dict key {key!r:.80} is not a str, int, float, bool, None or tuple of those")
        result[key] = _decode(item, tensors, source)
    return result


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def save(obj: Any, path: str | os.PathLike) -> None:
    """Save a state dict (flat or nested) to a safetensors file, atomically.

    Args:
        obj: e.g. ``model.state_dict()`` or ``optimizer.state_dict()``; see the module
            docstring for the types that round-trip.
        path: the file to write, conventionally ``*.safetensors``; a file-like object opened
            for binary writing also works.
    """
    if callable(getattr(obj, "state_dict", None)):  # a whole Module or optimizer
        raise TypeError(
            f"shenjing.save: cannot save a whole {type(obj).__name__} (shenjing never pickles "
            f"objects); save its weights with `shenjing.save(model.state_dict(), path)` and "
            f"restore them into a new instance with `model.load_state_dict(shenjing.load(path))`"
        )
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


def load(path: str | os.PathLike, map_location=None, *, mmap: bool = False,
         weights_only: bool = True) -> Any:
    """Load what `save` wrote; a safetensors file from elsewhere loads as a dict of arrays.

    Pickle-based files (``torch.save``'s .pt/.pth) are refused with a message saying how to
    convert them: unpickling can run arbitrary code.

    Args:
        path: the file, or a file-like object opened for binary reading.
        mmap: memory-map the file and return read-only arrays viewing it (for big files).
        map_location, weights_only: accepted for torch.load compatibility; everything loads
            on the CPU and only weights (never pickled objects) are ever loaded.
    """
    if hasattr(path, "read"):
        source = "shenjing.load(<file object>)"
        tensors, metadata = safetensors.load_with_metadata(path.read())
    else:
        source = f"shenjing.load({os.fspath(path)!r})"
        tensors, metadata = safetensors.load_file_with_metadata(path, mmap=mmap)

    if STRUCTURE_KEY not in metadata:
        return tensors
    header = loads_json(metadata[STRUCTURE_KEY], source, f"{STRUCTURE_KEY} metadata",
                        CheckpointError, max_bytes=len(metadata[STRUCTURE_KEY]),
                        max_depth=MAX_DEPTH)
    _expect(isinstance(header, dict) and "root" in header, source, "it lacks its 'root' entry")
    if header.get("version") != _VERSION:
        raise CheckpointError(
            f"{source}: structure version {header.get('version')!r:.40} is not supported "
            f"(expected {_VERSION}); was it written by a newer shenjing?", source
        )
    return _decode(header["root"], tensors, source)
