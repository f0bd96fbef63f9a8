"""Bounded reads and private, atomic writes of small files: keys, certificates, tokens.

The one module of `control.identity` that touches the file system. Every read checks the type
(a regular file, after following symlinks, since Kubernetes mounts Secrets and ConfigMaps through
`..data` symlinks; a FIFO or device is refused without blocking) and the size before reading.
Writes go to a temporary file in the same directory and are renamed into place, so a reader
never sees half a key, and a key is created with its final mode (never briefly world-readable).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


class FileReadError(OSError):
    """The file cannot be used; the message names it and says why."""


def read_bounded(path: Path, limit: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise FileReadError(f"{path}: cannot open: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileReadError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise FileReadError(f"{path}: {info.st_size} bytes, more than {limit}")
        chunks: list[bytes] = []
        size = 0
        while True:  # the file may grow while we read: never take more than the limit
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FileReadError(f"{path}: more than {limit} bytes")
        return b"".join(chunks)
    except OSError as error:
        if isinstance(error, FileReadError):
            raise
        raise FileReadError(f"{path}: cannot read: {error.strerror}") from None
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` (created with `mode`), all at once."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed (or the caller widened) it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temporary, path)


def ensure_private_dir(path: Path) -> None:
    """Create the directory 0700, or tighten an existing one we own to 0700; refuse a path
    that is not a directory or belongs to someone else."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise FileReadError(f"{path}: not a directory")
    if info.st_uid != os.geteuid():
        raise FileReadError(f"{path}: owned by uid {info.st_uid}, not by us")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
