"""Delta ADS driven by a Python client: wildcard and named subscriptions, only changed resources
sent, removals, ACK/NACK, and a reconnect that reports what it has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.cli.control_process import ControlPlane
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.control.delta_client import DeltaClient, names, versions
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.waiting import eventually

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "testdata" / "translate" / "bookinfo"
NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
REVIEWS = "outbound|9080||reviews.default.svc.cluster.local"
REVIEWS_V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
REVIEWS_V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
RATINGS = "outbound|9090||ratings.default.svc.cluster.local"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as running:
        yield running


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[DeltaClient]:
    delta = DeltaClient(plane.xds_port, NODE)
    yield delta
    await delta.close()


def _edit(plane: ControlPlane, old: str, new: str) -> None:
    assert plane.settings.config_dir is not None
    mesh = plane.settings.config_dir / "mesh.yaml"
    text = mesh.read_text()
    assert old in text
    mesh.write_text(text.replace(old, new))


async def test_wildcard_then_only_what_changed(plane: ControlPlane, client: DeltaClient) -> None:
    client.send(CLUSTER)
    clusters = await client.recv()
    assert {REVIEWS, REVIEWS_V1, RATINGS, "PassthroughCluster"} <= names(clusters)
    assert all(r.version.startswith("mz1-") for r in clusters.resources)
    assert not clusters.removed_resources
    client.ack(clusters)
    client.send(LISTENER)
    client.ack(await client.recv())
    client.send(ROUTE, subscribe=["9080"])
    routes = await client.recv()
    assert names(routes) == {"9080"}
    client.ack(routes)
    client.send(ENDPOINT, subscribe=[REVIEWS_V1, REVIEWS_V2])
    endpoints = await client.recv()
    assert names(endpoints) == {REVIEWS_V1, REVIEWS_V2}
    client.ack(endpoints)
    assert await client.nothing_within(0.2)

    async def in_sync() -> bool:
        status = plane.sync.syncz()["productpage-v1-abc.default"]
        return bool(status["inSync"]) and status["api"] == "delta"

    await eventually(in_sync, what="delta proxy in sync")

    # A route change: one RouteConfiguration, nothing else.
    _edit(plane, "weight: 80", "weight: 70")
    _edit(plane, "weight: 20", "weight: 30")
    pushed = await client.recv()
    assert pushed.type_url == ROUTE
    assert names(pushed) == {"9080"}
    assert versions(pushed)["9080"] != versions(routes)["9080"]
    client.ack(pushed)
    assert await client.nothing_within(0.4)
    await eventually(in_sync, what="in sync after the route change")

    # An endpoint change in an assignment this proxy did not subscribe to (the reviews
    # default cluster; v3 has no subset): nothing is sent, and the proxy is still in sync.
    before = plane.sync.syncz()["productpage-v1-abc.default"]["types"]["eds"]["latest"]
    _edit(plane, 'conditions: [{type: Ready, status: "False"}]', "conditions: []")

    async def eds_moved() -> bool:
        status = plane.sync.syncz()["productpage-v1-abc.default"]
        return bool(status["types"]["eds"]["latest"] != before)

    await eventually(eds_moved, what="a new EDS version")
    assert await client.nothing_within(0.3)
    assert plane.sync.syncz()["productpage-v1-abc.default"]["inSync"]


async def test_endpoints_incremental_and_removals(plane: ControlPlane, client: DeltaClient) -> None:
    client.send(CLUSTER)
    first = await client.recv()
    client.ack(first)
    client.send(ENDPOINT, subscribe=[REVIEWS, RATINGS])
    endpoints = await client.recv()
    assert names(endpoints) == {REVIEWS, RATINGS}
    client.ack(endpoints)

    # The not-ready reviews pod becomes ready: only the reviews assignment moves.
    _edit(plane, 'conditions: [{type: Ready, status: "False"}]', "conditions: []")
    pushed = await client.recv()
    assert pushed.type_url == ENDPOINT
    assert names(pushed) == {REVIEWS}
    assert "10.244.0.23" in str(pushed.resources[0].resource.value)
    client.ack(pushed)

    # Subscribing to one more name sends just that one; unsubscribing sends nothing.
    client.send(ENDPOINT, subscribe=[REVIEWS_V1])
    more = await client.recv()
    assert names(more) == {REVIEWS_V1}
    client.ack(more)
    client.send(ENDPOINT, unsubscribe=[RATINGS])
    assert await client.nothing_within(0.3)

    # The ratings Service goes away: its cluster is removed by name (clusters are wildcard).
    assert plane.settings.config_dir is not None
    mesh = plane.settings.config_dir / "mesh.yaml"
    documents = mesh.read_text().split("\n---\n")
    kept = [d for d in documents if "name: ratings, namespace: default}" not in d]
    assert len(kept) == len(documents) - 1
    mesh.write_text("\n---\n".join(kept))
    removed = await client.recv()
    assert removed.type_url == CLUSTER
    assert list(removed.removed_resources) == [RATINGS]
    assert not removed.resources


async def test_nack_is_recorded_and_not_resent(plane: ControlPlane, client: DeltaClient) -> None:
    client.send(CLUSTER)
    response = await client.recv()
    client.send(CLUSTER, nonce=response.nonce, error="cluster foo: bad")
    assert await client.nothing_within(0.3)
    status = plane.sync.syncz()["productpage-v1-abc.default"]["types"]["cds"]
    assert status["nacked"] == response.system_version_info
    assert status["nackError"] == "cluster foo: bad"
    assert status["inSync"] is False


async def test_reconnect_sends_only_what_the_proxy_lacks(plane: ControlPlane) -> None:
    first = DeltaClient(plane.xds_port, NODE)
    try:
        first.send(CLUSTER)
        had = versions(await first.recv())
    finally:
        await first.close()
    assert len(had) > 5
    initial = dict(had)
    initial[REVIEWS_V1] = "1"  # not a version of ours: must be sent again
    initial[REVIEWS_V2] = "mz1-00000000000000000000"  # ours in form, not current: sent
    del initial[RATINGS]  # unknown to the proxy: sent
    again = DeltaClient(plane.xds_port, NODE)
    try:
        again.send(CLUSTER, initial=initial)
        response = await again.recv()
        assert names(response) == {REVIEWS_V1, REVIEWS_V2, RATINGS}
        assert not response.removed_resources
        again.ack(response)
    finally:
        await again.close()
    # A proxy that claims a cluster we do not have (deleted while it was away) is told it is gone.
    stale = DeltaClient(plane.xds_port, NODE)
    try:
        stale.send(CLUSTER, initial={**had, "outbound|1|x|gone.svc": had[REVIEWS]})
        response = await stale.recv()
        assert names(response) == set()
        assert list(response.removed_resources) == ["outbound|1|x|gone.svc"]
    finally:
        await stale.close()
