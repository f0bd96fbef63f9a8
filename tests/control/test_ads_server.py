"""The ADS server (State of the World) driven by a Python client: responses, ACK/NACK tracking,
stale nonces, subscriptions by name, pushes of changed types only, consistency refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from control.cli.control_process import ControlPlane, ControlSettings
from control.plane.model.state import MeshState
from control.plane.xds.cache.versions import VersionSequence
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, Resources
from tests.control.ads_client import AdsClient
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.translations import plane_translating_with
from tests.control.waiting import eventually

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "testdata" / "translate" / "bookinfo"
NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
REVIEWS = "outbound|9080||reviews.default.svc.cluster.local"
REVIEWS_V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"


class SwitchableTranslator:
    """The real translation, or (when `dangling`) one whose route points at a missing cluster."""

    def __init__(self) -> None:
        self.dangling = False

    def __call__(self, state: MeshState, proxy: Proxy) -> Resources:
        resources = translate(state, proxy)
        if not self.dangling:
            return resources
        by_type = {t: list(resources.of(t).values()) for t in resources.by_type}
        by_type[CLUSTER] = [c for c in by_type[CLUSTER] if c.name != REVIEWS_V1]  # type: ignore[attr-defined]
        return Resources.of_messages(by_type)


@pytest.fixture
def translator() -> SwitchableTranslator:
    return SwitchableTranslator()


@pytest.fixture
async def plane(tmp_path: Path, translator: SwitchableTranslator) -> AsyncIterator[ControlPlane]:
    settings = fast_settings(bookinfo_config(tmp_path))
    async with plane_translating_with(settings, translator) as running:
        yield running


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[AdsClient]:
    ads = AdsClient(plane.xds_port, NODE)
    yield ads
    await ads.close()


async def _syncz(plane: ControlPlane) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(f"http://127.0.0.1:{plane.debug_port}/debug/syncz")
    data: dict[str, Any] = response.json()
    return data


def _names(response: Any) -> set[str]:
    from google.protobuf import any_pb2  # noqa: F401 - resources are Any

    out = set()
    for item in response.resources:
        if item.type_url == ENDPOINT:
            from envoy.config.endpoint.v3 import endpoint_pb2

            cla = endpoint_pb2.ClusterLoadAssignment()
            item.Unpack(cla)
            out.add(cla.cluster_name)
        else:
            from envoy.config.cluster.v3 import cluster_pb2
            from envoy.config.listener.v3 import listener_pb2
            from envoy.config.route.v3 import route_pb2

            message = {CLUSTER: cluster_pb2.Cluster, LISTENER: listener_pb2.Listener,
                       ROUTE: route_pb2.RouteConfiguration}[item.type_url]()  # fmt: skip
            item.Unpack(message)
            out.add(message.name)
    return out


async def test_full_state_on_first_request_whatever_version_and_ack_tracked(
    plane: ControlPlane, client: AdsClient
) -> None:
    client.send(CLUSTER, version="some-old-version-from-a-previous-control-plane")
    response = await client.recv()
    assert response.type_url == CLUSTER
    assert {REVIEWS, REVIEWS_V1, "PassthroughCluster", "inbound|9080||"} <= _names(response)
    assert response.version_info.startswith(plane.cache.versions.prefix + "-")
    assert response.nonce
    client.ack(response)

    async def acked() -> dict[str, Any] | None:
        proxy = (await _syncz(plane)).get("productpage-v1-abc.default")
        cds = proxy["types"].get("cds") if proxy else None
        return proxy if cds and cds["acked"] == response.version_info else None

    proxy = await eventually(acked, what="the ACK in syncz")
    assert proxy["proxy"] == NODE
    assert proxy["types"]["cds"]["nacked"] is None

    # A second stream reporting exactly the current version still gets everything.
    again = AdsClient(plane.xds_port, NODE)
    try:
        again.send(CLUSTER, version=response.version_info)
        second = await again.recv()
        assert _names(second) == _names(response)
        assert second.nonce != response.nonce
    finally:
        await again.close()


async def test_named_subscriptions_and_stale_nonces(client: AdsClient) -> None:
    client.send(ENDPOINT, names=[REVIEWS])
    first = await client.recv()
    assert _names(first) == {REVIEWS}
    client.send(
        ENDPOINT, version=first.version_info, nonce="not-our-nonce", names=[REVIEWS, REVIEWS_V1]
    )
    assert await client.nothing_within(0.3)  # stale: ignored
    client.send(
        ENDPOINT, version=first.version_info, nonce=first.nonce, names=[REVIEWS, REVIEWS_V1]
    )
    second = await client.recv()
    assert _names(second) == {REVIEWS, REVIEWS_V1}
    client.ack(second, names=[REVIEWS, REVIEWS_V1])
    assert await client.nothing_within(0.3)  # a plain ACK gets no answer


async def test_a_change_pushes_only_the_types_that_changed(
    plane: ControlPlane, client: AdsClient
) -> None:
    responses = {}
    for type_url in (CLUSTER, LISTENER):
        client.send(type_url)
        responses[type_url] = await client.recv()
        client.ack(responses[type_url])
    client.send(ROUTE, names=["9080"])
    responses[ROUTE] = await client.recv()
    client.ack(responses[ROUTE], names=["9080"])
    assert await client.nothing_within(0.2)

    assert plane.settings.config_dir is not None

    mesh = plane.settings.config_dir / "mesh.yaml"
    mesh.write_text(
        mesh.read_text().replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30")
    )
    pushed = await client.recv()
    assert pushed.type_url == ROUTE
    assert pushed.version_info != responses[ROUTE].version_info
    assert await client.nothing_within(0.4)  # clusters and listeners did not change


async def test_nack_is_recorded_exposed_and_not_resent(
    plane: ControlPlane, client: AdsClient
) -> None:
    client.send(CLUSTER)
    response = await client.recv()
    client.send(CLUSTER, version="", nonce=response.nonce, error="cluster foo: bad config")
    assert await client.nothing_within(0.3)

    async def nacked() -> dict[str, Any] | None:
        proxy = (await _syncz(plane)).get("productpage-v1-abc.default")
        cds = proxy["types"]["cds"] if proxy else None
        return cds if cds and cds["nacked"] else None

    cds = await eventually(nacked, what="the NACK")
    assert cds["nacked"] == response.version_info
    assert cds["nackError"] == "cluster foo: bad config"
    assert cds["acked"] is None
    async with httpx.AsyncClient(trust_env=False) as http:
        metrics = (await http.get(f"http://127.0.0.1:{plane.debug_port}/metrics")).text
    assert 'mizzen_xds_nacks_total{type="cds"} 1.0' in metrics
    assert "mizzen_xds_connected_proxies 1.0" in metrics


async def test_an_inconsistent_snapshot_is_never_published(
    plane: ControlPlane, client: AdsClient, translator: SwitchableTranslator
) -> None:
    client.send(CLUSTER)
    first = await client.recv()
    client.ack(first)
    translator.dangling = True
    plane.cache.set_state(plane.cache.state)
    assert await client.nothing_within(0.4)
    async with httpx.AsyncClient(trust_env=False) as http:
        base = f"http://127.0.0.1:{plane.debug_port}"
        metrics = (await http.get(f"{base}/metrics")).text
        dump = (await http.get(f"{base}/debug/config_dump", params={"proxy": NODE})).json()
    assert "mizzen_xds_inconsistent_snapshots_total 1.0" in metrics
    proxy = (await _syncz(plane))["productpage-v1-abc.default"]
    assert "inconsistent snapshot refused" in proxy["error"]
    assert "no cluster" in dump["error"]
    assert REVIEWS_V1 in dump["error"]
    assert REVIEWS_V1 in {c["name"] for c in dump["cds"]}  # the last good snapshot stays


async def test_a_preview_whose_translation_fails_is_a_json_error(tmp_path: Path) -> None:
    def broken(state: MeshState, proxy: Proxy) -> Resources:
        raise RuntimeError("boom")

    settings = ControlSettings(config_dir=tmp_path, xds_port=0, debug_port=0)
    async with (
        plane_translating_with(settings, broken) as running,
        httpx.AsyncClient(trust_env=False) as http,
    ):
        base = f"http://127.0.0.1:{running.debug_port}"
        response = await http.get(f"{base}/debug/config_dump", params={"proxy": NODE})
    assert response.status_code == 500
    assert response.json()["error"] == "translation failed: RuntimeError: boom"


async def test_a_node_id_that_is_not_a_sidecar_is_refused(plane: ControlPlane) -> None:
    bad = AdsClient(plane.xds_port, "router~1.2.3.4~gw.ns~ns.svc.cluster.local")
    try:
        bad.send(CLUSTER)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await bad.recv()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "sidecar~<ip>" in (caught.value.details() or "")
    finally:
        await bad.close()


def test_versions_differ_across_processes() -> None:
    a, b = VersionSequence(), VersionSequence()
    assert a.prefix != b.prefix
    assert [a.next(), a.next()] == [f"{a.prefix}-1", f"{a.prefix}-2"]
