"""CreateCertificate end to end: a real gRPC client over TLS to the secure server, in local mode
(the CA and its token issuer in a directory), as an agent would call it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry

from control.cli.ca_wiring import IdentityParts, build_identity, secure_server
from control.identity import certapi
from control.identity.keys import KeySpec, build_csr, generate_key
from control.identity.pem import dns_sans, ip_sans, issued_by, load_certificates, uri_sans
from control.identity.spiffe import SpiffeId
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.local_tokens import issue_token, load_or_create_token_key
from control.plane.ca.root_rotation import rotate
from control.plane.ca.secure_port import SecureGrpcServer, SecureServerOptions
from control.plane.ca.service import CertificateService, ServiceLimits
from tests.ca.conftest import WEB

pytestmark = pytest.mark.anyio


@dataclass
class Ca:
    parts: IdentityParts
    server: SecureGrpcServer
    ca_dir: Path
    registry: CollectorRegistry

    @property
    def roots(self) -> bytes:
        return (self.ca_dir / "root-cert.pem").read_bytes()

    def sample(self, name: str, **labels: str) -> float:
        return float(self.registry.get_sample_value(name, labels) or 0.0)


@pytest.fixture
async def ca(tmp_path: Path) -> AsyncIterator[Ca]:
    settings = CaSettings(ca_dir=tmp_path / "ca", advertise_addresses=("127.0.0.1",))
    registry = CollectorRegistry()
    parts = await asyncio.to_thread(build_identity, settings, None, registry)
    server = secure_server(parts, 0, host="127.0.0.1")
    await server.start()
    yield Ca(parts, server, tmp_path / "ca", registry)
    await server.stop()
    parts.close()


def _token(ca_dir: Path, identity: SpiffeId = WEB, audience: str = "mizzen-ca",
           ttl: timedelta = timedelta(hours=1), now: datetime | None = None) -> str:  # fmt: skip
    key = load_or_create_token_key(ca_dir)
    return issue_token(key, identity, audience, ttl, now or datetime.now(UTC))


async def _call(
    port: int, roots: bytes, csr: str, token: str | None, ttl: int = 3600, host: str = "127.0.0.1"
) -> Any:
    metadata = [("authorization", f"Bearer {token}")] if token else []
    options = [("grpc.ssl_target_name_override", host)] if host != "127.0.0.1" else []
    credentials = grpc.ssl_channel_credentials(roots)
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials, options) as channel:
        call = channel.unary_unary(
            certapi.METHOD_PATH,
            request_serializer=certapi.serialize,
            response_deserializer=certapi.parse_response,
        )
        return await call(certapi.new_request(csr, ttl), metadata=metadata, timeout=10)


def _csr(uri: str = WEB.uri) -> str:
    return build_csr(generate_key(KeySpec()), uri).decode()


async def test_a_certificate_over_tls(ca: Ca) -> None:
    server, ca_dir, roots = ca.server, ca.ca_dir, ca.roots
    response = await _call(server.port, roots, _csr(), _token(ca_dir), ttl=600)
    leaf, root = (load_certificates(pem.encode())[0] for pem in response.cert_chain)
    assert uri_sans(leaf) == [WEB.uri]
    assert root == load_certificates(roots)[0]
    assert issued_by(leaf, root)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(minutes=12)
    assert ca.sample("mizzen_ca_certificates_issued_total") == 1


@pytest.mark.parametrize(
    ("case", "code", "text", "reason"),
    [
        ("no token", grpc.StatusCode.UNAUTHENTICATED, "no bearer token", "no_token"),
        ("expired token", grpc.StatusCode.UNAUTHENTICATED, "expired", "expired_token"),
        ("wrong audience", grpc.StatusCode.UNAUTHENTICATED, "audience", "wrong_audience"),
        ("forged token", grpc.StatusCode.UNAUTHENTICATED, "bad signature", "bad_token"),
        (
            "another identity",
            grpc.StatusCode.PERMISSION_DENIED,
            "may only have",
            "identity_mismatch",
        ),
        ("weak key", grpc.StatusCode.INVALID_ARGUMENT, "too weak", "weak_key"),
        ("negative lifetime", grpc.StatusCode.INVALID_ARGUMENT, "must be > 0", "bad_lifetime"),
        ("CSR over 64 KiB", grpc.StatusCode.INVALID_ARGUMENT, "CSR of", "csr_too_large"),
        ("not a CSR", grpc.StatusCode.INVALID_ARGUMENT, "not a PEM", "csr_unparseable"),
    ],
)
async def test_refusals_carry_a_status_and_a_clear_message(
    ca: Ca, case: str, code: grpc.StatusCode,
    text: str, reason: str,
) -> None:  # fmt: skip
    server, ca_dir, roots = ca.server, ca.ca_dir, ca.roots
    token: str | None = _token(ca_dir)
    csr, ttl = _csr(), 3600
    if case == "no token":  # from loopback: no exception for local callers
        token = None
    elif case == "expired token":
        token = _token(ca_dir, now=datetime.now(UTC) - timedelta(hours=2))
    elif case == "wrong audience":
        token = _token(ca_dir, audience="kubernetes")
    elif case == "forged token":
        assert token is not None
        token = token[:-8] + ("AAAAAAAA" if not token.endswith("AAAAAAAA") else "BBBBBBBB")
    elif case == "another identity":
        csr = _csr("spiffe://cluster.local/ns/kube-system/sa/admin")
    elif case == "weak key":
        weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the point of the case
        csr = build_csr(weak, WEB.uri).decode()
    elif case == "negative lifetime":
        ttl = -5
    elif case == "CSR over 64 KiB":
        csr = csr + "\n" * 70000
    elif case == "not a CSR":
        csr = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(server.port, roots, csr, token, ttl=ttl)
    assert refused.value.code() == code
    assert text in (refused.value.details() or "")
    assert (refused.value.details() or "").startswith(reason)
    assert ca.sample("mizzen_ca_requests_refused_total", reason=reason) == 1
    assert ca.sample("mizzen_ca_certificates_issued_total") == 0


async def test_the_serving_certificate_names_the_service_and_is_checked(
    ca: Ca,
) -> None:
    parts, server, ca_dir = ca.parts, ca.server, ca.ca_dir
    leaf = parts.serving.leaf
    assert dns_sans(leaf) == [
        "mizzen", "mizzen.mizzen-system", "mizzen.mizzen-system.svc",
        "mizzen.mizzen-system.svc.cluster.local",
    ]  # fmt: skip
    assert ip_sans(leaf) == ["127.0.0.1"]
    roots = (ca_dir / "root-cert.pem").read_bytes()
    token = _token(ca_dir)
    ok = await _call(server.port, roots, _csr(), token, host="mizzen.mizzen-system.svc")
    assert ok.cert_chain
    with pytest.raises(grpc.aio.AioRpcError) as wrong_name:
        await _call(server.port, roots, _csr(), token, host="evil.example.com")
    assert wrong_name.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger = (await asyncio.to_thread(_stranger_root, ca_dir.parent)).read_bytes()
    with pytest.raises(grpc.aio.AioRpcError) as untrusted:
        await _call(server.port, stranger, _csr(), token)
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


def _stranger_root(where: Path) -> Path:
    other = CaSettings(ca_dir=where / "other")
    build_identity(other, None, CollectorRegistry()).close()
    return where / "other" / "root-cert.pem"


class _HeldAuthenticator:
    """Authenticates only when released, so calls pile up."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def authenticate(self, token: str) -> SpiffeId:
        self.release.wait(10)
        return WEB


