"""The Sidecar resource and exportTo narrow what a proxy gets; a change says which scopes it can
affect; proxies with the same inputs share one translation per push."""

from __future__ import annotations

from pathlib import Path

from control.plane.metrics import Metrics
from control.plane.model.state import MeshState
from control.plane.xds.cache.snapshot_cache import SnapshotCache
from control.plane.xds.translate.changes import diff
from control.plane.xds.translate.index import MeshIndex
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import CLUSTER, LISTENER, ROUTE
from hack.bench.baseline import BaselineCache
from tests.control.mesh_text import state_of

MESH = (Path(__file__).parent / "testdata" / "scoping" / "mesh.yaml").read_text()
SHOP = "sidecar~10.244.0.10~productpage-1.shop~shop.svc.cluster.local"
OTHER = "sidecar~10.244.1.10~client-1.other~other.svc.cluster.local"
OPEN = "sidecar~10.244.3.10~wanderer.open~open.svc.cluster.local"
REVIEWS_HOST = "reviews.shop.svc.cluster.local"


def clusters(state: MeshState, node: str) -> set[str]:
    return set(translate(state, parse_node(node)).of(CLUSTER))


def vhosts(state: MeshState, node: str) -> dict[str, object]:
    route = translate(state, parse_node(node)).of(ROUTE)["9080"]
    return {v.name: v for v in route.virtual_hosts}  # type: ignore[attr-defined]


def test_a_namespace_sidecar_narrows_clusters_and_routes() -> None:
    state = state_of(MESH)
    everything = clusters(state, SHOP)
    assert f"outbound|9080|v1|{REVIEWS_HOST}" in everything
    assert "outbound|9080||common.shared.svc.cluster.local" in everything
    narrowed = clusters(state, OTHER)
    outbound = {c for c in narrowed if c.startswith("outbound|")}
    assert outbound == {
        "outbound|9080||client.other.svc.cluster.local",
        "outbound|9080||common.shared.svc.cluster.local",
    }
    assert {"PassthroughCluster", "BlackHoleCluster", "inbound|9080||"} <= narrowed
    assert set(vhosts(state, OTHER)) == {
        "client.other.svc.cluster.local:9080",
        "common.shared.svc.cluster.local:9080",
        "allow_any",
    }
    assert clusters(state, OPEN) == everything - {"inbound|9080||"}  # no Sidecar, no inbound


