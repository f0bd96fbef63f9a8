"""Pushes over ADS reach only the proxies a change concerns, and a proxy that stops reading
its stream never delays the others."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from control.cli.control_process import ControlPlane, ControlSettings
from control.plane.xds.translate.resources import CLUSTER, ROUTE
from hack.bench.baseline import baseline_plane
from tests.control.ads_client import AdsClient
from tests.control.planes import fast_settings
from tests.control.waiting import eventually

pytestmark = pytest.mark.anyio

MESH = Path(__file__).parent / "testdata" / "scoping" / "mesh.yaml"
NODES = {
    "productpage-1.shop": "sidecar~10.244.0.10~productpage-1.shop~shop.svc.cluster.local",
    "client-1.other": "sidecar~10.244.1.10~client-1.other~other.svc.cluster.local",
    "wanderer.open": "sidecar~10.244.3.10~wanderer.open~open.svc.cluster.local",
}


def _settings(config: Path, **extra: object) -> ControlSettings:
    return fast_settings(config, **extra)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    directory.mkdir()
    shutil.copy(MESH, directory / "mesh.yaml")
    return directory


async def _subscribe(client: AdsClient) -> None:
    client.send(CLUSTER)
    client.ack(await client.recv())
    client.send(ROUTE, names=["9080"])
    client.ack(await client.recv(), names=["9080"])


async def test_a_virtual_service_change_wakes_only_proxies_that_see_it(config: Path) -> None:
    async with ControlPlane(_settings(config)) as plane:
        clients = {key: AdsClient(plane.xds_port, node) for key, node in NODES.items()}
        try:
            for client in clients.values():
                await _subscribe(client)

            async def all_in_sync() -> bool:
                status = plane.sync.syncz()
                return len(status) == 3 and all(s["inSync"] for s in status.values())

            await eventually(all_in_sync, what="three proxies in sync")
            before = {k: s["pushes"] for k, s in plane.sync.syncz().items()}

            mesh = config / "mesh.yaml"
            mesh.write_text(mesh.read_text().replace("weight: 80", "weight: 60"))
            for key in ("productpage-1.shop", "wanderer.open"):
                pushed = await clients[key].recv()
                assert pushed.type_url == ROUTE
                clients[key].ack(pushed, names=["9080"])
            assert await clients["client-1.other"].nothing_within(0.5)
            await eventually(all_in_sync, what="in sync after the change")
            after = {k: s["pushes"] for k, s in plane.sync.syncz().items()}
            assert after["productpage-1.shop"] == before["productpage-1.shop"] + 1
            assert after["wanderer.open"] == before["wanderer.open"] + 1
            assert after["client-1.other"] == before["client-1.other"]  # never woken
            push = plane.cache.last_push
            assert (push.pushed, push.proxies) == (2, 3)
            assert push.change["configs"] == ["VirtualService shop"]
        finally:
            for client in clients.values():
                await client.close()


async def test_without_scoping_every_proxy_gets_every_change(config: Path) -> None:
    async with baseline_plane(_settings(config), None) as plane:
        other = AdsClient(plane.xds_port, NODES["client-1.other"])
        try:
            await _subscribe(other)
            mesh = config / "mesh.yaml"
            mesh.write_text(mesh.read_text().replace("weight: 80", "weight: 60"))
            pushed = {(await other.recv()).type_url for _ in range(2)}
            assert pushed == {CLUSTER, ROUTE}  # same content, pushed anyway: the baseline
        finally:
            await other.close()


def _big_mesh(services: int, port: int) -> str:
    """Enough clusters that one response overflows a stalled client's HTTP/2 window."""
    return "\n---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: bulk}}\n"
        f"spec: {{clusterIP: 10.97.{i // 250}.{i % 250 + 1}, selector: {{app: s{i}}}, "
        f"ports: [{{name: http, port: 8080}}, {{name: tcp-x, port: {port}}}]}}"
        for i in range(services)
    )


@contextlib.asynccontextmanager
async def _stalled_proxy(port: int, node: str) -> AsyncIterator[None]:
    """Asks for clusters and never reads a response: no flow-control credit goes back."""
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.enable_http_proxy", 0), ("grpc.http2.bdp_probe", 0),
                 ("grpc.http2.lookahead_bytes", 1024)],
    )  # fmt: skip
    request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
    request.node.id = node
    gate = asyncio.Event()

    async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        yield request
        await gate.wait()

    call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
        requests()
    )
    try:
        yield
    finally:
        gate.set()
        call.cancel()
        await channel.close()


async def _follow(client: AdsClient, arrivals: dict[str, float]) -> None:
    """A healthy proxy: reads, ACKs, and notes when each version arrived."""
    while True:
        response = await client.recv(timeout=30)
        arrivals[response.version_info] = time.monotonic()
        client.ack(response)


async def test_a_stalled_proxy_never_delays_the_others(config: Path) -> None:
    (config / "bulk.yaml").write_text(_big_mesh(250, 9000))
    # One push slot: the stalled stream must give it back for the others to get anything.
    settings = _settings(config, max_concurrent_pushes=1, send_timeout=0.2)
    async with ControlPlane(settings) as plane:
        healthy = [
            AdsClient(plane.xds_port, f"sidecar~10.8.0.{i}~ok-{i}.bulk~bulk.svc.cluster.local")
            for i in range(3)
        ]
        arrivals: list[dict[str, float]] = [{} for _ in healthy]
        followers = []
        stalled_node = "sidecar~10.8.1.1~stuck.bulk~bulk.svc.cluster.local"
        async with _stalled_proxy(plane.xds_port, stalled_node):
            try:
                for client in healthy:
                    client.send(CLUSTER)
                followers = [
                    asyncio.create_task(_follow(c, a))
                    for c, a in zip(healthy, arrivals, strict=True)
                ]

                async def stuck() -> bool:
                    status = plane.sync.syncz().get("stuck.bulk")
                    return bool(status and status["slow"])

                await eventually(stuck, timeout=10, what="the stalled proxy's send to block")
                delays = []
                for change in range(1, 4):
                    previous = plane.cache.last_push.version
                    (config / "bulk.yaml").write_text(_big_mesh(250, 9000 + change))
                    written = time.monotonic()

                    async def converged(previous: str = previous) -> bool:
                        push = plane.cache.last_push.version
                        return push != previous and all(push in a for a in arrivals)

                    await eventually(converged, timeout=5, what=f"change {change} everywhere")
                    push = plane.cache.last_push.version
                    delays.append(max(a[push] for a in arrivals) - written)
                status = plane.sync.syncz()
                assert status["stuck.bulk"]["slow"]
                assert not status["stuck.bulk"]["inSync"]
                assert all(status[f"ok-{i}.bulk"]["inSync"] for i in range(3))
                # Without the slot given back a change would wait for the stall to end (never,
                # here: `converged` would time out); the bound leaves room for a loaded machine.
                assert max(delays) < 2.5, delays
                assert plane.metrics.slow_sends._value.get() >= 1
            finally:
                for task in followers:
                    task.cancel()
                for client in healthy:
                    await client.close()
