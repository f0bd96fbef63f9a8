"""A secure port that requires client certificates (what ADS over mTLS needs): a workload
certificate from the mesh CA gets in and is named by its SPIFFE id; no certificate, or one from
another CA, does not get in. Python gRPC can only require client certificates or not ask for
them, so the CSR API (callers without a certificate yet) cannot share such a port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from control.cli.ca_wiring import IdentityParts, build_identity, secure_server
from control.identity.keys import KeySpec, build_csr, generate_key, private_key_pem
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.peer import peer_spiffe_id
from control.plane.ca.signer import Issued
from tests.ca.conftest import WEB

pytestmark = pytest.mark.anyio
WHO = "/mizzen.test.Peer/Who"


def _who(server: grpc.aio.Server) -> None:
    async def who(request: bytes, context: Any) -> bytes:
        identity = peer_spiffe_id(context)
        return b"" if identity is None else identity.uri.encode()

    handler = grpc.unary_unary_rpc_method_handler(who)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("mizzen.test.Peer", {"Who": handler}),)
    )


async def _parts(directory: Path) -> IdentityParts:
    settings = CaSettings(ca_dir=directory, advertise_addresses=("127.0.0.1",))
    return await asyncio.to_thread(build_identity, settings, None, CollectorRegistry())


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[tuple[IdentityParts, int]]:
    parts = await _parts(tmp_path / "ca")
    server = secure_server(
        parts, 0, [_who], host="127.0.0.1", require_client_cert=True, with_certificates=False
    )
    await server.start()
    yield parts, server.port
    await server.stop()
    parts.close()


def _workload(parts: IdentityParts) -> tuple[bytes, bytes]:
    key = generate_key(KeySpec())
    issued = parts.authority.sign(build_csr(key, WEB.uri).decode(), WEB, timedelta(hours=1))
    assert isinstance(issued, Issued)
    return private_key_pem(key), "".join(issued.chain_pem).encode()


async def _ask(port: int, roots: bytes, client: tuple[bytes, bytes] | None) -> bytes:
    key, chain = client or (None, None)
    credentials = grpc.ssl_channel_credentials(roots, key, chain)
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        answer: bytes = await channel.unary_unary(WHO)(b"", timeout=5)
        return answer


async def test_a_workload_certificate_is_named_by_its_spiffe_id(
    port: tuple[IdentityParts, int], tmp_path: Path
) -> None:
    parts, number = port
    roots = parts.authority.issuer.roots_pem.encode()
    assert await _ask(number, roots, _workload(parts)) == WEB.uri.encode()
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await _ask(number, roots, None)
    assert anonymous.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger = await _parts(tmp_path / "other")
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await _ask(number, roots, _workload(stranger))
    assert foreign.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger.close()
