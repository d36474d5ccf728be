"""Atomic file writes: a file on disk is either the old one or the complete new one.

Everything shenjing saves (weights, checkpoints, plots) goes through `atomic_write`, so a crash,
a full disk or an exception half-way through a save never leaves a truncated file behind and
never destroys the previous version.

A writer killed outright (SIGKILL, power loss) cannot remove its temporary file, so temporary
names carry the writer's process id and a tag of its host (``.<name>.<pid>-<host>-<random>.tmp``);
the next atomic save into the same folder, or `remove_stale_temps` on it, deletes the temporary
files of writers on this host that are no longer running. Files of live writers, of other hosts
(a shared network folder) and anything not named that way are never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "remove_stale_temps", "temp_prefix"]

_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[^.]+\.(?:tmp|partial)$"
)


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def temp_prefix(name: str) -> str:
    """Prefix of this process's temporary files for the final name `name` (for mkstemp)."""
    return f".{name}.{os.getpid()}-{_host_tag()}-"


def _process_gone(pid: int) -> bool:
    """Whether no process `pid` runs here (a zombie, killed but not yet reaped, counts as gone)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def remove_stale_temps(directory: str | os.PathLike, name: str | None = None) -> list[str]:
    """Delete temporary files (or folders) left in `directory` by dead writers on this host.

    Args:
        directory: the folder to clean.
        name: only temporaries for this final file name; None for all of them.

    Returns:
        The paths removed.
    """
    removed = []
    host = _host_tag()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or match["host"] != host or (name is not None and match["name"] != name):
            continue
        if not _process_gone(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.path)
    return removed

_WRITE_MODES = {"w", "wt", "wb", "w+", "wt+", "wb+", "w+t", "w+b"}


def _default_permissions() -> int:
    """The permission bits `open()` would give a new file (0o666 less the process umask)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # No /proc: read the umask by setting it and putting it back at once.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable; not possible (nor needed) on every platform."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", encoding: str | None = None
) -> Iterator[IO]:
    """Open a temporary file next to `path` for writing; on success it replaces `path`.

    The temporary file lives in the same directory (so the final `os.replace` is an atomic
    rename on one file system), is flushed and fsynced before the rename, and is removed if the
    block raises, leaving any previous file at `path` untouched. The new file gets the
    permissions of the file it replaces, or the usual ones for a new file.

    Args:
        path: the file to write.
        mode: a write mode, "wb" (default) or "w" for text.
        encoding: text encoding for text modes (default UTF-8).

    Example:
        >>> with atomic_write("weights.bin") as f:
        ...     f.write(data)
    """
    if mode not in _WRITE_MODES:
        raise ValueError(
            f"atomic_write: mode must be a write mode such as 'wb' or 'w', got {mode!r} "
            "(appending or reading cannot be made atomic by a rename)"
        )
    path = Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"atomic_write: {str(path)!r} is a directory, expected a file path")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"atomic_write: cannot write {str(path)!r}: directory {str(directory)!r} does not exist"
        )
    binary = "b" in mode
    if binary and encoding is not None:
        raise ValueError("atomic_write: encoding is only valid with a text mode such as 'w'")

    remove_stale_temps(directory)  # of every name: checkpoints often change name per epoch
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        try:
            permissions = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            permissions = _default_permissions()
        os.chmod(tmp_name, permissions)
        kwargs = {} if binary else {"encoding": encoding or "utf-8"}
        with os.fdopen(fd, mode, **kwargs) as f:
            fd = -1  # the file object owns it now
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(str(directory))
