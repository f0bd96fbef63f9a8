"""A test CA issuing workload certificates with SPIFFE URI SANs (ECDSA P-256), as the mesh's
CA will: the server's, and one per client identity, written to files for Python's ssl."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TRUST_DOMAIN = "cluster.local"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes
    cert_path: Path
    key_path: Path


class MeshCA:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mizzen-test")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=2))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.cert_path = directory / "ca.pem"
        self.cert_path.write_bytes(self.cert_pem)
        self._issued: dict[str, Issued] = {}

    def issue(self, spiffe_path: str, dns: str | None = None) -> Issued:
        """A leaf for `spiffe://<spiffe_path>` (e.g. `cluster.local/ns/foo/sa/bar`)."""
        found = self._issued.get(spiffe_path)
        if found is not None:
            return found
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier("spiffe://" + spiffe_path)]
        if dns:
            sans.append(x509.DNSName(dns))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=2))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        stem = f"leaf{len(self._issued)}"
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        issued = Issued(
            cert_pem, _pem_key(key), self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        )
        issued.cert_path.write_bytes(cert_pem)
        issued.key_path.write_bytes(issued.key_pem)
        self._issued[spiffe_path] = issued
        return issued
