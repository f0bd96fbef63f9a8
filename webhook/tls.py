"""The serving certificate, reloaded from disk without a restart.

Kubernetes rotates a mounted Secret by writing a new timestamped directory and swapping the
`..data` symlink to it, so the files change all at once, but a watcher may still catch a
half-finished copy made by other tools. Each candidate pair is therefore loaded into a *fresh*
SSLContext (which checks that key and certificate match) and only swapped in when that works;
the listening context picks the current one for every handshake through its SNI callback, which
OpenSSL calls whether or not the client sent a server name. A bad pair keeps the old one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from control.config.files import FileReadError, read_bytes

log = logging.getLogger("mizzen.webhook.tls")

Clock = Callable[[], datetime]
# A certificate chain and its key are a few KB; a megabyte is room for any chain.
MAX_PEM_BYTES = 1024 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


class CertificateError(Exception):
    """The certificate or key cannot be used: the message names the file and the reason."""


@dataclass(frozen=True)
class ServingCertificate:
    context: ssl.SSLContext
    not_after: datetime
    digest: str


def _base_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """`load_cert_chain` from the bytes already read: OpenSSL only opens paths, so it is given
    anonymous in-memory files (it never opens the watched paths itself, which may have been
    swapped for something else since they were checked)."""
    descriptors = []
    try:
        for data in (cert, key):
            descriptor = os.memfd_create("mizzen-pem", os.MFD_CLOEXEC)
            descriptors.append(descriptor)
            os.write(descriptor, data)
        cert_path, key_path = (f"/proc/self/fd/{d}" for d in descriptors)
        context.load_cert_chain(cert_path, key_path, password=b"")
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _digest(cert: bytes, key: bytes) -> str:
    return hashlib.sha256(cert + b"\0" + key).hexdigest()


class CertificateStore:
    """The certificate/key pair at two paths, as a live server SSLContext."""

    def __init__(self, cert_file: Path, key_file: Path, clock: Clock = utc_now) -> None:
        self._cert_file = cert_file
        self._key_file = key_file
        self._clock = clock
        self._current: ServingCertificate | None = None
        self._failed_digest: str | None = None
        self._listening = _base_context()
        self._listening.sni_callback = self._choose

    @property
    def current(self) -> ServingCertificate | None:
        return self._current

    def server_context(self) -> ssl.SSLContext:
        """The context to listen with: every handshake gets the certificate current at the time."""
        return self._listening

    def ready(self) -> bool:
        """A certificate is loaded and has not expired."""
        current = self._current
        return current is not None and self._clock() < current.not_after

    def _choose(
        self, connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        current = self._current
        if current is not None:
            connection.context = current.context

    def _read(self) -> tuple[bytes, bytes]:
        """Both files, read as every input file is (`control.config.files`): regular files
        only, bounded in size, never blocking (a FIFO or device swapped in is refused, so the
        watcher never hangs and rotation never stops for good)."""
        found = []
        for path in (self._cert_file, self._key_file):
            try:
                found.append(read_bytes(path, MAX_PEM_BYTES))
            except FileReadError as error:
                raise CertificateError(f"cannot read {path}: {error}") from None
        return found[0], found[1]

    def load(self) -> bool:
        """Load the files if they changed since the last load. Returns whether a new certificate
        is now served; raises `CertificateError` when the files cannot be used."""
        cert, key = self._read()
        digest = _digest(cert, key)
        current = self._current
        if current is not None and current.digest == digest:
            return False
        context = _base_context()
        try:
            # An empty password: an encrypted key fails here instead of OpenSSL prompting on
            # the terminal (and blocking the watcher for ever).
            _load_chain(context, cert, key)
            leaf = x509.load_pem_x509_certificate(cert)
        except (ssl.SSLError, ValueError) as error:
            raise CertificateError(
                f"{self._cert_file} and {self._key_file} are not a usable certificate and key: "
                f"{error}"
            ) from None
        except OSError as error:
            raise CertificateError(f"cannot read {error.filename}: {error.strerror}") from None
        if self._read() != (cert, key):
            raise CertificateError("the certificate files changed while being loaded")
        self._current = ServingCertificate(context, leaf.not_valid_after_utc, digest)
        self._failed_digest = None
        log.info("serving certificate loaded (valid until %s)", leaf.not_valid_after_utc)
        return True

    def poll(self) -> None:
        """`load`, for the watcher: a failure is logged (once per bad version) and the certificate
        already served stays."""
        try:
            self.load()
        except CertificateError as error:
            try:
                digest = _digest(*self._read())
            except CertificateError:
                digest = "unreadable"
            if digest != self._failed_digest:
                self._failed_digest = digest
                log.warning("keeping the current serving certificate: %s", error)


class CertificateWatcher:
    """Polls the store's files every `interval` seconds in a daemon thread."""

    def __init__(self, store: CertificateStore, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cert-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._store.poll()
            except Exception:  # a bug must not end the reloading for good
                log.exception("unexpected error while reloading the serving certificate")
