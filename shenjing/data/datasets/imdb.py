"""IMDB movie reviews (and any set packed the same way) for sentiment classification.

The layout is aclImdb's: `<top>/{train,test}/{pos,neg}/<id>.txt`, one review per file. It is
read from a folder, or from a .tar.gz archive that is first extracted safely (no absolute
paths, `..`, links or devices; into a temporary folder, then renamed) into
`$SHENJING_DATA/imdb/<archive name>/`. A later run reuses that extraction while the archive's
MD5 is unchanged.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._files import (
    MARKER_NAME,
    DownloadError,
    check_folder_name,
    data_home,
    download_url,
    md5_file,
    safe_extract_tar,
)
from ..dataset import Dataset

__all__ = ["IMDB", "extract_archive"]

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # of the .tar.gz, as published by torchtext
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")
_SPLITS = ("train", "test")


def _natural_key(name: str) -> list:
    """'2_7.txt' before '10_3.txt'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _has_split(folder: Path, split: str) -> bool:
    return (folder / split / "pos").is_dir() and (folder / split / "neg").is_dir()


def _find_layout(folder: Path, split: str) -> Path | None:
    """`folder` or its single sub-folder holding `split/pos` and `split/neg`."""
    if _has_split(folder, split):
        return folder
    matches = [d for d in sorted(folder.iterdir()) if d.is_dir() and _has_split(d, split)]
    return matches[0] if len(matches) == 1 else None


def extract_archive(archive: str | os.PathLike) -> Path:
    """Safely extract `archive` into `$SHENJING_DATA/imdb/<name>/`, or reuse that folder.

    `<name>` is the archive's file name without its .tar.gz-like suffix; a name that would be
    empty, '.' or '..' is refused (it would make the folder the cache itself or its parent).

    Returns:
        The extraction folder.

    Raises:
        ArchiveError: (a ValueError) the archive is corrupt, unsafe or too big, or its name is
            unusable; nothing outside the extraction folder is touched.
    """
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise FileNotFoundError(f"IMDB: archive {archive} does not exist")
    name = archive.name
    for suffix in _ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    dest = data_home() / "imdb" / check_folder_name(name, f"IMDB: archive {archive}")
    digest = md5_file(archive)
    marker = dest / MARKER_NAME
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("md5") == digest:
                return dest
        except (ValueError, AttributeError, OSError):
            pass  # unreadable marker: extract again
    return safe_extract_tar(archive, dest, marker={"archive": str(archive), "md5": digest})


def _download_imdb(cache: Path) -> Path:
    def check(tmp: Path) -> None:
        actual = md5_file(tmp)
        if actual != IMDB_MD5:
            raise ValueError(f"MD5 is {actual}, expected {IMDB_MD5}")

    return download_url(IMDB_URL, cache / "aclImdb_v1.tar.gz", check=check, timeout=60)


class IMDB(Dataset):
    """Movie reviews labelled by sentiment: items are `(text, label)`, 1 = pos, 0 = neg.

    Args:
        root: a folder with the aclImdb layout (or holding one such folder, e.g.
            `aclImdb/`), or an archive; default `$SHENJING_DATA/imdb/`.
        split: "train" or "test".
        archive: a .tar.gz packed like aclImdb_v1.tar.gz; extracted into the cache.
        transform: applied to the text (e.g. tokenize, then vocab lookup).
        target_transform: applied to the label.
        download: fetch aclImdb_v1.tar.gz (84 MB) when nothing is found.
    """

    classes = ["neg", "pos"]

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        archive: str | os.PathLike | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = True,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"IMDB: split should be 'train' or 'test', got {split!r}")
        self.split = split
        self.transform = transform
        self.target_transform = target_transform
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.root = self._resolve(root, archive, download)
        self.samples = [
            (str(path), label)
            for label, name in enumerate(self.classes)
            for path in sorted((self.root / split / name).glob("*.txt"),
                               key=lambda p: _natural_key(p.name))
        ]
        if not self.samples:
            raise FileNotFoundError(f"IMDB: no .txt reviews in {self.root / split}/pos or /neg")
        self.targets = [label for _, label in self.samples]

    def _resolve(self, root: str | os.PathLike | None, archive: str | os.PathLike | None,
                 download: bool) -> Path:
        """The folder that holds `<split>/pos` and `<split>/neg`."""
        expected = f"{self.split}/pos/*.txt and {self.split}/neg/*.txt"
        if archive is None and root is not None and Path(root).is_file():
            archive, root = root, None
        if archive is not None:
            extracted = extract_archive(archive)
            found = _find_layout(extracted, self.split)
            if found is None:
                raise FileNotFoundError(f"IMDB: archive {archive} does not hold {expected} "
                                        "(directly or under one top folder)")
            return found
        if root is not None:
            root = Path(root).expanduser()
            found = _find_layout(root, self.split) if root.is_dir() else None
            if found is None:
                raise FileNotFoundError(f"IMDB: {root} does not hold {expected} (directly or "
                                        "under one sub-folder such as aclImdb/)")
            return found
        cache = data_home() / "imdb"
        for folder in (cache / "aclImdb", cache / "aclImdb_v1" / "aclImdb"):
            if _has_split(folder, self.split):
                return folder
        tarball = cache / "aclImdb_v1.tar.gz"
        failure = " (download=False)"
        if not tarball.is_file() and download:
            try:
                _download_imdb(cache)
            except DownloadError as e:
                failure = f"; download failed: {e}"
        if tarball.is_file():
            return self._resolve(None, tarball, download=False)
        raise FileNotFoundError(
            f"IMDB: no data found in {cache} (looked for aclImdb/ and aclImdb_v1.tar.gz)"
            f"{failure}. Get {IMDB_URL} into {cache}, or pass root= a folder holding "
            f"{expected}, or archive= a .tar.gz packed that way."
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, label = self.samples[index]
        try:
            with open(path, encoding="utf-8") as f:
                text: Any = f.read()
        except UnicodeDecodeError as e:
            raise ValueError(f"IMDB: review {path} is not UTF-8 text ({e})") from e
        if self.transform is not None:
            text = self.transform(text)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return text, label

    def __repr__(self) -> str:
        return (f"Dataset IMDB\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}\n    Split: {self.split}")
