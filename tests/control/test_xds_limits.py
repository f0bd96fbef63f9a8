"""The xDS listener under a connection flood: connections over the cap are closed at accept,
connections that never speak HTTP/2 are closed at the handshake deadline, a connected proxy
keeps its stream and its pushes, and a new proxy is served once the flood's slots are freed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from control.cli.control_identity import IdentityConfig
from control.cli.control_process import ControlPlane
from control.plane.ca.ca_settings import CaSettings
from control.plane.xds.translate.resources import CLUSTER, ROUTE
from tests.control.ads_client import AdsClient
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.test_file_source_last_good import NODE, _replace, _subscribed

pytestmark = pytest.mark.anyio
OTHER = "sidecar~10.244.0.11~ratings-v1-abc.default~default.svc.cluster.local"


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (what it sends, such as its
    HTTP/2 settings, is read and ignored)."""

    async def closed() -> None:
        while await reader.read(4096):
            pass

    try:
        await asyncio.wait_for(closed(), seconds)
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def test_a_connection_flood_is_bounded_and_proxies_keep_their_config(
    tmp_path: Path,
) -> None:
    config = bookinfo_config(tmp_path)
    settings = fast_settings(config, xds_max_connections=4, xds_handshake_timeout=1.0)
    async with ControlPlane(settings) as plane:
        proxy = AdsClient(plane.xds_port, NODE)
        try:
            await _subscribed(proxy)
            flood = [await asyncio.open_connection("127.0.0.1", plane.xds_port) for _ in range(12)]
            started = time.monotonic()
            # Only three slots are left: at least nine of the twelve are closed at once.
            over = await asyncio.gather(*(_closed_within(r, 0.5) for r, _ in flood))
            assert sum(over) >= 9, over
            # The rest never send the HTTP/2 preface: closed at the handshake deadline.
            assert all(await asyncio.gather(*(_closed_within(r, 3) for r, _ in flood)))
            assert time.monotonic() - started < 3.5
            # The connected proxy kept its stream: a change still reaches it.
            mesh = config / "mesh.yaml"
            _replace(mesh, mesh.read_text().replace("weight: 80", "weight: 70").replace(
                "weight: 20", "weight: 30"))  # fmt: skip
            assert (await proxy.recv(10)).type_url == ROUTE
            # And a new proxy gets a slot now that the flood's are free.
            newcomer = AdsClient(plane.xds_port, OTHER)
            try:
                await _subscribed(newcomer)
            finally:
                await newcomer.close()
        finally:
            await proxy.close()
            for _, writer in flood:
                writer.close()


async def test_a_ping_flood_is_sent_away(tmp_path: Path) -> None:
    """Keepalive enforcement: a client pinging every 200 ms (each ping costs the server a
    write) gets GOAWAY (too_many_pings) after a few; Envoy's 30 s keepalive is far inside
    the 10 s minimum."""
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as plane:
        options = [
            ("grpc.enable_http_proxy", 0),
            ("grpc.keepalive_time_ms", 200),
            ("grpc.keepalive_timeout_ms", 1000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{plane.xds_port}", options) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
            request.node.id = NODE

            async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
                yield request
                await asyncio.sleep(30)

            call = stub.StreamAggregatedResources(requests())
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async for _ in call:
                    pass
            assert time.monotonic() - started < 10
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            assert ended.value.details() == "Too many pings"


@pytest.mark.slow
async def test_a_quiet_proxy_pinging_at_keepalive_pace_keeps_its_stream(tmp_path: Path) -> None:
    """Envoy pings its ADS connection every 30 s, data or not. gRPC's default minimum between
    a client's pings is 5 minutes: each ping on a quiet stream was a strike, and the third sent
    the proxy away (GOAWAY too_many_pings, every ~2 minutes in a quiet mesh). Pings 11 s apart
    (3 within the test) must be accepted, and the stream kept."""
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as plane:
        options = [
            ("grpc.enable_http_proxy", 0),
            ("grpc.keepalive_time_ms", 11_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{plane.xds_port}", options) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
            request.node.id = NODE

            async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
                yield request
                await asyncio.sleep(3600)

            call = stub.StreamAggregatedResources(requests())

            async def read() -> None:
                async for _ in call:
                    pass

            with pytest.raises(TimeoutError):  # still open: nothing ended it
                await asyncio.wait_for(read(), 38)


async def test_huge_call_metadata_is_refused_and_the_server_serves_on(tmp_path: Path) -> None:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as plane:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{plane.xds_port}", [("grpc.enable_http_proxy", 0)]
        ) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
            request.node.id = NODE
            call = stub.StreamAggregatedResources(
                iter([request]), metadata=[("x-padding", "p" * 64 * 1024)]
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                async for _ in call:
                    pass
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "metadata size exceeds" in (refused.value.details() or "")
        proxy = AdsClient(plane.xds_port, NODE)
        try:
            await _subscribed(proxy)
        finally:
            await proxy.close()


async def test_the_secure_ports_follow_the_xds_limits(tmp_path: Path) -> None:
    """15012 and 15013 are built with the plaintext port's `GrpcLimits`: over the connection
    cap a connection is closed at accept, and one that never starts TLS is closed at the
    handshake deadline."""
    settings = fast_settings(
        bookinfo_config(tmp_path), xds_max_connections=2, xds_handshake_timeout=1.0
    )
    identity = IdentityConfig(
        CaSettings(ca_dir=tmp_path / "ca"), secure_port=0, ca_port=0, host="127.0.0.1"
    )
    async with ControlPlane(settings, identity=identity) as plane:
        assert plane.identity is not None
        for port in (plane.identity.secure_port, plane.identity.ca_port):
            flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(6)]
            try:
                started = time.monotonic()
                over = await asyncio.gather(*(_closed_within(r, 0.5) for r, _ in flood))
                assert sum(over) >= 4, (port, over)
                assert all(await asyncio.gather(*(_closed_within(r, 3) for r, _ in flood)))
                assert time.monotonic() - started < 3.5
            finally:
                for _, writer in flood:
                    writer.close()
