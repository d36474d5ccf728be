"""Size limits every reader checks before it allocates, and the guards that enforce them.

A file of a few kilobytes must never make the process allocate gigabytes, recurse until the
interpreter gives up, or build a 70-dimensional array. Readers therefore compare every size a
file *declares* (tensor shapes, zip members' uncompressed sizes, gzip lengths, layer widths)
with these limits and with the bytes actually present, and raise their format's error
(`shenjing.io.errors`) naming the file before a single large buffer exists.

The limits are module attributes so an application that really needs more can raise them
(``shenjing.io.limits.MAX_FILE_BYTES = 64 << 30``); each can also be set at start-up with the
environment variable of the same name prefixed by ``SHENJING_`` (e.g. SHENJING_MAX_FILE_BYTES).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import IO, Any

from shenjing.io.errors import FileFormatError, ModelConfigError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DIM",
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NDIM",
    "MAX_TENSOR_ELEMENTS",
    "MAX_ZIP_RATIO",
    "check_model_config",
    "check_config_against_weights",
    "check_shape",
    "loads_json",
    "read_bounded",
]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(f"SHENJING_{name}")
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


MAX_NDIM = _env_int("MAX_NDIM", 32)  # NumPy's own limit is 64; no real weight has > 8
MAX_TENSOR_ELEMENTS = _env_int("MAX_TENSOR_ELEMENTS", 1 << 34)  # 64 GiB of float32
MAX_FILE_BYTES = _env_int("MAX_FILE_BYTES", 64 << 30)  # one member / one decompressed stream
MAX_CONFIG_BYTES = _env_int("MAX_CONFIG_BYTES", 64 << 20)  # config.json, JSON headers
MAX_JSON_DEPTH = _env_int("MAX_JSON_DEPTH", 64)  # Keras configs nest < 15 deep
MAX_ZIP_RATIO = _env_int("MAX_ZIP_RATIO", 200)  # deflate of real weights: < 1.2, of JSON: < 20
MAX_CONFIG_DIM = _env_int("MAX_CONFIG_DIM", 1 << 24)  # units, filters, shape entries, ...
MAX_INPUT_ELEMENTS = _env_int("MAX_INPUT_ELEMENTS", 1 << 28)  # one sample of a model's input
RATIO_FLOOR_BYTES = 1 << 20  # small members (JSON) may compress well; the ratio cap starts here

# Layer-config keys whose values are sizes (ints, or lists/tuples of ints).
_SIZE_KEYS = frozenset({
    "units", "filters", "input_dim", "output_dim", "kernel_size", "pool_size", "strides",
    "dilation_rate", "target_shape", "batch_shape", "input_shape", "batch_input_shape", "dims",
    "shape", "size", "n", "num_heads", "key_dim", "value_dim", "depth_multiplier", "cropping",
    "max_tokens", "output_sequence_length", "num_tokens", "groups",
})
_WIDTH_KEYS = ("units", "filters", "output_dim")
_SHAPE_KEYS = frozenset({"batch_shape", "input_shape", "batch_input_shape"})


def _fail(error: type[FileFormatError], source: str, message: str) -> FileFormatError:
    return error(f"{source}: {message}", source)


def check_shape(
    shape: Any, source: str, what: str, error: type[FileFormatError] = FileFormatError
) -> tuple[int, ...]:
    """A declared tensor shape as a tuple, or `error`: ints >= 0, at most MAX_NDIM of them,
    at most MAX_TENSOR_ELEMENTS elements, zero-length dimensions left out of that count (the
    product is computed on Python ints, so it cannot overflow)."""
    if not isinstance(shape, (list, tuple)):
        raise _fail(error, source, f"{what}: shape must be a list of ints, got {shape!r:.80}")
    if len(shape) > MAX_NDIM:
        raise _fail(error, source, f"{what}: shape has {len(shape)} dimensions, more than the "
                    f"limit of {MAX_NDIM}")
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise _fail(error, source, f"{what}: shape must be a list of non-negative ints, got "
                    f"{list(shape)!r:.120}")
    elements = math.prod(d for d in shape if d)  # NumPy refuses (0, 2**40, 2**40) as well
    if elements > MAX_TENSOR_ELEMENTS:
        raise _fail(error, source, f"{what}: shape {tuple(shape)} has {elements} elements, more "
                    f"than the limit of {MAX_TENSOR_ELEMENTS} "
                    "(shenjing.io.limits.MAX_TENSOR_ELEMENTS)")
    return tuple(shape)


def read_bounded(
    stream: IO[bytes], limit: int, source: str, what: str,
    error: type[FileFormatError] = FileFormatError,
) -> bytes:
    """Read `stream` to its end, refusing to hold more than `limit` bytes."""
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise _fail(error, source, f"{what} holds more than the {limit} bytes it declared "
                        "or that are allowed; refusing to read further")
        chunks.append(chunk)


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """Whether nested lists/dicts go deeper than `limit` (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads_json(
    raw: bytes | str, source: str, what: str, error: type[FileFormatError] = FileFormatError,
    max_bytes: int | None = None, max_depth: int | None = None,
) -> Any:
    """Parse JSON from a file, with its size and nesting depth capped.

    Raises `error` (message naming `source` and `what`) for too many bytes, bad UTF-8, bad
    JSON or nesting deeper than MAX_JSON_DEPTH; never RecursionError or UnicodeDecodeError.
    """
    limit = MAX_CONFIG_BYTES if max_bytes is None else max_bytes
    depth = MAX_JSON_DEPTH if max_depth is None else max_depth
    if len(raw) > limit:
        raise _fail(error, source, f"{what} is {len(raw)} bytes, more than the limit of "
                    f"{limit} (shenjing.io.limits.MAX_CONFIG_BYTES)")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        value = json.loads(text)
    except UnicodeDecodeError as err:
        raise _fail(error, source, f"{what} is not valid UTF-8 ({err})") from None
    except RecursionError:
        raise _fail(error, source, f"{what} nests deeper than {depth} levels") from None
    except ValueError as err:
        raise _fail(error, source, f"{what} is not valid JSON: {err}") from None
    if _depth_exceeds(value, depth):
        raise _fail(error, source, f"{what} nests deeper than {depth} levels")
    return value


def _size_values(key: str, value: Any, source: str) -> list[int]:
    """The ints in a size entry (an int, an integral float, or a list of them; None = any)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    sizes = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int):
            if isinstance(item, (dict, list, str, float)):
                continue  # not a size (Keras 3's {"class_name": "__tuple__"}, a factor, ...)
            raise _fail(ModelConfigError, source, f"{key!r} must be an int or a list of ints, "
                        f"got {value!r:.80}")
        if item > MAX_CONFIG_DIM or item < -1:
            raise _fail(ModelConfigError, source, f"{key!r} = {value!r:.80} is out of range: "
                        f"expected sizes from 0 to {MAX_CONFIG_DIM} "
                        "(shenjing.io.limits.MAX_CONFIG_DIM); refusing to allocate it")
        sizes.append(max(item, 0))
    if key in _SHAPE_KEYS and len(items) > MAX_NDIM + 1:
        raise _fail(ModelConfigError, source, f"{key!r} has {len(items)} dimensions, more than "
                    f"the limit of {MAX_NDIM}")
    if key in _SHAPE_KEYS and math.prod(sizes) > MAX_INPUT_ELEMENTS:
        raise _fail(ModelConfigError, source, f"{key!r} = {value!r:.80} asks for "
                    f"{math.prod(sizes)} elements per sample, more than the limit of "
                    f"{MAX_INPUT_ELEMENTS}")
    return sizes


def _layer_lower_bound(config: dict, source: str) -> int:
    """Weight elements a layer config needs at the very least (its input width taken as 1)."""
    sizes = {key: _size_values(key, config[key], source) for key in config if key in _SIZE_KEYS}
    if "input_dim" in sizes and "output_dim" in sizes:  # Embedding: exact
        return math.prod(sizes["input_dim"]) * math.prod(sizes["output_dim"])
    width = next((sizes[key] for key in _WIDTH_KEYS if sizes.get(key)), None)
    if width is None:
        return 0
    if "depth_multiplier" in sizes:  # separable convolutions: the kernel is not per filter
        return math.prod(width)
    return math.prod(width) * math.prod(sizes.get("kernel_size", [1]))


def check_model_config(config: Any, source: str) -> int:
    """Check a Keras model config before anything is built from it.

    Every size entry (units, filters, kernel_size, input shapes, ...) must be an int from 0 to
    MAX_CONFIG_DIM, input shapes at most MAX_INPUT_ELEMENTS per sample, nesting at most
    MAX_JSON_DEPTH. Returns a lower bound of the weight elements the model will allocate, which
    a loader compares with the weights its file really holds.

    Raises:
        ModelConfigError: naming `source` and the offending entry.
    """
    if _depth_exceeds(config, MAX_JSON_DEPTH):
        raise _fail(ModelConfigError, source, f"the model config nests deeper than "
                    f"{MAX_JSON_DEPTH} levels")
    total, stack = 0, [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            total += _layer_lower_bound(node, source)
            stack.extend(node.values())
    return total


def check_config_against_weights(config_elements: int, file_elements: int, source: str) -> None:
    """Refuse a config whose layers need more weights than the file holds.

    The loaded model must hold exactly the file's weights, so a config asking for more
    (e.g. `Dense(units=2e9)` beside a few kB of weights) is hostile or corrupt; refusing here
    happens before the model, and its huge arrays, are built.
    """
    if config_elements > file_elements:
        raise _fail(ModelConfigError, source, f"the model config asks for at least "
                    f"{config_elements} weight elements but the file holds only "
                    f"{file_elements}; refusing to build it")
