"""Checking what the CA sent before Envoy gets it (pure): the chain must verify against the
roots the agent trusts, the leaf must carry our public key and exactly our SPIFFE id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from control.identity.keys import PrivateKey, same_public_key
from control.identity.pem import PemError, load_certificates, serial_hex, uri_sans


class RejectedCertificateError(ValueError):
    """The CA's answer is not a certificate for this workload; the message says why."""


@dataclass(frozen=True, slots=True)
class WorkloadCertificate:
    chain_pem: bytes  # leaf first
    key_pem: bytes
    leaf: x509.Certificate
    received_at: float

    @property
    def not_after(self) -> float:
        return self.leaf.not_valid_after_utc.timestamp()

    @property
    def serial(self) -> str:
        return serial_hex(self.leaf)


def check_chain(
    chain_pem: Sequence[str],
    key: PrivateKey,
    spiffe_id: str,
    roots: Sequence[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    """The parsed chain, leaf first; raises RejectedCertificateError."""
    if not chain_pem:
        raise RejectedCertificateError("the CA sent an empty chain")
    try:
        chain = [c for pem in chain_pem for c in load_certificates(pem.encode(), "cert_chain")]
    except PemError as error:
        raise RejectedCertificateError(str(error)) from None
    leaf = chain[0]
    public = leaf.public_key()
    if not same_public_key(public, key.public_key()):  # type: ignore[arg-type]
        raise RejectedCertificateError("the certificate is not for our key")
    if uri_sans(leaf) != [spiffe_id]:
        raise RejectedCertificateError(f"the certificate names {uri_sans(leaf)!r}, not {spiffe_id}")
    if not roots:
        raise RejectedCertificateError("no trusted root to verify the certificate with")
    verifier = PolicyBuilder().store(Store(list(roots))).time(now).build_client_verifier()
    try:
        verifier.verify(leaf, chain[1:])
    except VerificationError as error:
        raise RejectedCertificateError(f"the chain does not verify: {error}") from None
    return chain
