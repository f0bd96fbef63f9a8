"""Shared pieces of the CA's tests: a fixed clock, a self-signed root, a plug-in intermediate,
and CSRs made the way an agent makes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from control.identity.keys import KeySpec, PrivateKey, build_csr, generate_key, private_key_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.material import CaMaterial, load_issuer, self_signed_root
from control.plane.ca.signer import Issuer

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WEB = SpiffeId("cluster.local", "shop", "web")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def root_material() -> CaMaterial:
    return self_signed_root(generate_key(KeySpec()), NOW - timedelta(days=1), "cluster.local")


@pytest.fixture(scope="session")
def issuer(root_material: CaMaterial) -> Issuer:
    return load_issuer(root_material)


def csr_for(uri: str = WEB.uri, key: PrivateKey | None = None) -> tuple[PrivateKey, str]:
    key = key or generate_key(KeySpec())
    return key, build_csr(key, uri).decode()


def intermediate_material(root: CaMaterial, now: datetime = NOW) -> CaMaterial:
    """A plug-in CA as Istio's docs make one: an intermediate under an offline root, in the
    cacerts layout (cert-chain.pem = intermediate + root)."""
    root_key = serialization.load_pem_private_key(root.ca_key, None)
    root_cert = x509.load_pem_x509_certificate(root.ca_cert)
    key = generate_key(KeySpec())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")])  # fmt: skip
    usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(root_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())  # type: ignore[arg-type]
    )  # fmt: skip
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return CaMaterial(private_key_pem(key), pem, pem + root.ca_cert, root.ca_cert)
