"""The RBAC filters' two forms (`authz.rbac`): packed (the listener's: Anys serialized from
each rule's bytes by `authz.wire`) and protobuf JSON (bootstraps, tests) make the same bytes,
and those are the bytes protobuf's own deterministic serializer writes."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.config.rbac.v3 import rbac_pb2
from hypothesis import given
from hypothesis import strategies as st

from control.config.mesh_config import MeshConfig
from control.plane.xds.translate.authz import wire
from control.plane.xds.translate.protodict import to_message
from tests.policy.envoy_harness import inbound_policy
from tests.policy.table import documents as case_documents
from tests.policy.table import load

_POLICIES = [
    rbac_pb2.Policy(permissions=[{"any": True}], principals=[{"any": True}]),
    rbac_pb2.Policy(
        permissions=[{"url_path": {"path": {"prefix": "/a/"}}}],
        principals=[{"authenticated": {"principal_name": {"exact": "spiffe://td/ns/é/sa/x"}}}],
    ),
    rbac_pb2.Policy(),
]


@given(
    st.sampled_from(sorted(wire.ACTIONS)),
    st.lists(st.tuples(st.text(max_size=12), st.integers(0, len(_POLICIES) - 1)), max_size=8),
)
def test_rbac_config_bytes_are_protobufs(action: str, named: list[tuple[str, int]]) -> None:
    serialized = [_POLICIES[i].SerializeToString(deterministic=True) for _, i in named]
    policies = [(n, wire.entry(n, found)) for (n, _), found in zip(named, serialized, strict=True)]
    expected = rbac_pb2.RBAC(action=action, policies={n: _POLICIES[i] for n, i in named})
    assert wire.rbac_config(action, policies) == expected.SerializeToString(deterministic=True)


def _listener(filters: list[dict[str, Any]]) -> bytes:
    data = {"name": "l", "filter_chains": [{"filters": filters}]}
    message = to_message(data, listener_pb2.Listener)
    return message.SerializeToString(deterministic=True)


_NAMES = {
    "port": "8080",
    "jwks": '{"keys": []}',
    "jwks_uri": "http://127.0.0.1:1/jwks",
    "jwks_unreachable": "http://127.0.0.1:2/jwks",
}


@pytest.mark.parametrize("case", load("table.yaml"), ids=lambda c: c.name)
def test_packed_filters_are_the_json_filters(case: Any) -> None:
    docs = case_documents(case, _NAMES)
    policy = inbound_policy(docs, mesh=MeshConfig.from_mapping(case.mesh or {}))
    for make in (policy.http_filters, policy.network_filters):
        packed, as_json = make(packed=True), make()
        assert [f["name"] for f in packed] == [f["name"] for f in as_json]
        assert _listener(packed) == _listener(as_json)


def test_packed_any_through_json_formats_fallback() -> None:
    """A dict the constructor refuses (here a camelCase name) goes to json_format, which is
    given the packed Any unpacked."""
    policy = inbound_policy(
        [
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "p", "namespace": "foo"},
                "spec": {"rules": [{"to": [{"operation": {"paths": ["/a/{*}/b"]}}]}]},
            }
        ]
    )
    filters = policy.http_filters(packed=True)
    camel = {"name": "l", "filterChains": [{"filters": filters}]}
    message = to_message(camel, listener_pb2.Listener)
    assert message.SerializeToString(deterministic=True) == _listener(filters)
