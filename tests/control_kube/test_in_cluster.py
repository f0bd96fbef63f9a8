"""In a pod the source reaches the API server as Kubernetes arranges it: HTTPS to
`KUBERNETES_SERVICE_HOST:PORT`, the server's certificate verified against the mounted `ca.crt`,
the mounted `token` as bearer, re-read after the kubelet rotates it. Against the fake API server
over real TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from control.plane.sources.kube import KubeSource, KubeSyncError, kube_client
from tests.control_kube.conftest import FAST, TOKEN
from tests.control_kube.fake_apiserver import FakeApiServer

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    server_context: ssl.SSLContext


def _pki(directory: Path, name: str) -> Pki:
    """A cluster CA and the API server's certificate for 127.0.0.1 (as kubeadm issues it)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("kubernetes")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}-server.pem", directory / f"{name}-server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return Pki(ca.public_bytes(serialization.Encoding.PEM), context)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return _pki(tmp_path, "cluster")


@pytest.fixture
def https_fake(pki: Pki) -> Iterator[FakeApiServer]:
    with FakeApiServer(token=TOKEN, tls=pki.server_context) as server:
        server.apply(NAMESPACE)
        yield server


def _service_account(directory: Path, ca_pem: bytes, token: str) -> Path:
    """What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount."""
    mounted = directory / "serviceaccount"
    mounted.mkdir(exist_ok=True)
    (mounted / "ca.crt").write_bytes(ca_pem)
    (mounted / "token").write_text(token)
    return mounted


def _environ(fake: FakeApiServer) -> dict[str, str]:
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(fake.port)}


def _sync(fake: FakeApiServer, mounted: Path) -> list[str]:
    api = kube_client(None, service_account_dir=mounted, environ=_environ(fake))
    try:
        assert api.configuration.host == fake.url
        settings = FAST.model_copy(update={"sync_timeout": 0.5})
        return list(KubeSource(api, settings=settings).load().namespaces)
    finally:
        api.close()  # type: ignore[no-untyped-call]


def test_in_cluster_the_source_lists_over_https_with_the_mounted_token_and_ca(
    https_fake: FakeApiServer, pki: Pki, tmp_path: Path
) -> None:
    assert https_fake.url.startswith("https://")
    assert _sync(https_fake, _service_account(tmp_path, pki.ca_pem, TOKEN)) == ["shop"]


def test_a_server_the_mounted_ca_did_not_sign_is_refused(
    https_fake: FakeApiServer, tmp_path: Path
) -> None:
    stranger = _pki(tmp_path, "stranger")
    with pytest.raises(KubeSyncError, match="CERTIFICATE_VERIFY_FAILED"):
        _sync(https_fake, _service_account(tmp_path, stranger.ca_pem, TOKEN))


def test_a_wrong_mounted_token_gets_the_servers_401(
    https_fake: FakeApiServer, pki: Pki, tmp_path: Path
) -> None:
    with pytest.raises(KubeSyncError, match="HTTP 401"):
        _sync(https_fake, _service_account(tmp_path, pki.ca_pem, "a-stale-token"))
