"""`protodict.to_message` is a shortcut to json_format: the same message for every golden
resource and for the JSON forms the constructor does not take, json_format's error otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from control.plane.xds.translate.authz import rbac
from control.plane.xds.translate.authz.inbound import MeshPolicies
from control.plane.xds.translate.protodict import to_message
from tests.control.translate_cases import CASES, read_golden

_TYPES: dict[str, type[Message]] = {
    "cds": cluster_pb2.Cluster,
    "eds": endpoint_pb2.ClusterLoadAssignment,
    "lds": listener_pb2.Listener,
    "rds": route_pb2.RouteConfiguration,
}


def _same(data: dict[str, Any], cls: type[Message]) -> None:
    """The message json_format makes (its content), with deterministic bytes (a resource's
    version hashes them) that do not depend on the order of the dict's keys. (json_format's own
    do not qualify: it packs an Any in upb's map order, which varies from process to process.)"""
    expected = json_format.ParseDict(json.loads(json.dumps(data)), cls())
    found = to_message(data, cls)
    assert json_format.MessageToDict(found) == json_format.MessageToDict(expected)
    packed = found.SerializeToString(deterministic=True)
    assert to_message(_reversed(data), cls).SerializeToString(deterministic=True) == packed


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


@pytest.mark.parametrize("case", CASES)
def test_golden_resources_convert_as_json_format_does(case: str) -> None:
    golden = read_golden(case)
    for short, cls in _TYPES.items():
        for resource in golden[short]:
            _same(resource, cls)


_SPECIAL_FORMS: list[tuple[type[Message], dict[str, Any]]] = [
    (
        cluster_pb2.Cluster,
        {"name": "a", "connect_timeout": "1.5s", "per_connection_buffer_limit_bytes": 7},
    ),
    (cluster_pb2.Cluster, {"name": "a", "connect_timeout": "-0.000000001s"}),
    (cluster_pb2.Cluster, {"name": "a", "connect_timeout": "3.25s", "type": 0}),
    (
        cluster_pb2.Cluster,
        {
            "name": "a",
            "metadata": {
                "filter_metadata": {"x": {"fields": {"a": 1}, "b": [None, "s", {"c": True}]}}
            },
        },
    ),
    (cluster_pb2.Cluster, {"name": "a", "metadata": {"filter_metadata": {"x": {"a": 1}}}}),
    (cluster_pb2.Cluster, {"name": "a", "connectTimeout": "2s"}),  # camelCase: json_format's
    (
        cluster_pb2.Cluster,
        {
            "name": "a",
            "lb_policy": "RING_HASH",
            "ring_hash_lb_config": {"minimum_ring_size": "1024"},
        },
    ),
    (cluster_pb2.Cluster, {"name": "a", "transport_socket": {"name": "t", "typed_config": {}}}),
    (cluster_pb2.Cluster, {"name": None, "type": None, "metadata": None}),
    (
        listener_pb2.Listener,
        {
            "name": "l",
            "filter_chains": [
                {
                    "filters": [
                        {
                            "name": "r",
                            "typed_config": {
                                "@type": rbac.NETWORK_RBAC_TYPE,
                                "stat_prefix": "s",
                                "rules": {
                                    "policies": {
                                        "p": {
                                            "permissions": [
                                                {
                                                    "destination_ip": {
                                                        "address_prefix": "10.0.0.0",
                                                        "prefix_len": 8,
                                                    }
                                                }
                                            ],
                                            "principals": [
                                                {
                                                    "metadata": {
                                                        "filter": "f",
                                                        "path": [{"key": "k"}],
                                                        "value": {"string_match": {"exact": "v"}},
                                                    }
                                                }
                                            ],
                                        }
                                    }
                                },
                            },
                        }
                    ]
                }
            ],
        },
    ),
    (
        listener_pb2.Listener,
        {
            "name": "l",
            "listener_filters": [
                {
                    "name": "x",
                    "typed_config": {
                        "@type": "type.googleapis.com/google.protobuf.Duration",
                        "value": "1s",
                    },
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(("cls", "data"), _SPECIAL_FORMS)
def test_json_only_forms_convert_as_json_format_does(
    cls: type[Message], data: dict[str, Any]
) -> None:
    _same(data, cls)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "a", "no_such_field": 1},
        {"name": "a", "connect_timeout": "soon"},
        {"name": "a", "type": "NO_SUCH_TYPE"},
        {"name": "a", "transport_socket": {"typed_config": {"@type": "type.googleapis.com/x.Y"}}},
        {"name": 5},
        {"name": "a", "no_such_field": None},
    ],
)
def test_bad_input_raises_json_formats_error(data: dict[str, Any]) -> None:
    with pytest.raises(json_format.ParseError):
        json_format.ParseDict(data, cluster_pb2.Cluster())
    with pytest.raises(json_format.ParseError):
        to_message(data, cluster_pb2.Cluster)


def test_policy_filters_convert_as_json_format_does() -> None:
    from control.plane.model.build import build_state
    from control.plane.model.state import Document

    rules = [
        {
            "from": [
                {"source": {"principals": ["cluster.local/ns/a/sa/b"], "ipBlocks": ["10.0.0.0/8"]}}
            ],
            "to": [
                {"operation": {"paths": ["/a/{*}/b", "/x*"], "methods": ["GET"], "ports": ["80"]}}
            ],
            "when": [
                {"key": "request.auth.claims[groups]", "values": ["g"]},
                {"key": "destination.ip", "notValues": ["1.2.3.4"]},
            ],
        }
    ]
    doc = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "namespace": "foo"},
        "spec": {"action": "DENY", "rules": rules},
    }
    policy = MeshPolicies(build_state([Document("p", doc)]), lambda h: False).for_workload(
        "foo", {}
    )
    for found in (*policy.http_filters(), *policy.network_filters()):
        config = found["typed_config"]
        listener = {
            "name": "l",
            "filter_chains": [{"filters": [{"name": "f", "typed_config": config}]}],
        }
        _same(listener, listener_pb2.Listener)
