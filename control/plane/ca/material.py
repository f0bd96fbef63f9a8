"""The CA's key material in Istio's `cacerts` layout, and how it becomes an `Issuer`.

Four PEM blobs, the same in a directory and in a Secret's data:

| key              | what                                                                  |
|------------------|-----------------------------------------------------------------------|
| `ca-key.pem`     | the signing key                                                       |
| `ca-cert.pem`    | the signing certificate (the root itself, or a plug-in intermediate)  |
| `cert-chain.pem` | the chain from the signing certificate to its root (may be empty)     |
| `root-cert.pem`  | the trust bundle handed to workloads: one root, two during a rotation |

`self_signed_root` makes the default CA (pure: key, time and trust domain in, PEMs out);
`load_issuer` checks the material and refuses anything inconsistent, naming the file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from control.identity.keys import PrivateKey, load_private_key, private_key_pem, signature_hash
from control.identity.keys import same_public_key as _same_key
from control.identity.pem import PemError, is_ca, is_self_signed, issued_by, load_certificates
from control.plane.ca.signer import Issuer

CA_KEY: Final = "ca-key.pem"
CA_CERT: Final = "ca-cert.pem"
CERT_CHAIN: Final = "cert-chain.pem"
ROOT_CERT: Final = "root-cert.pem"
FILES: Final = (CA_KEY, CA_CERT, CERT_CHAIN, ROOT_CERT)
ROOT_LIFETIME: Final = timedelta(days=3650)
MAX_FILE_BYTES: Final = 1024 * 1024


class CaMaterialError(ValueError):
    """The material cannot be used as a CA; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class CaMaterial:
    ca_key: bytes
    ca_cert: bytes
    cert_chain: bytes
    root_cert: bytes

    def as_files(self) -> dict[str, bytes]:
        return {
            CA_KEY: self.ca_key,
            CA_CERT: self.ca_cert,
            CERT_CHAIN: self.cert_chain,
            ROOT_CERT: self.root_cert,
        }

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> CaMaterial:
        missing = [name for name in (CA_KEY, CA_CERT, ROOT_CERT) if not files.get(name)]
        if missing:
            raise CaMaterialError(f"{', '.join(missing)} missing or empty")
        return cls(files[CA_KEY], files[CA_CERT], files.get(CERT_CHAIN, b""), files[ROOT_CERT])


def self_signed_root(
    key: PrivateKey,
    now: datetime,
    trust_domain: str,
    lifetime: timedelta = ROOT_LIFETIME,
    backdate: timedelta = timedelta(minutes=2),
) -> CaMaterial:
    """A self-signed root (Istio's shape: O=<trust domain>), valid from a little before `now`."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
            x509.NameAttribute(NameOID.COMMON_NAME, "mizzen root CA"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(ski, critical=False)
        .sign(key, signature_hash(key))
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    return CaMaterial(ca_key=private_key_pem(key), ca_cert=pem, cert_chain=pem, root_cert=pem)


def _certs(data: bytes, name: str) -> list[x509.Certificate]:
    try:
        return load_certificates(data, name)
    except PemError as error:
        raise CaMaterialError(str(error)) from None


def _can_sign_certificates(certificate: x509.Certificate) -> bool:
    if not is_ca(certificate):
        return False
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def load_issuer(material: CaMaterial) -> Issuer:
    """The `Issuer` of this material; raises CaMaterialError naming the file at fault."""
    try:
        key = load_private_key(material.ca_key)
    except ValueError as error:
        raise CaMaterialError(f"{CA_KEY}: {error}") from None
    certificates = _certs(material.ca_cert, CA_CERT)
    if len(certificates) != 1:
        raise CaMaterialError(f"{CA_CERT}: holds {len(certificates)} certificates, not one")
    certificate = certificates[0]
    if not _can_sign_certificates(certificate):
        raise CaMaterialError(f"{CA_CERT}: not a CA certificate allowed to sign certificates")
    if not _same_key(certificate.public_key(), key.public_key()):  # type: ignore[arg-type]
        raise CaMaterialError(f"{CA_KEY} does not match {CA_CERT}")
    roots = _certs(material.root_cert, ROOT_CERT)
    for root in roots:
        if not is_self_signed(root) or not is_ca(root):
            raise CaMaterialError(f"{ROOT_CERT}: {root.subject.rfc4514_string()} is not a root CA")
    chain = _chain(certificate, material.cert_chain, roots)
    return Issuer.create(key, certificate, chain, roots)


def _chain(
    certificate: x509.Certificate, chain_pem: bytes, roots: list[x509.Certificate]
) -> list[x509.Certificate]:
    """From the signing certificate to a root of the bundle, each link checked."""
    chain = [certificate]
    if chain_pem.strip():
        given = _certs(chain_pem, CERT_CHAIN)
        chain += given[1:] if given[0] == certificate else given
    while not is_self_signed(chain[-1]):
        parent = next((r for r in roots if issued_by(chain[-1], r)), None)
        if parent is None:
            raise CaMaterialError(
                f"{CERT_CHAIN}: the chain ends at {chain[-1].issuer.rfc4514_string()}, "
                f"which is not in {ROOT_CERT}"
            )
        chain.append(parent)
    for child, parent in itertools.pairwise(chain):
        if not issued_by(child, parent):
            raise CaMaterialError(
                f"{CERT_CHAIN}: {child.subject.rfc4514_string()} is not issued by "
                f"{parent.subject.rfc4514_string()}"
            )
    if chain[-1] not in roots:
        raise CaMaterialError(f"{CERT_CHAIN}: its root is not in {ROOT_CERT}")
    return chain
