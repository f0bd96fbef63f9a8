"""PEM bundles and certificate facts, bounded: a bundle is capped in size and in count before
anything is parsed, so a hostile or broken file cannot make a reader allocate without limit."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

MAX_BUNDLE_BYTES: Final = 1024 * 1024
MAX_CERTIFICATES: Final = 64
_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"


class PemError(ValueError):
    """A bundle that cannot be used; the message says why."""


def load_certificates(data: bytes, what: str = "bundle") -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order; at least one."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise PemError(f"{what}: larger than {MAX_BUNDLE_BYTES} bytes")
    count = data.count(_BEGIN)
    if count == 0:
        raise PemError(f"{what}: no PEM certificate")
    if count > MAX_CERTIFICATES:
        raise PemError(f"{what}: more than {MAX_CERTIFICATES} certificates")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise PemError(f"{what}: not a PEM certificate bundle ({error})") from None


def certificates_pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _san(certificate: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def uri_sans(certificate: x509.Certificate) -> list[str]:
    san = _san(certificate)
    return [] if san is None else list(san.get_values_for_type(x509.UniformResourceIdentifier))


def dns_sans(certificate: x509.Certificate) -> list[str]:
    san = _san(certificate)
    return [] if san is None else list(san.get_values_for_type(x509.DNSName))


def ip_sans(certificate: x509.Certificate) -> list[str]:
    san = _san(certificate)
    return [] if san is None else [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER, hex: how a root is named in logs and state files."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """What `mizzen ca inspect` and `proxy-config secret` show of a certificate."""

    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    is_ca: bool
    uris: tuple[str, ...]
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    fingerprint: str

    def lines(self) -> list[str]:
        rows = [
            f"subject:     {self.subject or '(empty)'}",
            f"issuer:      {self.issuer}",
            f"serial:      {self.serial}",
            f"not before:  {self.not_before.isoformat()}",
            f"not after:   {self.not_after.isoformat()}",
            f"CA:          {'yes' if self.is_ca else 'no'}",
            f"sha256:      {self.fingerprint}",
        ]
        if self.uris:
            rows.append(f"URI SANs:    {', '.join(self.uris)}")
        if self.dns or self.ips:
            rows.append(f"DNS/IP SANs: {', '.join((*self.dns, *self.ips))}")
        return rows


def summarize(certificate: x509.Certificate) -> CertificateSummary:
    return CertificateSummary(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial=serial_hex(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=is_ca(certificate),
        uris=tuple(uri_sans(certificate)),
        dns=tuple(dns_sans(certificate)),
        ips=tuple(ip_sans(certificate)),
        fingerprint=fingerprint(certificate),
    )


def general_name(host: str) -> x509.GeneralName:
    """An IP SAN for an address, a DNS SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