async def test_a_storm_is_bounded(ca: Ca) -> None:
    parts, roots = ca.parts, ca.roots
    held = _HeldAuthenticator()
    service = CertificateService(parts.authority, held, parts.metrics, ServiceLimits(max_pending=3))
    options = SecureServerOptions(port=0, host="127.0.0.1")
    server = SecureGrpcServer(parts.serving, [service.register], options)
    await server.start()
    try:
        waiting = [asyncio.create_task(_call(server.port, roots, _csr(), "t")) for _ in range(3)]
        await asyncio.sleep(0.5)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(server.port, roots, _csr(), "t")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        held.release.set()
        assert all(r.cert_chain for r in await asyncio.gather(*waiting))
        assert ca.sample("mizzen_ca_requests_refused_total", reason="overloaded") == 1
    finally:
        held.release.set()
        await server.stop()
        service.close()


async def test_new_connections_get_a_serving_certificate_from_a_rotated_root(
    ca: Ca,
) -> None:
    parts, server, ca_dir = ca.parts, ca.server, ca.ca_dir
    old_leaf = parts.serving.leaf
    rotate(ca_dir, "add", datetime.now(UTC))
    rotate(ca_dir, "activate", datetime.now(UTC))
    assert parts.authority.reload()
    assert parts.serving.refresh()  # the CA changed: re-issued at once
    new_leaf = parts.serving.leaf
    new_root = x509.load_pem_x509_certificate((ca_dir / "ca-cert.pem").read_bytes())
    assert issued_by(new_leaf, new_root)
    assert not issued_by(old_leaf, new_root)
    only_new = new_root.public_bytes(serialization.Encoding.PEM)
    response = await _call(server.port, only_new, _csr(), _token(ca_dir))
    assert issued_by(load_certificates(response.cert_chain[0].encode())[0], new_root)
