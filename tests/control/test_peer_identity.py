"""The secure port's check of a node against its client certificate, as a pure table: the
namespace wherever the node states it, the service account when it names one."""

from __future__ import annotations

from typing import Any

import pytest

from control.identity.spiffe import SpiffeId
from control.plane.xds.ads.peer_identity import identity_mismatch

WEB = SpiffeId("cluster.local", "shop", "web")
NODE = "sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local"
BANK = "sidecar~10.0.0.1~web-1.bank~bank.svc.cluster.local"


@pytest.mark.parametrize(
    ("node_id", "metadata"),
    [
        (NODE, {}),
        (NODE, {"NAMESPACE": "shop", "SERVICE_ACCOUNT": "web"}),
        (NODE, {"SERVICE_ACCOUNT": ""}),  # no claim
    ],
)
def test_a_node_that_is_its_certificate_is_served(node_id: str, metadata: dict[str, Any]) -> None:
    assert identity_mismatch(node_id, metadata, WEB) is None


@pytest.mark.parametrize(
    ("node_id", "metadata", "words"),
    [
        (
            "sidecar~10.0.0.1~web-1.bank~bank.svc.cluster.local",
            {},
            "node id claims namespace 'bank'",
        ),
        (NODE, {"NAMESPACE": "bank"}, "metadata NAMESPACE claims namespace 'bank'"),
        (NODE, {"NAMESPACE": ["shop"]}, "metadata NAMESPACE claims namespace"),
        (NODE, {"SERVICE_ACCOUNT": "admin"}, "metadata SERVICE_ACCOUNT claims 'admin'"),
        ("sidecar~10.0.0.1~nonamespace~x", {}, "node id claims namespace 'None'"),
        ("not-a-node-id", {}, "node id claims namespace"),
    ],
)
def test_a_node_claiming_someone_else_is_refused_with_the_reason(
    node_id: str, metadata: dict[str, Any], words: str
) -> None:
    reason = identity_mismatch(node_id, metadata, WEB)
    assert reason is not None
    assert words in reason
    assert WEB.uri in reason


def test_no_spiffe_id_no_service() -> None:
    assert identity_mismatch(NODE, {}, None) == "the client certificate carries no SPIFFE id"


def test_claims_are_escaped_and_cut() -> None:
    reason = identity_mismatch(NODE, {"NAMESPACE": "x\n\x1b[31m" + "y" * 500}, WEB)
    assert reason is not None
    assert "\n" not in reason
    assert "\x1b" not in reason
    assert len(reason) < 200
