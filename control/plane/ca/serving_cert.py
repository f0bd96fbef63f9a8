"""The secure port's own certificate, issued by the mesh CA for the names clients dial.

Istio's istiod serves 15012 with a certificate from its own CA, so a proxy that trusts the mesh
root trusts the control plane without any other PKI. The names: the Service's DNS forms
(`mizzen`, `mizzen.mizzen-system`, `mizzen.mizzen-system.svc`,
`mizzen.mizzen-system.svc.cluster.local`) and every advertised address (DNS name or IP).

The key lives in memory. The certificate is re-issued at half its life, and at once when the CA
changes (a root rotation); gRPC asks `fetch` at each handshake, so new connections get the new
certificate while open ones keep theirs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import grpc
from cryptography import x509

from control.identity.keys import KeySpec, generate_key, private_key_pem
from control.identity.pem import general_name
from control.plane.ca.authority import CertificateAuthority
from control.plane.ca.refusals import Refusal

log = logging.getLogger("mizzen.ca")


def service_names(
    service: str, namespace: str, cluster_domain: str, advertise: Iterable[str] = ()
) -> list[str]:
    """The names of a Service as clients write them, then the advertised addresses."""
    names = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{cluster_domain}",
    ]
    for address in advertise:
        if address not in names:
            names.append(address)
    return names


@dataclass(frozen=True, slots=True)
class _Current:
    key_pem: bytes
    chain_pem: bytes
    roots_pem: bytes
    not_before: float
    not_after: float
    generation: int


class ServingIdentity:
    def __init__(
        self,
        authority: CertificateAuthority,
        names: Sequence[str],
        lifetime: timedelta = timedelta(hours=24),
        key_spec: KeySpec | None = None,
    ) -> None:
        if not names:
            raise ValueError("the serving certificate needs at least one name")
        self.authority = authority
        self.names = list(names)
        self.lifetime = lifetime
        self.key_spec = key_spec or KeySpec()
        self._lock = threading.Lock()
        self._current = self._issue()
        self._fetched: _Current | None = None

    def _issue(self) -> _Current:
        key = generate_key(self.key_spec)
        generation = self.authority.generation
        result = self.authority.issue(key, [general_name(n) for n in self.names], self.lifetime)
        if isinstance(result, Refusal):
            raise RuntimeError(f"cannot issue the serving certificate: {result}")
        leaf, chain = result
        return _Current(
            key_pem=private_key_pem(key),
            chain_pem="".join(chain).encode(),
            roots_pem=self.authority.issuer.roots_pem.encode(),
            not_before=leaf.not_valid_before_utc.timestamp(),
            not_after=leaf.not_valid_after_utc.timestamp(),
            generation=generation,
        )

    @property
    def chain_pem(self) -> bytes:
        return self._current.chain_pem

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self._current.chain_pem)

    def refresh(self) -> bool:
        """Re-issue when half the lifetime is gone or the CA changed; True when it did."""
        current = self._current
        now = self.authority.clock().timestamp()
        half = current.not_before + (current.not_after - current.not_before) / 2
        if now < half and current.generation == self.authority.generation:
            return False
        try:
            fresh = self._issue()
        except RuntimeError as error:
            log.error("keeping the serving certificate: %s", error)
            return False
        with self._lock:
            self._current = fresh
        log.info("serving certificate re-issued for %s", ", ".join(self.names))
        return True

    def _configuration(
        self, current: _Current, with_roots: bool
    ) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(current.key_pem, current.chain_pem)],
            root_certificates=current.roots_pem if with_roots else None,
        )

    def credentials(self, require_client_cert: bool) -> grpc.ServerCredentials:
        """Server credentials that follow re-issues. With `require_client_cert`, clients must
        present a certificate chaining to the mesh roots (gRPC's Python API offers no "verify
        if given": it is required or not asked for)."""

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            with self._lock:
                current = self._current
                if self._fetched is current:
                    return None
                self._fetched = current
            return self._configuration(current, require_client_cert)

        with self._lock:
            self._fetched = self._current
            initial = self._configuration(self._current, require_client_cert)
        return grpc.dynamic_ssl_server_credentials(
            initial,
            fetch,  # type: ignore[arg-type]  # None means "unchanged" (gRPC's documented contract)
            require_client_authentication=require_client_cert,
        )
