"""`mizzen control`'s identity ports with real TLS: a workload gets its certificate from the CA
port (token-authenticated, server-only TLS), then ADS over mutual TLS on the secure port serves
it its config; a node claiming another namespace (or service account) than its certificate is
refused with PERMISSION_DENIED and counted; no client certificate, no handshake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from control.agent.csr_client import GrpcCertificateSigner
from control.cli.ca_wiring import ca_settings
from control.cli.control_identity import IdentityConfig
from control.cli.control_process import ControlPlane
from control.identity.keys import KeySpec, build_csr, generate_key, private_key_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.local_tokens import issue_token, load_or_create_token_key
from control.plane.xds.translate.resources import CLUSTER
from tests.control.planes import bookinfo_config, fast_settings

pytestmark = pytest.mark.anyio
WEB = SpiffeId("cluster.local", "default", "bookinfo-productpage")
NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = CaSettings(ca_dir=tmp_path / "ca", advertise_addresses=("127.0.0.1",))
    identity = IdentityConfig(settings, secure_port=0, ca_port=0, host="127.0.0.1")
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path)), identity=identity) as p:
        yield p


async def _workload_certificate(plane: ControlPlane, tmp_path: Path) -> tuple[bytes, bytes]:
    """What the agent does: a key in memory, a CSR and the token to the CA port."""
    assert plane.identity is not None
    ca_dir = plane.identity.config.settings.ca_dir
    assert ca_dir is not None
    token = tmp_path / "token"
    now = datetime.now(UTC)
    key_of_tokens = load_or_create_token_key(ca_dir)
    token.write_text(issue_token(key_of_tokens, WEB, "mizzen-ca", timedelta(hours=1), now))
    signer = GrpcCertificateSigner(
        f"127.0.0.1:{plane.identity.ca_port}", token, ca_dir / "root-cert.pem", 10.0
    )
    key = generate_key(KeySpec())
    chain = await signer.create_certificate(build_csr(key, WEB.uri).decode(), 3600)
    return private_key_pem(key), "".join(chain).encode()


def _roots(plane: ControlPlane) -> bytes:
    assert plane.identity is not None
    assert plane.identity.parts is not None
    return plane.identity.parts.authority.issuer.roots_pem.encode()


async def _first_response(
    port: int,
    roots: bytes,
    client: tuple[bytes, bytes] | None,
    node_id: str,
    metadata: dict[str, Any] | None = None,
) -> discovery_pb2.DiscoveryResponse:
    key, chain = client or (None, None)
    credentials = grpc.ssl_channel_credentials(roots, key, chain)
    node = base_pb2.Node(id=node_id)
    if metadata:
        struct = struct_pb2.Struct()
        struct.update(metadata)
        node.metadata.CopyFrom(struct)
    request = discovery_pb2.DiscoveryRequest(node=node, type_url=CLUSTER)

    async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        yield request
        await asyncio.sleep(30)  # keep the stream open, as a proxy does

    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
            requests()
        )
        try:
            response: discovery_pb2.DiscoveryResponse = await asyncio.wait_for(call.read(), 10)
        finally:
            call.cancel()
        return response


def _refused_count(plane: ControlPlane) -> float:
    value = plane.metrics.registry.get_sample_value("mizzen_xds_identity_refused_total")
    return value or 0.0


async def test_a_ca_issued_certificate_gets_its_config_over_mutual_tls(
    plane: ControlPlane, tmp_path: Path
) -> None:
    assert plane.identity is not None
    client = await _workload_certificate(plane, tmp_path)
    response = await _first_response(plane.identity.secure_port, _roots(plane), client, NODE)
    assert response.type_url == CLUSTER
    names = {r.value for r in response.resources}
    assert any(b"reviews.default.svc.cluster.local" in value for value in names)
    # Istio's Citadel counters follow the CA's own.
    registry = plane.metrics.registry
    assert registry.get_sample_value("citadel_server_csr_count") == 1
    assert registry.get_sample_value("citadel_server_success_cert_issuance_count") == 1
    assert registry.get_sample_value("mizzen_ca_certificates_issued_total") == 1


@pytest.mark.parametrize(
    ("node_id", "metadata", "claim"),
    [
        ("sidecar~10.244.0.10~productpage-v1-abc.shop~shop.svc.cluster.local", None, "'shop'"),
        (NODE, {"NAMESPACE": "kube-system"}, "'kube-system'"),
        (NODE, {"SERVICE_ACCOUNT": "bookinfo-reviews"}, "'bookinfo-reviews'"),
    ],
    ids=["node-id", "metadata-namespace", "metadata-service-account"],
)
async def test_a_node_impersonating_another_identity_is_refused(
    plane: ControlPlane,
    tmp_path: Path,
    node_id: str,
    metadata: dict[str, Any] | None,
    claim: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert plane.identity is not None
    client = await _workload_certificate(plane, tmp_path)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _first_response(plane.identity.secure_port, _roots(plane), client, node_id, metadata)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    details = refused.value.details() or ""
    assert claim in details
    assert WEB.uri in details
    assert _refused_count(plane) == 1
    assert any("refusing the ADS stream" in r.getMessage() for r in caplog.records)
    async with httpx.AsyncClient(trust_env=False) as http:
        metrics = (await http.get(f"http://127.0.0.1:{plane.debug_port}/metrics")).text
    assert "mizzen_xds_identity_refused_total 1.0" in metrics


async def test_a_hostile_node_id_is_refused_before_the_identity_check(
    plane: ControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The node's own checks (length, printable) come first: an id with newlines and escape
    sequences is INVALID_ARGUMENT, never compared with the certificate, and whatever is logged
    of it is one short escaped line."""
    assert plane.identity is not None
    client = await _workload_certificate(plane, tmp_path)
    hostile = "sidecar~1.2.3.4~x.evil\n" + "A" * 5000 + "~\x1b[31m.svc"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _first_response(plane.identity.secure_port, _roots(plane), client, hostile)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "node.id" in (refused.value.details() or "")
    assert _refused_count(plane) == 0
    for record in caplog.records:
        message = record.getMessage()
        assert len(message) < 800
        assert "\n" not in message
        assert "\x1b" not in message


async def test_no_client_certificate_no_handshake(plane: ControlPlane) -> None:
    assert plane.identity is not None
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await _first_response(plane.identity.secure_port, _roots(plane), None, NODE)
    assert anonymous.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _refused_count(plane) == 0


async def test_the_plaintext_port_is_loopback_only_by_default(plane: ControlPlane) -> None:
    assert plane.settings.xds_address == "127.0.0.1"
    assert plane.identity is not None
    assert "secure=" in plane.ports_line()
    assert "ca=" in plane.ports_line()


def test_ca_flags_without_a_ca_are_refused() -> None:
    """The flags are parsed by `ca_settings` (named in errors); a bad one is a clear error."""
    import argparse

    from control.cli.control_cmd import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--config-dir", ".", "--ca-dir", "/tmp/x", "--ca-rsa-bits", "512"])
    with pytest.raises(ValueError, match="--ca-rsa-bits"):
        ca_settings(args, kube=False)
