"""File helpers for the data sets: cache location, checksums, atomic writes, downloads, safe
tar extraction.

Everything that writes goes through a temporary file or folder next to its destination and is
then renamed into place, so an interrupted download or extraction never leaves a half-written
file that a later run would trust. Archives are validated member by member before a single byte
is written: the seed's `tarfile.extractall` on a downloaded archive can write anywhere on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from ..io import limits
from ..io.atomic import atomic_write, remove_stale_temps, temp_prefix
from ..io.errors import ArchiveError

__all__ = [
    "ArchiveError",
    "DownloadError",
    "UnsafeArchiveError",
    "atomic_write_bytes",
    "atomic_write_text",
    "data_home",
    "download_url",
    "md5_bytes",
    "md5_file",
    "read_maybe_gzip",
    "check_folder_name",
    "gunzip_bounded",
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


def _gzip_bound(raw: bytes, cap: int) -> int:
    """The most bytes gzip data `raw` may decompress to: what its trailer promises.

    The trailer's ISIZE is the size modulo 2**32; the bound is the largest size of that residue
    that deflate (which expands at most ~1032 times) could produce from `raw`, and at most `cap`.
    """
    bound = int.from_bytes(raw[-4:], "little") if len(raw) >= 18 else 0
    while bound + (1 << 32) <= min(cap, 1032 * len(raw)):
        bound += 1 << 32
    return min(bound, cap)


def gunzip_bounded(
    raw: bytes, source: str, limit: int | None = None, error: type[ValueError] = ArchiveError
) -> bytes:
    """Decompress gzip bytes, stopping as soon as the output passes the promised size.

    The promise is the last trailer's ISIZE (see `_gzip_bound`), so a multi-member file is
    accepted only while its whole output fits it. zlib checks each member's CRC and length.

    Raises:
        error: output past the promise (or `limit`, default MAX_FILE_BYTES), corrupt or
            truncated data, or trailing garbage; the message starts with `source`.
    """
    bound = _gzip_bound(raw, limits.MAX_FILE_BYTES if limit is None else limit)
    out, total, data = [], 0, raw
    try:
        while data.startswith(_GZIP_MAGIC):
            engine = zlib.decompressobj(wbits=31)
            while not engine.eof:
                chunk = engine.decompress(data, bound + 1 - total)
                total += len(chunk)
                if total > bound:
                    raise error(f"{source} is a truncated or corrupted gzip file: it "
                                f"decompresses past the {bound} bytes promised (by its trailer "
                                "or the data's own header); refusing to go on", source)
                out.append(chunk)
                data = engine.unconsumed_tail
                if not data and not chunk and not engine.eof:
                    raise error(f"{source} is a truncated or corrupted gzip file (the stream "
                                "ends early)", source)
            data = engine.unused_data
    except zlib.error as e:
        raise error(f"{source} is a truncated or corrupted gzip file ({e})", source) from None
    if data.strip(b"\0"):
        raise error(f"{source} is a corrupted gzip file: {len(data)} bytes of garbage follow "
                    "the compressed data", source)
    return b"".join(out)


def read_maybe_gzip(
    path: str | os.PathLike, what: str = "file", error: type[ValueError] = ArchiveError
) -> bytes:
    """Read a file, decompressing it (bounded, see `gunzip_bounded`) when it is gzip.

    Args:
        path: the file.
        what: who is reading, for error messages ("MNIST").
        error: the exception type to raise (a ValueError subclass).

    Raises:
        error: the gzip stream is truncated, corrupted or expands past its promised size.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    return gunzip_bounded(raw, f"{what}: file {path}", error=error)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        f.write(data)


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
    remove_stale_temps(dest.parent, dest.name)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(dest.name), suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
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


class UnsafeArchiveError(ArchiveError):
    """An archive member would escape the extraction folder or is not a plain file/folder."""


MAX_ARCHIVE_MEMBERS = 2_000_000  # aclImdb has 100,000; more is an inode bomb, not a data set
DISK_MARGIN_BYTES = 256 << 20  # keep this much free space after an extraction


def _checked_member_path(archive: Path, member: tarfile.TarInfo) -> tuple[str, ...]:
    """The member's path relative to the extraction folder, or UnsafeArchiveError."""
    name = member.name
    where = f"archive {archive}: member {name!r}"
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(
            f"{where} is a {'symbolic' if member.issym() else 'hard'} link to "
            f"{member.linkname!r}; links are refused (they can point outside the extraction "
            "folder), expected only regular files and folders", archive
        )
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(
            f"{where} is a device, FIFO or other special file; expected only regular files "
            "and folders", archive
        )
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(
            f"{where} has an absolute path; expected paths relative to the archive's top "
            "folder", archive
        )
    if "\0" in name:
        raise UnsafeArchiveError(f"{where} contains a NUL byte", archive)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{where} contains a '..' component and would be written outside the extraction "
            "folder; expected paths inside the archive's top folder", archive
        )
    return tuple(p for p in parts if p != ".")


