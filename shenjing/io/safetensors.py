"""The safetensors format, read and written with NumPy alone.

Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
N bytes of UTF-8 JSON padded with spaces to a multiple of 8, then the tensors' bytes back to
back, C-contiguous and little-endian. The JSON maps each tensor name to
``{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`` (offsets relative to the
end of the header) and may hold ``"__metadata__"``, a str -> str map.

Files are written the way the official library writes them (tensors ordered by dtype size,
largest first, then by name; compact JSON), so the two produce the same bytes. Everything read
is validated before a single tensor is built: a corrupt or hostile file raises
`SafetensorsError` (a ValueError) naming the file, the tensor and what was expected, never an
IndexError or a garbage array; declared sizes are compared with the bytes present first.

BF16 needs the optional ``ml_dtypes`` package (its ``bfloat16`` NumPy dtype).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from shenjing.io.atomic import atomic_write
from shenjing.io.errors import SafetensorsError
from shenjing.io.limits import check_shape

__all__ = [
    "SafetensorsError",
    "load",
    "load_file",
    "load_file_with_metadata",
    "load_with_metadata",
    "read_metadata",
    "save",
    "save_file",
]

MAX_HEADER_SIZE = 100_000_000  # the official reader's limit: refuse absurd headers early

# Code -> little-endian NumPy dtype, in the official library's dtype order (smallest first);
# the writer sorts tensors by this order, descending, then by name.
_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "BF16": None,  # filled in below when ml_dtypes is available
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
}
try:
    import ml_dtypes

    _DTYPES["BF16"] = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # BF16 stays unsupported; the error says how to get it
    del _DTYPES["BF16"]
_RANK = {code: rank for rank, code in enumerate(_DTYPES)}
_KIND_SIZE_TO_CODE = {
    (dtype.kind, dtype.itemsize): code for code, dtype in _DTYPES.items() if code != "BF16"
}

_METADATA_KEY = "__metadata__"
_SUPPORTED = ", ".join(sorted(_DTYPES)) + ("" if "BF16" in _DTYPES else " (BF16 needs ml_dtypes)")


# ----------------------------------------------------------------------------- writing


def _as_array(name: str, value: Any) -> np.ndarray:
    """Turn an ndarray, a shenjing Tensor (anything whose `.numpy()` gives an ndarray) or an
    array-like into an array."""
    if isinstance(value, np.ndarray):
        return value
    to_numpy = getattr(value, "numpy", None)
    if callable(to_numpy):
        try:
            array = to_numpy()
        except (TypeError, RuntimeError):  # e.g. a torch tensor that requires grad
            array = None
        if isinstance(array, np.ndarray):
            return array
    data = getattr(value, "data", None)
    if isinstance(data, np.ndarray):  # older duck-typed tensors: an ndarray `.data`
        return data
    if hasattr(value, "__array__"):
        return np.asarray(value)
    raise TypeError(
        f"safetensors: tensor {name!r} is a {type(value).__name__}; "
        "expected a NumPy array or a shenjing Tensor"
    )


def _dtype_code(name: str, dtype: np.dtype) -> str:
    """The safetensors code for a NumPy dtype, or a TypeError saying which dtypes work."""
    if "BF16" in _DTYPES and dtype == _DTYPES["BF16"]:
        return "BF16"
    code = _KIND_SIZE_TO_CODE.get((dtype.kind, dtype.itemsize))
    if code is None or dtype.fields is not None:
        raise TypeError(
            f"safetensors: tensor {name!r} has dtype {dtype}, which safetensors cannot store; "
            f"expected one of {_SUPPORTED}"
        )
    return code


def _little_endian_contiguous(array: np.ndarray) -> np.ndarray:
    """A C-contiguous little-endian copy of `array`, or `array` itself when it already is one."""
    order = array.dtype.byteorder
    if order == ">" or (order == "=" and sys.byteorder == "big"):
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array)


def _prepare(
    tensors: Mapping[str, Any], metadata: Mapping[str, str] | None
) -> tuple[bytes, list[np.ndarray]]:
    """Validate the inputs and build the padded header and the arrays in file order."""
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"safetensors: expected a dict of name -> array, got {type(tensors).__name__}"
        )
    entries = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"safetensors: tensor names must be str, got {name!r}")
        if name == _METADATA_KEY:
            raise ValueError(f"safetensors: {_METADATA_KEY!r} is reserved and cannot name a tensor")
        array = _as_array(name, value)
        code = _dtype_code(name, array.dtype)
        entries.append((-_RANK[code], name, code, array))
    entries.sort(key=lambda entry: (entry[0], entry[1]))

    header: dict[str, Any] = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise TypeError("safetensors: metadata must be a dict of str -> str")
        header[_METADATA_KEY] = dict(metadata)
    offset = 0
    for _, name, code, array in entries:
        header[name] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return raw, [array for *_, array in entries]


def _write(f: IO[bytes], header: bytes, arrays: list[np.ndarray]) -> None:
    f.write(struct.pack("<Q", len(header)))
    f.write(header)
    for array in arrays:  # one contiguous copy at a time, never the whole model at once
        f.write(_little_endian_contiguous(array).reshape(-1).view(np.uint8))


def save(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialize a dict of name -> array (or Tensor) to safetensors bytes."""
    header, arrays = _prepare(tensors, metadata)
    buffer = io.BytesIO()
    _write(buffer, header, arrays)
    return buffer.getvalue()


