"""Where the CA's material lives: a Protocol, and the directory implementation.

A `CaSource` only loads (a plug-in CA, which its owner manages); a `CaStore` can also create the
self-signed CA when none exists. `create` is create-if-absent: whoever loses a race (another
replica, another process on the same directory) gets the winner's material back, so every
replica signs with one CA. The Kubernetes implementation is in `kube_store.py`.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path
from typing import Protocol

from control.identity.files import FileReadError, ensure_private_dir, read_bounded, write_atomic
from control.plane.ca.material import (
    CA_KEY,
    CERT_CHAIN,
    FILES,
    MAX_FILE_BYTES,
    CaMaterial,
    CaMaterialError,
)

LOCK_FILE = ".lock"


class CaStoreError(RuntimeError):
    """The store cannot be read or written; the message names the place and the reason."""


class CaSource(Protocol):
    """Where a CA's material is read from."""

    def describe(self) -> str: ...

    def load(self) -> CaMaterial | None:
        """The material, None when there is none yet; raises CaStoreError or CaMaterialError."""
        ...


class CaStore(CaSource, Protocol):
    def create(self, material: CaMaterial) -> CaMaterial:
        """Store `material` unless material exists already; returns what is stored."""
        ...


def read_material(directory: Path, required: bool) -> CaMaterial | None:
    """The `cacerts` files of a directory; None when none exists (and not `required`)."""
    present = {name: (directory / name).exists() for name in FILES}
    if not any(present.values()):
        if required:
            raise CaStoreError(f"{directory}: no CA files ({', '.join(FILES)})")
        return None
    files: dict[str, bytes] = {}
    for name in FILES:
        if not present[name]:
            continue
        try:
            files[name] = read_bounded(directory / name, MAX_FILE_BYTES)
        except FileReadError as error:
            raise CaStoreError(str(error)) from None
    try:
        return CaMaterial.from_files(files)
    except CaMaterialError as error:
        raise CaStoreError(f"{directory}: incomplete CA: {error}") from None


class DirectorySource:
    """A plug-in CA in a directory (`--plugin-ca-dir`, or a mounted `cacerts` Secret)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f"plug-in CA in {self.directory}"

    def load(self) -> CaMaterial | None:
        if not self.directory.is_dir():
            raise CaStoreError(f"{self.directory}: not a directory")
        return read_material(self.directory, required=True)


class FileCaStore:
    """The self-signed CA in `--ca-dir`: the directory 0700, the key 0600."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f"CA directory {self.directory}"

    def load(self) -> CaMaterial | None:
        if not self.directory.exists():
            return None
        if not self.directory.is_dir():
            raise CaStoreError(f"{self.directory}: not a directory")
        return read_material(self.directory, required=False)

    def create(self, material: CaMaterial) -> CaMaterial:
        try:
            ensure_private_dir(self.directory)
            with _Lock(self.directory):
                existing = self.load()
                if existing is not None:
                    return existing
                self.write(material)
        except OSError as error:
            raise CaStoreError(f"{self.directory}: cannot create the CA: {error}") from None
        return material

    def write(self, material: CaMaterial) -> None:
        """Replace the files (the caller holds the lock); the key last, 0600."""
        files = material.as_files()
        for name in (n for n in FILES if n != CA_KEY):
            if name == CERT_CHAIN and not files[name]:
                (self.directory / name).unlink(missing_ok=True)
                continue
            write_atomic(self.directory / name, files[name], 0o644)
        write_atomic(self.directory / CA_KEY, files[CA_KEY], 0o600)


class _Lock:
    """An exclusive `flock` on the directory's lock file (two processes on one directory)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            raise CaStoreError(f"{self.path}: not a regular file")
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def locked(directory: Path) -> _Lock:
    """For other writers of a CA directory (the root rotation)."""
    return _Lock(directory)
