"""The secrets the agent serves to Envoy over SDS: `default` (the workload's certificate chain
and key) and `ROOTCA` (the trusted roots), as Envoy `Secret` messages with a version each.

Lives on the event loop: the identity tasks `set_*`, the SDS streams read and wait for changes.
"""

# ruff: noqa: S105 (names of tokens and secrets, not secrets)

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from control.config.sds_names import ROOT_SECRET, WORKLOAD_SECRET

WORKLOAD: Final = WORKLOAD_SECRET
ROOTS: Final = ROOT_SECRET
SECRET_TYPE: Final = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


@dataclass(frozen=True, slots=True)
class Versioned:
    version: str
    secret: secret_pb2.Secret


class SecretStore:
    def __init__(self) -> None:
        self._secrets: dict[str, Versioned] = {}
        self._counter = 0
        self._listeners: set[asyncio.Event] = set()

    def _put(self, secret: secret_pb2.Secret) -> None:
        self._counter += 1
        self._secrets[secret.name] = Versioned(str(self._counter), secret)
        for listener in self._listeners:
            listener.set()

    def set_workload(self, chain_pem: bytes, key_pem: bytes) -> None:
        certificate = common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=chain_pem),
            private_key=base_pb2.DataSource(inline_bytes=key_pem),
        )
        self._put(secret_pb2.Secret(name=WORKLOAD, tls_certificate=certificate))

    def set_roots(self, roots_pem: bytes) -> None:
        context = common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=roots_pem)
        )
        self._put(secret_pb2.Secret(name=ROOTS, validation_context=context))

    def get(self, name: str) -> Versioned | None:
        return self._secrets.get(name)

    def names(self) -> list[str]:
        return sorted(self._secrets)

    def listen(self) -> asyncio.Event:
        """An event set at every change (the caller clears it); `unlisten` when done."""
        event = asyncio.Event()
        self._listeners.add(event)
        return event

    def unlisten(self, event: asyncio.Event) -> None:
        self._listeners.discard(event)