def save_file(
    tensors: Mapping[str, Any],
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write a dict of name -> array (or Tensor) to a safetensors file, atomically.

    Args:
        tensors: names to arrays; any dtype listed in the module docstring.
        path: the file to write; a previous file there survives intact if writing fails.
        metadata: optional free-form str -> str map stored as ``__metadata__``.
    """
    header, arrays = _prepare(tensors, metadata)
    with atomic_write(path, "wb") as f:
        _write(f, header, arrays)


# ----------------------------------------------------------------------------- reading


def _foreign_format(head: bytes, source: str, path: str | None) -> str | None:
    """A helpful message when the first bytes say the file is not safetensors at all.

    Only asked once the prefix is known not to be a plausible safetensors header: a genuine
    header of 640 bytes starts with 0x80 0x02, just like a protocol-2 pickle.
    """
    if path is not None:
        source = repr(path)
    zipped = head[:4] in (b"PK\x03\x04", b"PK\x05\x06")
    pickled = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    if zipped or pickled:
        src = path or "model.pt"
        dst = str(Path(src).with_suffix(".safetensors"))
        return (
            f"{source}: this is a pickle-based PyTorch file (made by torch.save); shenjing never "
            "unpickles, because loading a pickle can run arbitrary code. Convert it once, where "
            'torch is installed, with: python -c "import torch; from safetensors.torch import '
            f"save_file; sd = torch.load({src!r}, weights_only=True); "
            f'save_file({{k: v.contiguous() for k, v in sd.items()}}, {dst!r})" '
            "(this works for a flat state_dict of tensors)"
        )
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return f"{source}: this is an HDF5 file (e.g. a Keras .h5 model), not safetensors"
    if head[:6] == b"\x93NUMPY":
        return f"{source}: this is a NumPy .npy file, not safetensors; read it with numpy.load"
    return None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = {}
    for key, value in pairs:
        if key in result:
            raise SafetensorsError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_header(
    raw: bytes, data_size: int, source: str
) -> tuple[list[tuple[str, np.dtype, tuple[int, ...], int, int]], dict[str, str]]:
    """Check a header against the data section; return (name, dtype, shape, begin, end) rows."""
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError as err:
        raise SafetensorsError(f"{source}: header is not valid UTF-8 ({err})") from None
    except RecursionError:
        raise SafetensorsError(f"{source}: header JSON nests too deeply") from None
    except ValueError as err:  # json.JSONDecodeError and duplicate keys
        raise SafetensorsError(f"{source}: header is not valid JSON: {err}") from None
    if not isinstance(header, dict):  # a corrupt file is a bad value, not a caller's type error
        raise SafetensorsError(  # noqa: TRY004
            f"{source}: header must be a JSON object, got {type(header).__name__}"
        )

    metadata = header.pop(_METADATA_KEY, None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{source}: {_METADATA_KEY} must be an object of str -> str")

    rows = []
    for name, info in header.items():
        where = f"{source}: tensor {name!r}"
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            raise SafetensorsError(
                f"{where}: expected an object with dtype, shape and data_offsets, got {info!r:.200}"
            )
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str):
            raise SafetensorsError(f"{where}: dtype must be a string such as 'F32', got "
                                   f"{code!r:.80}")
        if code == "BF16" and "BF16" not in _DTYPES:
            raise SafetensorsError(
                f"{where}: dtype BF16 needs the ml_dtypes package (pip install ml_dtypes)"
            )
        if code not in _DTYPES:
            raise SafetensorsError(
                f"{where}: unknown dtype {code!r:.40}; expected one of {_SUPPORTED}"
            )
        if not isinstance(shape, list):
            raise SafetensorsError(f"{where}: shape must be a list of ints, got {shape!r:.80}")
        check_shape(shape, source, f"tensor {name!r}", SafetensorsError)
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise SafetensorsError(
                f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                f"got {offsets!r}"
            )
        dtype = _DTYPES[code]
        begin, end = offsets
        expected = math.prod(shape) * dtype.itemsize
        if end - begin != expected:
            raise SafetensorsError(
                f"{where}: shape {tuple(shape)} of {code} needs {expected} bytes, "
                f"but data_offsets {offsets} span {end - begin}"
            )
        if end > data_size:
            raise SafetensorsError(
                f"{where}: data_offsets {offsets} run past the end of the data section "
                f"({data_size} bytes); the file is truncated or the offsets are wrong"
            )
        rows.append((name, dtype, tuple(shape), begin, end))

    # The tensors must tile the data section exactly: no overlap, no gap, nothing left over.
    covered, previous = 0, None
    for name, _, _, begin, end in sorted(rows, key=lambda row: (row[3], row[4])):
        if begin < covered:
            raise SafetensorsError(
                f"{source}: tensor {name!r} at bytes [{begin}, {end}) overlaps tensor "
                f"{previous!r}, which ends at byte {covered}; expected it to start at {covered}"
            )
        if begin > covered:
            raise SafetensorsError(
                f"{source}: bytes [{covered}, {begin}) before tensor {name!r} belong to no tensor; "
                "expected tensors to be packed back to back"
            )
        covered, previous = end, name
    if covered != data_size:
        raise SafetensorsError(
            f"{source}: the data section is {data_size} bytes but the tensors cover {covered}; "
            "expected them to cover it exactly"
        )
    return rows, metadata


def _check_bool(array: np.ndarray, name: str, source: str) -> None:
    if array.dtype == np.bool_ and array.size and array.view(np.uint8).max() > 1:
        raise SafetensorsError(
            f"{source}: tensor {name!r} is BOOL but holds bytes other than 0 and 1"
        )


def _to_native(array: np.ndarray) -> np.ndarray:
    if sys.byteorder == "big" and array.dtype.byteorder == "<":
        return array.astype(array.dtype.newbyteorder("="))
    return array


def _header_length(head: bytes, total: int, source: str, path: str | None = None) -> int:
    """Validate the prefix (the first 9 bytes) against the size; return the header length.

    A prefix that is not a plausible safetensors header (length within the file, JSON object
    right after it) is first checked against other formats' magic numbers, so a PyTorch
    pickle or a Keras .h5 file gets a message saying what it is.
    """
    plausible = (
        len(head) >= 9 and head[8:9] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= total
    )
    foreign = None if plausible else _foreign_format(head, source, path)
    if foreign:
        raise SafetensorsError(foreign)
    if total < 8:
        raise SafetensorsError(
            f"{source}: {total} bytes is too short for safetensors "
            "(expected an 8-byte header length first)"
        )
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_HEADER_SIZE:
        raise SafetensorsError(
            f"{source}: header length {length} exceeds the {MAX_HEADER_SIZE}-byte limit; "
            "not a safetensors file or a corrupt one"
        )
    if 8 + length > total:
        raise SafetensorsError(
            f"{source}: header length {length} runs past the end of the file "
            f"({total} bytes, so at most {total - 8}); the file is truncated or not safetensors"
        )
    return length


def load_with_metadata(data: bytes | bytearray | memoryview) -> tuple[dict[str, np.ndarray], dict]:
    """Parse safetensors bytes into (tensors, metadata); arrays are copies, owned and writable."""
    source = "safetensors bytes"
    data = memoryview(data).cast("B")
    length = _header_length(bytes(data[:9]), len(data), source)
    start = 8 + length
    rows, metadata = _parse_header(bytes(data[8:start]), len(data) - start, source)
    tensors = {}
    for name, dtype, shape, begin, end in rows:
        array = np.frombuffer(data, np.uint8, end - begin, start + begin).view(dtype)
        array = _to_native(array.reshape(shape).copy())
        _check_bool(array, name, source)
        tensors[name] = array
    return tensors, metadata


def load(data: bytes | bytearray | memoryview) -> dict[str, np.ndarray]:
    """Parse safetensors bytes into a dict of name -> ndarray."""
    return load_with_metadata(data)[0]


def _open(path: str | os.PathLike) -> tuple[IO[bytes], str, str]:
    if hasattr(path, "read"):
        raise TypeError("safetensors: expected a file path; for bytes in memory use load(data)")
    path = os.fspath(path)
    source = f"safetensors file {path!r}"
    try:
        return open(path, "rb"), source, path
    except FileNotFoundError:
        raise FileNotFoundError(f"{source} does not exist") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{source} is a directory, expected a file") from None


def load_file_with_metadata(
    path: str | os.PathLike, *, mmap: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file into (tensors, metadata).

    Args:
        path: the file.
        mmap: if True, return read-only arrays that are views of the memory-mapped file, so a
            big file costs no copy until pages are touched; if False (default), read each tensor
            straight into its own freshly allocated, writable array.
    """
    f, source, path = _open(path)
    with f:
        total = os.fstat(f.fileno()).st_size
        length = _header_length(f.read(9), total, source, path)
        start = 8 + length
        f.seek(8)
        raw = f.read(length)
        rows, metadata = _parse_header(raw, total - start, source)
        tensors = {}
        mapped = np.memmap(f, np.uint8, "r") if mmap and total > start else None
        for name, dtype, shape, begin, end in rows:
            if mapped is not None:
                array = mapped[start + begin : start + end].view(dtype).reshape(shape)
                array = _to_native(np.asarray(array))
            else:
                array = np.empty(shape, dtype)
                f.seek(start + begin)
                if f.readinto(array.reshape(-1).view(np.uint8)) != end - begin:
                    raise SafetensorsError(f"{source}: tensor {name!r}: file changed while reading")
                array = _to_native(array)
            _check_bool(array, name, source)
            tensors[name] = array
    return tensors, metadata


def load_file(path: str | os.PathLike, *, mmap: bool = False) -> dict[str, np.ndarray]:
    """Read a safetensors file into a dict of name -> ndarray (see `load_file_with_metadata`)."""
    return load_file_with_metadata(path, mmap=mmap)[0]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Return a file's ``__metadata__`` (empty if none), reading only the header."""
    f, source, path = _open(path)
    with f:
        total = os.fstat(f.fileno()).st_size
        length = _header_length(f.read(9), total, source, path)
        f.seek(8)
        return _parse_header(f.read(length), total - 8 - length, source)[1]
