"""Responses put together from shared serialized parts (`cache.wire`) are the bytes protobuf
itself writes for the same response, and a resource is serialized once for every proxy."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from control.plane.xds.cache import wire
from control.plane.xds.cache.snapshot import Packer, build_snapshot
from control.plane.xds.translate.resources import CLUSTER, Resources, merge

CLUSTER_URL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


def _clusters(count: int) -> list[cluster_pb2.Cluster]:
    # Large enough that lengths need multi-byte varints (> 127 and > 16383 bytes).
    return [
        cluster_pb2.Cluster(
            name=f"outbound|{i}||svc-{i}.ns.svc.cluster.local", alt_stat_name="x" * i
        )
        for i in (1, 200, 20_000)[:count]
    ]


def _resources(clusters: list[cluster_pb2.Cluster]) -> Resources:
    return Resources.of_messages({CLUSTER: clusters})


def _reordered(resources: Resources) -> Resources:
    """Another collection of the very same serialized resources (as halves share them)."""
    return Resources.of_serialized({CLUSTER: list(resources.serialized(CLUSTER).items())[::-1]})


def test_a_sotw_response_is_protobufs_own_serialization() -> None:
    clusters = _clusters(3)
    snapshot = build_snapshot(_resources(clusters), None, "v-1", 0.0)
    typed = snapshot.types[CLUSTER]
    encoded = wire.sotw_response("v-1", typed.sotw_fields.values(), CLUSTER_URL, "n-7")
    packed = []
    by_name = {c.name: c for c in clusters}
    for cluster in (by_name[n] for n in typed.sotw_fields):  # the snapshot's order
        item = any_pb2.Any()
        item.Pack(cluster, deterministic=True)
        packed.append(item)
    expected = discovery_pb2.DiscoveryResponse(
        version_info="v-1", resources=packed, type_url=CLUSTER_URL, nonce="n-7"
    )
    data = encoded.data()
    assert len(data) == encoded.size
    assert data == expected.SerializeToString(deterministic=True)
    assert discovery_pb2.DiscoveryResponse.FromString(data) == expected
    # The size the stream passes for a response with all of a type (no sum per response).
    known = wire.sotw_response(
        "v-1", typed.sotw_fields.values(), CLUSTER_URL, "n-7", typed.sotw_size
    )
    assert known.size == encoded.size


def test_the_size_of_a_snapshot_of_merged_parts_is_its_fields_bytes() -> None:
    """A snapshot of merged halves sums its parts' sizes: the send budget counts what is sent."""
    clusters = _clusters(3)
    merged = merge(_resources(clusters[:1]), _resources(clusters[1:]))
    assert merged.parts  # packed part by part
    typed = build_snapshot(merged, None, "v-1", 0.0).types[CLUSTER]
    assert typed.sotw_size == sum(map(len, typed.sotw_fields.values()))
    encoded = wire.sotw_response(
        "v-1", typed.sotw_fields.values(), CLUSTER_URL, "n", typed.sotw_size
    )
    assert len(encoded.data()) == encoded.size


def test_a_delta_response_with_removals_is_protobufs_own_serialization() -> None:
    clusters = _clusters(2)
    snapshot = build_snapshot(_resources(clusters), None, "v-2", 0.0)
    typed = snapshot.types[CLUSTER]
    names = list(typed.delta_fields)
    encoded = wire.delta_response(
        "v-2", [typed.delta_fields[names[1]]], CLUSTER_URL, ["gone-a", ""], "n-8"
    )
    item = any_pb2.Any()
    item.Pack(clusters[1], deterministic=True)
    expected = discovery_pb2.DeltaDiscoveryResponse(
        system_version_info="v-2",
        resources=[
            discovery_pb2.Resource(
                name=names[1], version=typed.resource_versions[names[1]], resource=item
            )
        ],
        type_url=CLUSTER_URL,
        removed_resources=["gone-a", ""],
        nonce="n-8",
    )
    data = encoded.data()
    assert len(data) == encoded.size
    assert data == expected.SerializeToString(deterministic=True)


def test_empty_responses_and_fields() -> None:
    assert wire.sotw_response("", [], CLUSTER_URL, "n").data() == (
        discovery_pb2.DiscoveryResponse(type_url=CLUSTER_URL, nonce="n").SerializeToString()
    )
    empty = discovery_pb2.DeltaDiscoveryResponse(type_url=CLUSTER_URL, nonce="n")
    assert wire.delta_response("", [], CLUSTER_URL, [], "n").data() == empty.SerializeToString()


def test_a_shared_resource_is_packed_once_for_every_snapshot() -> None:
    clusters = _clusters(2)
    packer = Packer()
    resources = _resources(clusters)
    one = build_snapshot(resources, None, "v", 0.0, packer)
    other = build_snapshot(_reordered(resources), None, "v", 0.0, packer)
    name = clusters[0].name
    assert one.types[CLUSTER].sotw_fields[name] is other.types[CLUSTER].sotw_fields[name]
    assert one.types[CLUSTER].delta_fields[name] is other.types[CLUSTER].delta_fields[name]


def test_delta_fields_made_from_the_sotw_fields_are_protobufs_own_serialization() -> None:
    """The Delta form of a resource is derived from its SotW field when first sent (no Any is
    kept): the bytes are those of protobuf's `Resource(name, version, resource=Any)`, whatever
    the lengths of the name and the resource, and are made once for every snapshot."""
    long_name = cluster_pb2.Cluster(name="outbound|9080||" + "n" * 300, alt_stat_name="y" * 200)
    clusters = [*_clusters(3), long_name]
    packer = Packer()
    resources = _resources(clusters)
    typed = build_snapshot(resources, None, "v", 0.0, packer).types[CLUSTER]
    for cluster in clusters:
        item = any_pb2.Any()
        item.Pack(cluster, deterministic=True)
        version = typed.resource_versions[cluster.name]
        expected = discovery_pb2.Resource(name=cluster.name, version=version, resource=item)
        field = typed.delta_fields[cluster.name]
        assert field == wire.resource_field(expected.SerializeToString(deterministic=True))
        assert typed.sotw_fields[cluster.name] == wire.resource_field(
            item.SerializeToString(deterministic=True)
        )
        again = build_snapshot(_reordered(resources), None, "v", 0.0, packer)
        assert again.types[CLUSTER].delta_fields[cluster.name] is field


def test_an_any_is_written_as_protobuf_writes_it() -> None:
    for value in (b"", b"\x0a\x01a", b"x" * 200, b"y" * 20_000):
        expected = any_pb2.Any(type_url=CLUSTER_URL, value=value)
        assert wire.packed(CLUSTER_URL, value) == expected.SerializeToString(deterministic=True)
