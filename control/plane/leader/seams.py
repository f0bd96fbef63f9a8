"""What the duties need from the mesh CA, as Protocols: the composition root wires the real CA
(`control/plane/ca/`), tests a CA of their own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol


class RootBundleSource(Protocol):
    def root_bundle(self) -> str:
        """The PEM of the roots workloads and the API server must trust (one, or the old and
        the new during a root rotation). Raises an exception when it cannot be had yet."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    cert_chain_pem: bytes  # leaf first
    key_pem: bytes


class ServingCertIssuer(Protocol):
    def issue(self, dns_names: Sequence[str], lifetime: timedelta) -> IssuedCertificate:
        """A serving certificate for `dns_names` (serverAuth), signed by the mesh CA, with a
        fresh key. Raises an exception when the CA cannot sign."""
        ...
