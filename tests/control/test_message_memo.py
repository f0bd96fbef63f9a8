"""The conversion memo (`resources.from_dicts`): equal content built alike is one shared message,
a route table's virtual hosts are shared between tables, and what the memo keeps of a resource's
content is a digest, not a copy (it held the whole marshal form: ~8 MB of the control plane's
translations at the scale benchmark's size)."""

from __future__ import annotations

import marshal
import tracemalloc
from typing import Any

from control.plane.xds.translate import resources
from control.plane.xds.translate.resources import CLUSTER, ROUTE, from_dicts


def _cluster(index: int, padding: int = 0) -> dict[str, Any]:
    return {
        "name": f"outbound|80||svc-{index}.ns.svc.cluster.local",
        "type": "EDS",
        "alt_stat_name": f"{index}-" + "p" * padding,
        "eds_cluster_config": {"service_name": f"svc-{index}"},
    }


def _host(index: int) -> dict[str, Any]:
    return {
        "name": f"svc-{index}:80",
        "domains": [f"svc-{index}", f"svc-{index}.ns.svc.cluster.local"],
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": f"c{index}"}}],
    }


def _route(name: str, hosts: list[int]) -> dict[str, Any]:
    return {"name": name, "virtual_hosts": [_host(i) for i in hosts]}


def test_equal_content_is_one_message_and_other_content_another() -> None:
    resources.clear_caches()
    first = from_dicts({CLUSTER: [_cluster(1), _cluster(2)]})
    second = from_dicts({CLUSTER: [_cluster(2), _cluster(3)]})
    name = "outbound|80||svc-2.ns.svc.cluster.local"
    assert first.serialized(CLUSTER)[name] is second.serialized(CLUSTER)[name]
    kept = {**first.serialized(CLUSTER), **second.serialized(CLUSTER)}
    assert len(set(kept.values())) == 3  # other content, other bytes
    one, two = first.of(CLUSTER), second.of(CLUSTER)
    assert one["outbound|80||svc-1.ns.svc.cluster.local"].eds_cluster_config.service_name == "svc-1"
    assert two["outbound|80||svc-3.ns.svc.cluster.local"].alt_stat_name == "3-"


def test_route_tables_share_their_virtual_hosts() -> None:
    resources.clear_caches()
    first_table = from_dicts({ROUTE: [_route("80", [1, 2, 3])]})
    again = from_dicts({ROUTE: [_route("80", [1, 2, 3])]})
    assert again.serialized(ROUTE)["80"] is first_table.serialized(ROUTE)["80"]  # one table
    first = first_table.of(ROUTE)["80"]
    second = from_dicts({ROUTE: [_route("80", [2, 3, 4])]}).of(ROUTE)["80"]
    assert [h.name for h in second.virtual_hosts] == ["svc-2:80", "svc-3:80", "svc-4:80"]
    assert second.virtual_hosts[0] == first.virtual_hosts[1]
    assert second.virtual_hosts[2].routes[0].route.cluster == "c4"


def test_the_memo_keeps_a_digest_of_the_content_not_a_copy() -> None:
    """Python's allocations while converting large resources, less the serialized resources
    themselves (what is kept): far less than their content, which a memo keyed by it would
    hold."""
    resources.clear_caches()
    dicts = [_cluster(i, padding=20_000) for i in range(100)]
    content = sum(len(marshal.dumps(d, 2)) for d in dicts)
    tracemalloc.start()
    try:
        converted = from_dicts({CLUSTER: dicts})
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(converted.of(CLUSTER)) == 100
    kept = sum(map(len, converted.serialized(CLUSTER).values()))
    assert kept > content / 2  # the padding is in the resources
    assert held - kept < content / 10, (held, kept, content)


def test_resources_are_kept_serialized_and_parsed_copies_are_the_readers_own() -> None:
    """A translation holds each resource's deterministic bytes, not a message (parsed, ~4x
    their size); a message read from it is parsed for the reader, who may change it."""
    resources.clear_caches()
    converted = from_dicts({CLUSTER: [_cluster(1)]})
    name = "outbound|80||svc-1.ns.svc.cluster.local"
    kept = converted.serialized(CLUSTER)[name]
    assert isinstance(kept, bytes)
    message = converted.of(CLUSTER)[name]
    assert kept == message.SerializeToString(deterministic=True)
    message.alt_stat_name = "changed"
    assert converted.serialized(CLUSTER)[name] is kept
    assert converted.of(CLUSTER)[name].alt_stat_name == "1-"
