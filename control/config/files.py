"""Reading a file the mesh was told to read: a regular file only (a FIFO would block the reader
for ever, `/dev/zero` never ends, a device may act on open), and no more than a limit, whatever
its size said when it was looked at. Every file mizzen reads as input goes through here."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

# Settings files are a few hundred bytes; a megabyte is room for any of them.
SETTINGS_MAX_BYTES: Final = 1024 * 1024


class FileReadError(OSError):
    """A file not read; `reason` names the class (`not_regular`, `too_large`, `unreadable`) and
    `transient` says whether trying again may help (an I/O error may pass, a FIFO stays one)."""

    def __init__(self, message: str, reason: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.transient = transient

    def __str__(self) -> str:
        return self.message


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a directory" if stat.S_ISDIR(mode) else "not a regular file"


def not_regular(mode: int) -> FileReadError:
    return FileReadError(
        f"not read: {kind_of(mode)}; only regular files are read", "not_regular", transient=False
    )


def too_large(size: int, limit: int, flag: str) -> FileReadError:
    hint = f" ({flag})" if flag else ""
    message = f"not read: {size} bytes or more, over the limit of {limit}{hint}"
    return FileReadError(message, "too_large", transient=False)


def read_bytes(path: Path, max_bytes: int, *, flag: str = "") -> bytes:
    """The content of a regular file of at most `max_bytes`. The file is looked at before it is
    opened (a special file is never opened), opened without blocking and checked again (it may
    have been swapped meanwhile), and read no further than the limit."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise _unreadable(error) from None
    if not stat.S_ISREG(mode):
        raise not_regular(mode)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise _unreadable(error) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise not_regular(opened.st_mode)
        if opened.st_size > max_bytes:
            raise too_large(opened.st_size, max_bytes, flag)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise too_large(size, max_bytes, flag)
    except FileReadError:
        raise
    except OSError as error:
        raise _unreadable(error) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(path: Path, max_bytes: int, *, flag: str = "") -> str:
    """`read_bytes`, as UTF-8 text."""
    data = read_bytes(path, max_bytes, flag=flag)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileReadError("not UTF-8 text", "unreadable", transient=False) from None


def _unreadable(error: OSError) -> FileReadError:
    return FileReadError(str(error.strerror or error), "unreadable", transient=True)
