"""File helpers for the data sets: cache location, checksums, atomic writes, downloads, safe
tar extraction.

Everything that writes goes through a temporary file or folder next to its destination and is
then renamed into place, so an interrupted download or extraction never leaves a half-written
file that a later run would trust. Archives are validated member by member before a single byte
is written: the seed's `tarfile.extractall` on a downloaded archive can write anywhere on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

__all__ = [
    "DownloadError",
    "UnsafeArchiveError",
    "atomic_write_bytes",
    "atomic_write_text",
    "data_home",
    "download_url",
    "md5_bytes",
    "md5_file",
    "read_maybe_gzip",
    "safe_extract_tar",
]

_GZIP_MAGIC = b"\x1f\x8b"
MARKER_NAME = ".shenjing-extracted.json"
_CHUNK = 1 << 20


def data_home() -> Path:
    """The cache folder for data sets: `$SHENJING_DATA`, else `~/.cache/shenjing`."""
    env = os.environ.get("SHENJING_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "shenjing"


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: str | os.PathLike) -> str:
    """MD5 of a file's bytes as stored (compressed or not), read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_maybe_gzip(path: str | os.PathLike, what: str = "file") -> bytes:
    """Read a file, decompressing it when it starts with the gzip magic bytes.

    Args:
        path: the file.
        what: who is reading, for error messages ("MNIST").

    Raises:
        ValueError: the gzip stream is truncated or corrupted (names the file).
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(
            f"{what}: file {path} is a truncated or corrupted gzip file ({e}); "
            "delete it and download it again"
        ) from e


def _temp_sibling(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class DownloadError(OSError):
    """A download failed (no network, HTTP error) or its checksum did not match."""


def download_url(
    url: str,
    dest: str | os.PathLike,
    check: Callable[[Path], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download `url` to `dest` atomically.

    Args:
        url: http(s) or file URL.
        dest: final path; it only appears once the download is complete and checked.
        check: called with the temporary file's path; raise to reject the download.
        timeout: seconds to wait on the connection.

    Raises:
        DownloadError: the URL could not be fetched or `check` rejected the bytes.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(dest)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
                shutil.copyfileobj(response, f, _CHUNK)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DownloadError(f"could not download {url}: {e}") from e
        if check is not None:
            try:
                check(tmp)
            except ValueError as e:
                raise DownloadError(f"downloaded {url} but rejected it: {e}") from e
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


class UnsafeArchiveError(ValueError):
    """An archive member would escape the extraction folder or is not a plain file/folder."""


def _checked_member_path(archive: Path, member: tarfile.TarInfo) -> tuple[str, ...]:
    """The member's path relative to the extraction folder, or UnsafeArchiveError."""
    name = member.name
    where = f"archive {archive}: member {name!r}"
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(
            f"{where} is a {'symbolic' if member.issym() else 'hard'} link to "
            f"{member.linkname!r}; links are refused (they can point outside the extraction "
            "folder), expected only regular files and folders"
        )
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(
            f"{where} is a device, FIFO or other special file; expected only regular files "
            "and folders"
        )
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(
            f"{where} has an absolute path; expected paths relative to the archive's top folder"
        )
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{where} contains a '..' component and would be written outside the extraction "
            "folder; expected paths inside the archive's top folder"
        )
    return tuple(p for p in parts if p != ".")


def _validated_members(archive: Path, tf: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, str]]:
    members = []
    for member in tf.getmembers():
        parts = _checked_member_path(archive, member)
        if parts:
            members.append((member, os.path.join(*parts)))
    return members


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise ValueError(f"{archive} is not a readable tar archive: {e}") from e


def safe_extract_tar(
    archive: str | os.PathLike, dest: str | os.PathLike, marker: dict | None = None
) -> Path:
    """Extract a (possibly compressed) tar archive into the new folder `dest`, safely.

    Every member is checked first: absolute paths, `..` components, symbolic and hard links,
    devices and FIFOs are refused with UnsafeArchiveError and nothing is written. The members
    are then written into a temporary folder beside `dest` (only regular files and folders,
    with default permissions) and the folder is renamed to `dest`, replacing an older one.

    Args:
        archive: the .tar, .tar.gz, .tgz, .tar.bz2 or .tar.xz file.
        dest: the folder to create.
        marker: optional JSON-able record written as `dest/.shenjing-extracted.json` (used to
            tell whether a cached extraction came from the same archive).

    Returns:
        `dest`.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _open_tar(archive) as tf:
        try:
            members = _validated_members(archive, tf)
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise ValueError(f"archive {archive} is truncated or corrupted: {e}") from e
        tmp = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.partial"
        tmp.mkdir()  # default permissions (mkdtemp's are owner-only)
        try:
            _write_members(archive, tf, members, tmp)
            if marker is not None:
                (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=1, sort_keys=True))
            _replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def _write_members(
    archive: Path, tf: tarfile.TarFile, members: Iterable[tuple[tarfile.TarInfo, str]], root: Path
) -> None:
    """Write validated members under the fresh folder `root`.

    `root` is new and only regular files and folders are created in it, so no path can be
    redirected by a link; the prefix check below guards against a slip in the validation.
    """
    base = os.path.normpath(root) + os.sep
    made: set[str] = set()
    for member, rel in members:
        target = os.path.normpath(os.path.join(base, rel))
        if not target.startswith(base):
            raise UnsafeArchiveError(f"archive {archive}: member {member.name!r} escapes {root}")
        folder = target if member.isdir() else os.path.dirname(target)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        if member.isdir():
            continue
        try:
            source = tf.extractfile(member)
            with source, open(target, "xb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
        except FileExistsError as e:
            raise UnsafeArchiveError(
                f"archive {archive}: member {member.name!r} appears twice; expected unique paths"
            ) from e
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise ValueError(
                f"archive {archive} is truncated or corrupted at {member.name!r}: {e}"
            ) from e


def _replace_dir(new: Path, dest: Path) -> None:
    """Rename `new` to `dest`; an existing `dest` is moved aside first and then deleted."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
        os.replace(dest, old / dest.name)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
