"""Wakes the file source when something in its directory tree changes: Linux inotify, through
libc (no dependency), on every directory the last listing saw.

It only says *when* to look: what changed is still found by the file source's listing and
fingerprints, so a missed or merged event costs latency, never correctness. It cannot see
everything (a linked file's target edited outside the tree, a network filesystem's remote
writes, an event queue that overflowed), so the source still looks on a slow timer too
(`FileSource.run`). Where inotify is missing or refused (not Linux, the per-user watch limit
reached), `open` returns None and the source polls as it always did.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from control.logsafe import untrusted

log = logging.getLogger(__name__)

_IN_NONBLOCK: Final = 0o4000
_IN_CLOEXEC: Final = 0o2000000
# Whatever can change what a listing or a read sees: a file written (closed or not, for a
# writer that keeps it open), its mode, names created, removed or moved, the directory itself
# removed or moved.
_MASK: Final = (
    0x00000002  # IN_MODIFY
    | 0x00000004  # IN_ATTRIB
    | 0x00000008  # IN_CLOSE_WRITE
    | 0x00000040  # IN_MOVED_FROM
    | 0x00000080  # IN_MOVED_TO
    | 0x00000100  # IN_CREATE
    | 0x00000200  # IN_DELETE
    | 0x00000400  # IN_DELETE_SELF
    | 0x00000800  # IN_MOVE_SELF
)
_READ_BYTES: Final = 64 * 1024
_MAX_READS: Final = 64  # per drain: a writer flooding the tree cannot hold the loop
MAX_DIRECTORIES: Final = 4096  # beyond it the source polls (each watch is kernel memory)


class DirectoryWatch:
    """An inotify descriptor watching a set of directories. Not thread-safe: one owner."""

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self._fd = fd
        self._libc = libc
        self._watched: dict[Path, int] = {}  # directory -> its watch descriptor

    @classmethod
    def open(cls, root: Path) -> DirectoryWatch | None:
        """A watch on `root`, or None when this system gives none (the caller polls)."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            init = libc.inotify_init1
        except (OSError, AttributeError):
            return None
        fd = init(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            log.warning("no inotify (%s): polling the config directory", _error())
            return None
        watch = cls(fd, libc)
        if watch.watch([root]) is None:
            watch.close()
            return None
        return watch

    def fileno(self) -> int:
        return self._fd

    def watch(self, directories: Iterable[Path]) -> int | None:
        """Watches these directories, the whole tree as last listed (again each time: a
        directory removed and made anew under the same name needs a new watch; one watched
        already is only updated). Returns how many were not watched before, or None when one
        cannot be watched for a reason other than being gone (the per-user watch limit, more
        than `MAX_DIRECTORIES`): the caller then polls instead."""
        watched: dict[Path, int] = {}
        for directory in directories:
            if len(watched) >= MAX_DIRECTORIES:
                log.warning("more than %d config directories: polling", MAX_DIRECTORIES)
                return None
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(directory), _MASK)
            if wd < 0:
                if ctypes.get_errno() in (errno.ENOENT, errno.ENOTDIR):
                    continue  # gone between the listing and now: the next listing tells
                log.warning("cannot watch %s (%s): polling", untrusted(directory), _error())
                return None
            watched[directory] = wd
        new = sum(1 for d, wd in watched.items() if self._watched.get(d) != wd)
        self._watched = watched
        return new

    def drain(self) -> bool:
        """Reads the pending events; True when there were any. What they say is not parsed:
        any event means "look again" (an overflow too)."""
        seen = False
        for _ in range(_MAX_READS):
            try:
                data = os.read(self._fd, _READ_BYTES)  # EINTR is retried by Python itself
            except BlockingIOError:
                break
            if not data:
                break
            seen = True
        return seen

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _error() -> str:
    code = ctypes.get_errno()
    return os.strerror(code) if code else "unknown error"
