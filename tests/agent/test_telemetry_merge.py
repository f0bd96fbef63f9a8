"""The agent's merged `/stats/prometheus` against real app servers: the app's metrics are
fetched from its annotated port and path, and a slow, huge or broken app is left out within
the bounds without delaying or breaking the mesh's metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from control.agent.telemetry.merge import AppMetrics, MetricsMerger
from control.telemetry.peer import workload_peer

pytestmark = pytest.mark.anyio

ENVOY = "# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n"
OWN = workload_peer("client", "demo", {"app": "client"})


class FakeEnvoy:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    async def prometheus(self) -> httpx.Response:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return httpx.Response(200, text=ENVOY)


Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.Server, int]:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            await handler(writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n"
    return head.encode() + body


@pytest.fixture
async def app() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server, port = await _serve(handler)
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.close()


async def test_the_apps_metrics_are_merged(app: Callable[[Handler], Awaitable[int]]) -> None:
    async def ok(writer: asyncio.StreamWriter) -> None:
        writer.write(_response(b"# TYPE app_up gauge\napp_up 1\n"))

    port = await app(ok)
    merger = MetricsMerger(FakeEnvoy(), OWN, AppMetrics(port, "/metrics"))
    status, body = await merger.render()
    await merger.aclose()
    assert status == 200
    assert "app_up 1" in body
    assert "mizzen_agent_app_metrics_up 1" in body
    assert "envoy_server_live{} 1" in body


async def test_a_slow_app_is_cut_off_at_the_timeout(
    app: Callable[[Handler], Awaitable[int]],
) -> None:
    async def slow(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\napp_")
        await writer.drain()
        await asyncio.sleep(5)

    port = await app(slow)
    merger = MetricsMerger(FakeEnvoy(), OWN, AppMetrics(port), app_timeout=0.3)
    started = time.monotonic()
    status, body = await merger.render()
    await merger.aclose()
    assert time.monotonic() - started < 1.5
    assert status == 200
    assert "mizzen_agent_app_metrics_up 0" in body
    assert "envoy_server_live" in body


async def test_a_huge_app_response_is_refused(app: Callable[[Handler], Awaitable[int]]) -> None:
    async def huge(writer: asyncio.StreamWriter) -> None:
        writer.write(_response(b"app_x 1\n" * 200_000))

    port = await app(huge)
    merger = MetricsMerger(FakeEnvoy(), OWN, AppMetrics(port), app_max_bytes=100_000)
    status, body = await merger.render()
    await merger.aclose()
    assert status == 200
    assert "mizzen_agent_app_metrics_up 0" in body
    assert "app_x" not in body


async def test_concurrent_scrapes_share_one_render() -> None:
    envoy = FakeEnvoy(delay=0.2)
    merger = MetricsMerger(envoy, OWN)
    results = await asyncio.gather(*(merger.render() for _ in range(20)))
    again = await merger.render()
    await merger.aclose()
    assert envoy.calls == 2  # the 20 at once shared one; the next one rendered afresh
    assert all(result == results[0] for result in results)
    assert again[0] == 200


async def test_no_app_listening_still_serves_the_mesh() -> None:
    merger = MetricsMerger(FakeEnvoy(), OWN, AppMetrics(1))  # nothing listens on port 1
    status, body = await merger.render()
    await merger.aclose()
    assert status == 200
    assert "mizzen_agent_app_metrics_up 0" in body


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"scrape": "true", "port": "9100", "path": "/m"}, AppMetrics(9100, "/m")),
        ({"port": "8080"}, AppMetrics(8080, "/metrics")),
        ({"scrape": "false", "port": "8080"}, None),
        ({"scrape": "true"}, None),
        ({"port": "http"}, None),
        ({"port": "70000"}, None),
    ],
)
def test_app_scrape_from_its_annotations(
    annotations: dict[str, str], expected: AppMetrics | None
) -> None:
    assert AppMetrics.from_annotations(annotations) == expected


def test_envoy_gets_the_proxy_identity_in_its_environment() -> None:
    from control.agent.settings import AgentSettings
    from control.agent.telemetry.identity import envoy_environment
    from control.telemetry.peer import Peer

    settings = AgentSettings.from_env({
        "POD_NAME": "reviews-v2-abc", "POD_NAMESPACE": "bookinfo", "INSTANCE_IP": "10.0.0.7",
        "MIZZEN_DISCOVERY_ADDRESS": "istiod:15012", "MIZZEN_WORKLOAD_NAME": "reviews-v2",
        "MIZZEN_LABELS": '{"app": "reviews", "version": "v2"}',
    })  # fmt: skip
    env = envoy_environment(settings)
    peer = Peer.decode(env["MIZZEN_PEER"])
    assert (peer.workload, peer.namespace, peer.app, peer.version) == (
        "reviews-v2", "bookinfo", "reviews", "v2"
    )  # fmt: skip
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "service.name=reviews.bookinfo"