def test_a_selected_sidecar_with_one_host_and_registry_only() -> None:
    text = (
        MESH
        + """
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client-only, namespace: other}
spec:
  workloadSelector: {labels: {app: client}}
  egress:
  - hosts: ["*/reviews.shop.svc.cluster.local"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""
    )
    state = state_of(text)
    outbound = {c for c in clusters(state, OTHER) if c.startswith("outbound|")}
    assert outbound == {
        f"outbound|9080||{REVIEWS_HOST}",
        f"outbound|9080|v1|{REVIEWS_HOST}",
        f"outbound|9080|v2|{REVIEWS_HOST}",
    }
    reviews = vhosts(state, OTHER)[f"{REVIEWS_HOST}:9080"]
    split = reviews.routes[0].route.weighted_clusters.clusters  # type: ignore[attr-defined]
    assert [c.weight.value for c in split] == [80, 20]  # the shop VirtualService applies (`*/`)
    assert "block_all" in vhosts(state, OTHER)
    listener = translate(state, parse_node(OTHER)).of(LISTENER)["virtualOutbound"]
    chain = listener.default_filter_chain  # type: ignore[attr-defined]
    assert "BlackHoleCluster" in str(chain.filters[0].typed_config.value)
    # A pod the selector does not match keeps the namespace default.
    stranger = OTHER.replace("client-1", "ghost")
    assert f"outbound|9080||{REVIEWS_HOST}" not in clusters(state, stranger)


def test_the_root_namespace_default_applies_where_a_namespace_has_none() -> None:
    text = (
        MESH
        + """
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress:
  - hosts: ["./*"]
"""
    )
    state = state_of(text)
    outbound = {c for c in clusters(state, OPEN) if c.startswith("outbound|")}
    assert outbound == set()  # `.` is the proxy's own namespace, and `open` has no services
    assert f"outbound|9080||{REVIEWS_HOST}" in clusters(state, SHOP)
    assert f"outbound|9080||{REVIEWS_HOST}" not in clusters(
        state, SHOP.replace("productpage-1.shop~shop", "x.other~other")
    )  # `other` has its own default: unchanged (its own namespace and shared)


def test_export_to_keeps_a_virtual_service_in_its_namespace() -> None:
    state = state_of(MESH.replace("  hosts: [reviews]\n", "  hosts: [reviews]\n  exportTo: [.]\n"))
    shop = vhosts(state, SHOP)[f"{REVIEWS_HOST}:9080"]
    assert shop.routes[0].route.HasField("weighted_clusters")  # type: ignore[attr-defined]
    open_ = vhosts(state, OPEN)[f"{REVIEWS_HOST}:9080"]
    assert open_.routes[0].route.cluster == f"outbound|9080||{REVIEWS_HOST}"  # type: ignore[attr-defined]


def test_a_change_affects_only_the_scopes_that_see_it() -> None:
    before = state_of(MESH)
    after = state_of(MESH.replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30"))
    change = diff(before, after)
    index = MeshIndex(after)
    scopes = {n: index.inputs(parse_node(n)).scope for n in (SHOP, OTHER, OPEN)}
    assert scopes[OTHER].egress == (("other", "*"), ("shared", "*"))
    assert change.affects(scopes[SHOP])
    assert change.affects(scopes[OPEN])
    assert not change.affects(scopes[OTHER])
    # An endpoint of the shared service: everyone sees it.
    moved = state_of(MESH.replace("podIP: 10.244.2.10", "podIP: 10.244.2.11"))
    assert all(diff(before, moved).affects(s) for s in scopes.values())
    assert diff(before, before).empty
    assert diff(before, state_of(MESH)).empty  # a rebuilt, equal state changes nothing


def test_tilde_entries_subtract_from_the_imported_hosts() -> None:
    """Istio 1.31's exclusions: `*/*` plus `~shop/*` is everything but shop; `~/<host>` removes
    that host from every namespace; the shop VirtualService goes with its hosts."""
    sidecar = 'egress:\n  - hosts: ["./*", "shared/*"]'
    assert sidecar in MESH
    minus_shop = state_of(MESH.replace(sidecar, 'egress:\n  - hosts: ["*/*", "~shop/*"]'))
    outbound = {c for c in clusters(minus_shop, OTHER) if c.startswith("outbound|")}
    assert outbound == {
        "outbound|9080||client.other.svc.cluster.local",
        "outbound|9080||common.shared.svc.cluster.local",
    }
    assert REVIEWS_HOST + ":9080" not in vhosts(minus_shop, OTHER)
    minus_host = state_of(
        MESH.replace(sidecar, 'egress:\n  - hosts: ["*/*", "~/common.shared.svc.cluster.local"]')
    )
    outbound = {c for c in clusters(minus_host, OTHER) if c.startswith("outbound|")}
    assert "outbound|9080||common.shared.svc.cluster.local" not in outbound
    assert f"outbound|9080|v1|{REVIEWS_HOST}" in outbound
    assert REVIEWS_HOST + ":9080" in vhosts(minus_host, OTHER)
    # A change in shop cannot touch the proxies that exclude it.
    scope = MeshIndex(minus_shop).inputs(parse_node(OTHER)).scope
    assert scope.excluded == (("shop", "*"),)
    reweighted = MESH.replace(sidecar, 'egress:\n  - hosts: ["*/*", "~shop/*"]')
    change = diff(minus_shop, state_of(reweighted.replace("weight: 80", "weight: 70")))
    assert not change.affects(scope)


def _cache(state: MeshState, scoping: bool, replicas: int) -> SnapshotCache:
    cache = SnapshotCache(state, Metrics()) if scoping else BaselineCache(state, Metrics())
    for i in range(replicas):
        node = f"sidecar~10.9.9.{i}~ghost-{i}.other~other.svc.cluster.local"
        cache.watch(parse_node(node), lambda: None)
    return cache


def test_identical_proxies_share_one_translation_per_push() -> None:
    before = state_of(MESH)
    moved = state_of(MESH.replace("podIP: 10.244.2.10", "podIP: 10.244.2.11"))
    cache = _cache(before, scoping=True, replicas=5)
    push = cache.set_state(moved)
    assert (push.translations, push.pushed, push.proxies) == (1, 5, 5)
    snapshots = {id(w.snapshot.types[CLUSTER].sotw_fields) for w in cache.watches if w.snapshot}
    assert len(snapshots) == 1  # one packed form shared by all five
    invisible = state_of(
        MESH.replace("podIP: 10.244.2.10", "podIP: 10.244.2.11").replace("weight: 80", "weight: 1")
    )
    push = cache.set_state(invisible)  # a VirtualService `other` cannot see
    assert (push.translations, push.pushed) == (0, 0)

    baseline = _cache(before, scoping=False, replicas=5)
    push = baseline.set_state(invisible)
    assert (push.translations, push.pushed) == (5, 5)
