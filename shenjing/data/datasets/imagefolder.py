"""ImageFolder: one sub-folder per class, as torchvision.datasets.ImageFolder.

    root/Activities/1f3a3.png -> class 0
    root/Animals_and_Nature/1f400.png -> class 1

Classes are the sub-folder names sorted; files are found recursively and sorted, so the
sample order (and `class_to_idx`) is the same on every machine.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...io.errors import ImageFileError
from ..dataset import Dataset

__all__ = ["IMG_EXTENSIONS", "DatasetFolder", "ImageFileError", "ImageFolder", "default_loader",
           "pil_loader"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def pil_loader(path: str | os.PathLike) -> Any:
    """Open an image file and convert it to RGB (alpha is dropped, palettes expanded).

    Images with more pixels than Pillow's `Image.MAX_IMAGE_PIXELS` (about 89 million; Pillow
    itself only warns there and refuses at twice that) are refused before they are decoded:
    a small file can declare a huge image (a decompression bomb).

    Raises:
        ImageFileError: (an OSError and a ValueError) the file is not an image, is truncated
            or corrupt, or is a decompression bomb; the message names it.
    """
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("ImageFolder needs Pillow to decode images: pip install pillow") from e
    name = os.fspath(path)
    with open(path, "rb") as f:
        try:
            with warnings.catch_warnings():  # a too-big image is refused just below instead
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(f)
            limit = Image.MAX_IMAGE_PIXELS
            width, height = image.size
            if limit is not None and width * height > limit:
                raise ImageFileError(
                    f"image file {name!r} declares {width}x{height} = {width * height} pixels, "
                    f"more than the limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS): a possible "
                    "decompression bomb; refusing to decode it", name)
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")  # same RGB; avoids Pillow's palette warning
            return image.convert("RGB")  # convert() decodes while the file is open
        except ImageFileError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
                EOFError, IndexError, struct.error, MemoryError) as e:
            # Pillow reports bad data as any of these
            raise ImageFileError(f"cannot read image file {name!r}: {e}; expected a readable "
                                 f"image ({', '.join(IMG_EXTENSIONS)}): delete or replace it",
                                 name) from e


default_loader = pil_loader


def find_classes(root: Path) -> tuple[list[str], dict[str, int]]:
    """Sorted class folder names under `root` and their indices."""
    if not root.is_dir():
        raise FileNotFoundError(f"ImageFolder: root {root} is not a folder; expected "
                                "root/<class name>/<image files>")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"ImageFolder: found no class folders in {root}; expected "
                                "root/<class name>/<image files>")
    return classes, {name: i for i, name in enumerate(classes)}


def _walk_once(top: Path) -> list[tuple[str, list[str]]]:
    """(folder, sorted file names) for `top` and its sub-folders, links to folders followed,
    each real folder visited once: a symbolic link loop (`a/b -> ..`) is followed once instead
    of repeating the same files until the path gets too long."""
    result, seen = [], set()
    for folder, dirs, files in os.walk(top, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            dirs[:] = []
            continue
        seen.add(key)
        dirs.sort()
        result.append((folder, sorted(files)))
    return result


class DatasetFolder(Dataset):
    """Samples `(loader(path), class index)` from `root/<class>/**/<file>`.

    Args:
        root: the folder of class folders.
        loader: turns a path into a sample.
        extensions: file name endings to accept (case-insensitive); excludes is_valid_file.
        transform: applied to the loaded sample.
        target_transform: applied to the class index.
        is_valid_file: decides from the path whether to take a file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        loader: Callable[[str], Any],
        extensions: Sequence[str] | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
    ) -> None:
        if (extensions is None) == (is_valid_file is None):
            raise ValueError(f"{type(self).__name__}: pass exactly one of extensions and "
                             "is_valid_file")
        self.root = Path(root).expanduser()
        self.loader = loader
        self.extensions = tuple(e.lower() for e in extensions) if extensions else None
        self.transform = transform
        self.target_transform = target_transform
        self.classes, self.class_to_idx = find_classes(self.root)
        self.samples = self._scan(is_valid_file)
        self.targets = [target for _, target in self.samples]
        self.imgs = self.samples

    def _scan(self, is_valid_file: Callable[[str], bool] | None) -> list[tuple[str, int]]:
        def valid(path: str) -> bool:
            if is_valid_file is not None:
                return bool(is_valid_file(path))
            return path.lower().endswith(self.extensions)

        samples, empty = [], []
        for name in self.classes:
            found = []
            for folder, files in _walk_once(self.root / name):
                found += [os.path.join(folder, f) for f in files if valid(os.path.join(folder, f))]
            if not found:
                empty.append(name)
            samples += [(path, self.class_to_idx[name]) for path in found]
        if empty:
            accepted = (f"extensions {', '.join(self.extensions)}" if self.extensions
                        else "is_valid_file")
            raise FileNotFoundError(f"{type(self).__name__}: found no valid file for the "
                                    f"classes {', '.join(empty)} in {self.root} (accepted: "
                                    f"{accepted})")
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __repr__(self) -> str:
        return (f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}\n    Classes: {len(self.classes)}")


class ImageFolder(DatasetFolder):
    """Images in class folders, decoded with Pillow and converted to RGB."""

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        loader: Callable[[str], Any] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(
            root,
            loader if loader is not None else default_loader,
            IMG_EXTENSIONS if is_valid_file is None else None,
            transform,
            target_transform,
            is_valid_file,
        )
