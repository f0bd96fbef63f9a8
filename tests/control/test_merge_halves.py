"""A proxy's resources are its halves kept as they are (`resources.merge`): the merged view
reads as the old copy did, the snapshot and the consistency check reuse each half, and a
dangling reference between halves is still found."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from control.config.loader import parse_text
from control.plane.metrics import Metrics
from control.plane.model.build import build_state
from control.plane.xds.cache.snapshot import Packer, build_snapshot
from control.plane.xds.cache.snapshot_cache import SnapshotCache
from control.plane.xds.translate import consistency
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    Resources,
    merge,
)


def _cluster(name: str, eds: bool = False) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(name=name)
    if eds:
        cluster.type = cluster_pb2.Cluster.EDS
    return cluster


def _tcp_listener(name: str, cluster: str) -> listener_pb2.Listener:
    listener = listener_pb2.Listener(name=name)
    chain = listener.filter_chains.add()
    network_filter = chain.filters.add(name="envoy.filters.network.tcp_proxy")
    network_filter.typed_config.Pack(tcp_proxy_pb2.TcpProxy(stat_prefix="s", cluster=cluster))
    return listener


OUTBOUND = Resources.of_messages({
    CLUSTER: [_cluster("outbound|80||b"), _cluster("PassthroughCluster"),
              _cluster("outbound|80||a", eds=True)],
    ENDPOINT: [endpoint_pb2.ClusterLoadAssignment(cluster_name="outbound|80||a")],
    LISTENER: [_tcp_listener("10.0.0.1_80", "outbound|80||a")],
})  # fmt: skip


def _inbound(cluster: str) -> Resources:
    return Resources.of_messages({
        CLUSTER: [_cluster("inbound|8080||")],
        LISTENER: [_tcp_listener("virtualInbound", cluster)],
    })  # fmt: skip


def _copied(*parts: Resources) -> Resources:
    return Resources.of_messages(
        {t: [m for p in parts for m in p.of(t).values()] for t in (CLUSTER, ENDPOINT, LISTENER)}
    )


def test_the_merged_view_reads_as_a_copy_would() -> None:
    inbound = _inbound("inbound|8080||")
    merged = merge(OUTBOUND, inbound)
    assert merged.parts == (OUTBOUND, inbound)
    copy = _copied(OUTBOUND, inbound)
    for type_url in (CLUSTER, ENDPOINT, LISTENER):
        assert list(merged.of(type_url).items()) == list(copy.of(type_url).items())  # sorted
        assert len(merged.of(type_url)) == len(copy.of(type_url))
    assert "PassthroughCluster" in merged.of(CLUSTER)
    assert merged.to_json() == copy.to_json()


def test_halves_naming_a_resource_alike_are_copied_the_later_winning() -> None:
    mine = cluster_pb2.Cluster(name="PassthroughCluster", alt_stat_name="mine")
    inbound = Resources.of_messages({CLUSTER: [mine]})
    merged = merge(OUTBOUND, inbound)
    assert merged.parts == ()
    assert merged.of(CLUSTER)["PassthroughCluster"].alt_stat_name == "mine"  # type: ignore[attr-defined]


def test_references_between_halves_resolve_and_a_dangling_one_is_found() -> None:
    assert consistency.problems(merge(OUTBOUND, _inbound("PassthroughCluster"))) == []
    dangling = merge(OUTBOUND, _inbound("outbound|80||nowhere"))
    assert consistency.problems(dangling) == [
        "listener virtualInbound: no cluster 'outbound|80||nowhere'"
    ]
    assert consistency.problems(dangling) == consistency.problems(
        _copied(OUTBOUND, _inbound("outbound|80||nowhere"))
    )


def test_snapshots_share_the_packed_outbound_half() -> None:
    packer = Packer()
    one = build_snapshot(merge(OUTBOUND, _inbound("inbound|8080||")), None, "v", 0.0, packer)
    two = build_snapshot(merge(OUTBOUND, _inbound("PassthroughCluster")), None, "v", 0.0, packer)
    fields_one, fields_two = one.types[CLUSTER].sotw_fields, two.types[CLUSTER].sotw_fields
    assert list(fields_one) == list(fields_two)  # same names, in the halves' order
    assert fields_one["outbound|80||a"] is fields_two["outbound|80||a"]
    assert len(fields_one.values()) == 4
    assert one.types[CLUSTER].digest == two.types[CLUSTER].digest  # the same clusters
    assert one.types[LISTENER].digest != two.types[LISTENER].digest  # virtualInbound differs


MESH_WITHOUT_SIDECARS = """
apiVersion: v1
kind: Service
metadata: {name: a, namespace: one}
spec: {clusterIP: 10.96.0.1, selector: {app: a}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: two}
spec: {clusterIP: 10.96.0.2, selector: {app: b}, ports: [{name: tcp, port: 9000}]}
---
apiVersion: v1
kind: Pod
metadata: {name: a-1, namespace: one, labels: {app: a}}
status: {podIP: 10.244.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b-1, namespace: two, labels: {app: b}}
status: {podIP: 10.244.0.2}
"""


def test_scopes_that_see_the_same_services_share_their_collections() -> None:
    """Without Sidecars every namespace sees every service: the clusters, endpoints and
    listeners of both namespaces' halves are one collection (packed once); the route tables
    differ (short names are per namespace) and stay their own."""
    documents, problems = parse_text(MESH_WITHOUT_SIDECARS, "mesh.yaml")
    assert not problems
    cache = SnapshotCache(build_state(documents), Metrics())
    one = cache.watch(parse_node("sidecar~10.244.0.1~a-1.one~one.svc.cluster.local"), lambda: None)
    two = cache.watch(parse_node("sidecar~10.244.0.2~b-1.two~two.svc.cluster.local"), lambda: None)
    assert one.resources is not None
    assert two.resources is not None
    halves = [r.parts[0] for r in (one.resources, two.resources)]
    assert halves[0] is not halves[1]
    for type_url in (CLUSTER, ENDPOINT, LISTENER):
        assert halves[0].serialized(type_url) is halves[1].serialized(type_url)
    assert halves[0].serialized(ROUTE) is not halves[1].serialized(ROUTE)
    assert one.snapshot is not None
    assert two.snapshot is not None
    name = "outbound|9000||b.two.svc.cluster.local"
    assert (
        one.snapshot.types[CLUSTER].sotw_fields[name]
        is (two.snapshot.types[CLUSTER].sotw_fields[name])
    )


def test_a_route_to_a_missing_cluster_is_named_by_its_table_host_and_route() -> None:
    config = route_pb2.RouteConfiguration(name="80")
    vhost = config.virtual_hosts.add(name="a:80", domains=["a"])
    vhost.routes.add(name="fine").route.cluster = "outbound|80||a"
    vhost.routes.add(name="split").route.weighted_clusters.clusters.add(name="gone")
    resources = Resources.of_messages({**{t: OUTBOUND.of(t).values() for t in (CLUSTER, ENDPOINT)},
                                       ROUTE: [config]})  # fmt: skip
    assert consistency.problems(resources) == ["route 80 / a:80 / split: no cluster 'gone'"]