def _validated_members(
    archive: Path, tf: tarfile.TarFile, max_bytes: int
) -> list[tuple[tarfile.TarInfo, str]]:
    """Every member checked, with the declared sizes summed *before* the next member is read
    (reading on means decompressing the previous member's data)."""
    members, total = [], 0
    for count, member in enumerate(tf, 1):
        parts = _checked_member_path(archive, member)
        total += max(member.size, 0) if member.isfile() else 0
        if total > max_bytes:
            raise ArchiveError(
                f"archive {archive}: its members declare more than {max_bytes} bytes (at "
                f"{member.name!r}), more than the limit or the free disk space allows; "
                "refusing to extract it", archive)
        if count > MAX_ARCHIVE_MEMBERS:
            raise ArchiveError(f"archive {archive} has more than {MAX_ARCHIVE_MEMBERS} members; "
                               "refusing to extract it", archive)
        if parts:
            members.append((member, os.path.join(*parts)))
    return members


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise ArchiveError(f"{archive} is not a readable tar archive: {e}", archive) from e


def check_folder_name(name: str, what: str) -> str:
    """`name` as one safe path component, or ArchiveError: never '', '.', '..' or a path."""
    if name.strip() in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ArchiveError(f"{what}: the name {name!r} does not make a folder name of its own "
                           "(it is empty, '.', '..' or contains a path separator); rename it")
    return name


def _extraction_budget(folder: Path) -> int:
    try:
        free = shutil.disk_usage(folder).free - DISK_MARGIN_BYTES
    except OSError:
        free = limits.MAX_FILE_BYTES
    return max(0, min(limits.MAX_FILE_BYTES, free))


def safe_extract_tar(
    archive: str | os.PathLike, dest: str | os.PathLike, marker: dict | None = None
) -> Path:
    """Extract a (possibly compressed) tar archive into the new folder `dest`, safely.

    Every member is checked first: absolute paths, `..` components, symbolic and hard links,
    devices and FIFOs are refused with UnsafeArchiveError, and the sizes the members declare
    must fit MAX_FILE_BYTES and the free disk space; nothing is written before that. The members
    are then written into a temporary folder beside `dest` (only regular files and folders,
    with default permissions) and the folder is renamed to `dest`. An older `dest` is replaced
    only if a previous extraction made it (it holds the marker file); nothing outside `dest`
    and its temporary siblings is ever deleted.

    Args:
        archive: the .tar, .tar.gz, .tgz, .tar.bz2 or .tar.xz file.
        dest: the folder to create; its name must not be '', '.' or '..'.
        marker: optional JSON-able record written as `dest/.shenjing-extracted.json` (used to
            tell whether a cached extraction came from the same archive).

    Returns:
        `dest`.
    """
    archive, dest = Path(archive), Path(dest)
    check_folder_name(dest.name, f"extracting {archive}")
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest.parent, dest.name)
    _check_replaceable(archive, dest)
    with _open_tar(archive) as tf:
        try:
            members = _validated_members(archive, tf, _extraction_budget(dest.parent))
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise ArchiveError(f"archive {archive} is truncated or corrupted: {e}",
                               archive) from e
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(dest.name), suffix=".partial",
                                    dir=dest.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # default permissions (mkdtemp's are owner-only)
        try:
            _write_members(archive, tf, members, tmp)
            if marker is not None:
                (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=1, sort_keys=True))
            _replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_replaceable(archive: Path, dest: Path) -> None:
    """Refuse to overwrite a `dest` that some earlier extraction did not make."""
    if not os.path.lexists(dest):
        return
    if dest.is_symlink() or not dest.is_dir():
        raise ArchiveError(f"extracting {archive}: {dest} exists and is not a folder made by an "
                           "earlier extraction; move it away first", archive)
    if not (dest / MARKER_NAME).is_file() and any(dest.iterdir()):
        raise ArchiveError(f"extracting {archive}: folder {dest} exists, is not empty and was "
                           "not made by shenjing (no marker file); move it away first so "
                           "nothing of yours is deleted", archive)


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
        where = f"archive {archive}: member {member.name!r}"
        if not target.startswith(base):
            raise UnsafeArchiveError(f"{where} escapes {root}", archive)
        folder = target if member.isdir() else os.path.dirname(target)
        try:
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            if member.isdir():
                continue
            source = tf.extractfile(member)
            with source, open(target, "xb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
        except (FileExistsError, IsADirectoryError, NotADirectoryError) as e:
            raise ArchiveError(
                f"{where} clashes with another member: a file and a folder (or two files) "
                "have the same path; expected unique paths", archive
            ) from e
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise ArchiveError(f"archive {archive} is truncated or corrupted at "
                               f"{member.name!r}: {e}", archive) from e


def _replace_dir(new: Path, dest: Path) -> None:
    """Rename `new` to `dest`; an existing `dest` (checked by `_check_replaceable`) is moved
    into a temporary sibling first and deleted there."""
    old = None
    if os.path.lexists(dest):
        old = Path(tempfile.mkdtemp(prefix=temp_prefix(dest.name), suffix=".partial",
                                    dir=dest.parent))
        os.replace(dest, old / "old")
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
