"""A self-signed CA and a serving certificate for running the webhook locally.

For development only: the CA key sits next to the certificates. In a cluster the serving
certificate comes from a Secret (cert-manager, or the control plane's own CA).
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.tls import Clock, utc_now

CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_KEY_FILE = "ca.key"
VALIDITY = timedelta(days=365)
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class DevCertificates:
    cert_file: Path
    key_file: Path
    ca_file: Path

    @property
    def ca_bundle(self) -> str:
        """The CA as a webhook configuration's `caBundle`: base64 of the PEM."""
        return base64.b64encode(self.ca_file.read_bytes()).decode("ascii")


def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names the API server may use to reach a Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mizzen development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (a temporary file renamed over the target) with the given mode."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def issue(
    directory: Path,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
    clock: Clock = utc_now,
) -> DevCertificates:
    """Write a new CA (`ca.crt`, `ca.key`) and a serving pair (`tls.crt`, `tls.key`) for the
    names and addresses given, replacing any there."""
    directory.mkdir(parents=True, exist_ok=True)
    now = clock() - timedelta(minutes=5)  # tolerate a little clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("mizzen development CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = issue_serving(ca_cert, ca_key, dns_names, ip_addresses, now=now)
    _write(directory / CA_KEY_FILE, _pem_key(ca_key), 0o600)
    _write(directory / CA_FILE, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(directory / KEY_FILE, leaf[1], 0o600)
    _write(directory / CERT_FILE, leaf[0], 0o644)
    return DevCertificates(directory / CERT_FILE, directory / KEY_FILE, directory / CA_FILE)


def issue_serving(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    *,
    now: datetime,
    validity: timedelta = VALIDITY,
) -> tuple[bytes, bytes]:
    """A serving certificate signed by the CA: (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0] if dns_names else "mizzen-webhook"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def existing(directory: Path, clock: Clock = utc_now) -> DevCertificates | None:
    """The development certificates already in `directory`: None unless all three files are
    there and the serving certificate is good for at least another day."""
    found = DevCertificates(directory / CERT_FILE, directory / KEY_FILE, directory / CA_FILE)
    if not all(path.is_file() for path in (found.cert_file, found.key_file, found.ca_file)):
        return None
    try:
        serving = x509.load_pem_x509_certificate(found.cert_file.read_bytes())
    except ValueError:
        return None
    if serving.not_valid_after_utc < clock() + timedelta(days=1):
        return None
    return found


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The development CA written by `issue` (to sign further serving certificates)."""
    cert = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
    key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / CA_KEY_FILE} is not an EC private key")
    return cert, key
