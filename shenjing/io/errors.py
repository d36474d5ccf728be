"""One exception type per file format, each a ValueError subclass that names the file.

A reader that meets a corrupt, truncated or hostile file raises its format's error, whose
message starts with the file (the outer `.keras`/`.h5` path, never an inner temporary name)
and says what was wrong and what was expected. Catching `ValueError` catches them all;
catching `FileFormatError` catches exactly "this file is bad", not a caller's own mistake.
"""

from __future__ import annotations

import os

__all__ = [
    "ArchiveError",
    "CheckpointError",
    "FileFormatError",
    "H5FileError",
    "IdxFileError",
    "ImageFileError",
    "KerasFileError",
    "ModelConfigError",
    "SafetensorsError",
]


class FileFormatError(ValueError):
    """A file could not be read because its content is malformed, hostile or too large.

    Attributes:
        path: the file (or a description such as "safetensors bytes"), when known.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = os.fspath(path) if path is not None else None


class SafetensorsError(FileFormatError):
    """A safetensors file or byte string is malformed (header, offsets, dtypes, sizes)."""


class CheckpointError(SafetensorsError):
    """`shenjing.load`: the safetensors file is fine but its shenjing structure is not."""


class KerasFileError(FileFormatError):
    """A `.keras` archive is malformed: zip members, sizes, config.json or weights."""


class H5FileError(FileFormatError):
    """An `.h5` model or weights file is malformed or reaches outside itself."""


class ModelConfigError(FileFormatError):
    """A Keras model configuration (JSON architecture) is malformed or asks for too much."""


class IdxFileError(FileFormatError):
    """An IDX file (MNIST's format) is malformed, truncated or inconsistent."""


class ArchiveError(FileFormatError):
    """A tar archive is corrupt, unsafe (paths leaving its folder, links) or too large."""


class ImageFileError(OSError, ValueError):
    """An image file cannot be decoded (corrupt, truncated, or a decompression bomb).

    Also an OSError, which is what Pillow and torchvision raise for unreadable images.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = os.fspath(path) if path is not None else None

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
