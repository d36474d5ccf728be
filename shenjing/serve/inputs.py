"""Turning an HTTP request body into a checked batch of model inputs, or a 4xx with a reason.

Accepted bodies for POST /predict:
  * ``application/json``: an array of one example or of several (shape ``input_shape`` or
    ``(n, *input_shape)``), or ``{"inputs": array}``; text models also take
    ``{"text": "..."}`` or ``{"text": ["...", ...]}``;
  * ``multipart/form-data`` with an image file (field ``image`` or ``file``), or a raw
    ``image/png``, ``image/jpeg``, ... body, for image models;
  * ``text/plain`` (UTF-8) for text models.
Nothing in a request can name a file or a model: bodies are only ever data.
"""

from __future__ import annotations

import io
import json

import numpy as np

from .model import ServedModel

__all__ = ["RequestError", "parse_request", "MAX_EXAMPLES", "MAX_IMAGE_PIXELS"]

MAX_EXAMPLES = 256  # per request
MAX_IMAGE_PIXELS = 4096 * 4096  # checked from the header, before decoding
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


class RequestError(ValueError):
    """A client error: `status` (400, 413, 415, 422) and a reason the client can act on."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def check_array(data, served: ServedModel) -> np.ndarray:
    """A nested list of numbers -> a float32 (or int64 token id) batch, or RequestError."""
    try:
        arr = np.asarray(data)
    except (ValueError, OverflowError):
        raise RequestError(422, "the input array is ragged: every row must have the same "
                                "length") from None
    if arr.dtype.kind not in "iuf":
        kind = {"b": "booleans", "U": "strings", "O": "mixed or ragged values"}.get(
            arr.dtype.kind, f"{arr.dtype} values")
        raise RequestError(422, f"expected an array of numbers, got {kind}")
    expected = served.input_shape
    if arr.shape == expected:
        arr = arr[None]
    elif arr.shape[1:] != expected:
        raise RequestError(422, f"expected an input of shape {_shape_text(expected)} or "
                                f"(n, {_shape_text(expected)[1:]}, got {_shape_text(arr.shape)}")
    if len(arr) == 0:
        raise RequestError(422, "expected at least one example, got none")
    if len(arr) > MAX_EXAMPLES:
        raise RequestError(413, f"at most {MAX_EXAMPLES} examples per request, got {len(arr)}")
    if served.task == "text":
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise RequestError(422, "token ids must be integers")
        ids = arr.astype(np.int64)
        vocab = len(served.itos) if served.itos else None
        if ids.min() < 0 or (vocab is not None and ids.max() >= vocab):
            raise RequestError(422, f"token ids must lie in [0, {vocab}), got "
                                    f"[{ids.min()}, {ids.max()}]")
        return ids
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise RequestError(422, "the input holds non-finite values (NaN or infinity)")
    return arr


def _json_body(raw: bytes, served: ServedModel) -> np.ndarray:
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise RequestError(400, f"malformed JSON: {err}") from None
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None
    if isinstance(data, dict):
        unknown = set(data) - {"inputs", "text"}
        if unknown or len(data) != 1:
            raise RequestError(422, "expected a JSON array, {\"inputs\": array} or "
                                    "{\"text\": string or list of strings}, got an object "
                                    f"with keys {sorted(data)[:5]}")
        if "text" in data:
            return _texts(data["text"], served)
        data = data["inputs"]
    if not isinstance(data, list):
        raise RequestError(422, f"expected a JSON array of numbers, got {type(data).__name__}")
    return check_array(data, served)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _texts(texts, served: ServedModel) -> np.ndarray:
    if served.task != "text":
        raise RequestError(422, "this model takes images or arrays, not text")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise RequestError(422, "\"text\" must be a string or a non-empty list of strings")
    if len(texts) > MAX_EXAMPLES:
        raise RequestError(413, f"at most {MAX_EXAMPLES} texts per request, got {len(texts)}")
    return served.encode_texts(texts)


def decode_image(raw: bytes, served: ServedModel) -> np.ndarray:
    """One encoded image -> a (1, C, H, W) float batch in [0, 1], resized as training did."""
    if served.task != "image":
        raise RequestError(415, "this model takes text, not images")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise RequestError(415, "image uploads need Pillow on the server") from None
    try:
        with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise RequestError(413, f"image of {width}x{height} pixels is larger than the "
                                        f"{MAX_IMAGE_PIXELS} pixels allowed")
            img = img.convert("L" if served.channels == 1 else "RGB")
            size = served.input_shape[1:]
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            pixels = np.asarray(img, dtype=np.float32) / 255.0
    except RequestError:
        raise
    except Image.DecompressionBombError as err:
        raise RequestError(413, f"image too large ({err})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise RequestError(400, f"not a readable image ({type(err).__name__}: {err})") from None
    chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if chw.shape != served.input_shape:
        raise RequestError(422, f"image decodes to {chw.shape}, expected {served.input_shape}")
    return np.ascontiguousarray(chw[None])


def parse_request(content_type: str, raw: bytes, files: dict, served: ServedModel) -> np.ndarray:
    """The batch a POST /predict asks about; `files` maps form field -> uploaded bytes."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "application/json":
        return _json_body(raw, served)
    if mime == "multipart/form-data":
        upload = files.get("image", files.get("file"))
        if upload is None:
            raise RequestError(422, "expected an image file in form field 'image'")
        return decode_image(upload, served)
    if mime.startswith("image/"):
        return decode_image(raw, served)
    if mime == "text/plain":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, "text/plain body is not valid UTF-8") from None
        return _texts([text], served)
    raise RequestError(415, f"unsupported Content-Type {mime or '(none)'!r}; send "
                            f"application/json, multipart/form-data, image/* or text/plain")
