"""Custom capture ports (issue 17, translation 3): the agent's `--outbound-port/--inbound-port`
reach the control plane in `PROXY_PORTS`, and the capture listeners bind them (before, they
stayed on 15001/15006, so every redirected connection was lost)."""

from __future__ import annotations

from typing import Any

import pytest

from control.config.loader import parse_text
from control.plane.model.build import build_state
from control.plane.xds.translate.proxy import CapturePorts, ProxyIdError, parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.shared import MeshTranslation
from tests.control.translate_cases import CASES_DIR

NODE = "sidecar~10.244.0.21~reviews-v1-aaa.default~default.svc.cluster.local"


def _state() -> Any:
    documents, _ = parse_text((CASES_DIR / "bookinfo" / "mesh.yaml").read_text(), "mesh.yaml")
    return build_state(documents)


def _capture(listeners: list[dict[str, Any]], name: str) -> tuple[int, list[int]]:
    listener = next(item for item in listeners if item["name"] == name)
    blackhole = [
        c["filter_chain_match"]["destination_port"]
        for c in listener["filter_chains"]
        if c["name"].endswith("-blackhole")
    ]
    return listener["address"]["socket_address"]["port_value"], blackhole


def test_the_node_metadata_names_the_capture_ports() -> None:
    proxy = parse_node(NODE, {"PROXY_PORTS": {"outbound": 15011.0, "inbound": 15016.0}})
    assert proxy.capture == CapturePorts(outbound=15011, inbound=15016)
    assert parse_node(NODE, {"PROXY_PORTS": {"admin": 15000}}).capture == CapturePorts()
    assert parse_node(NODE).capture == CapturePorts(outbound=15001, inbound=15006)


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ({"outbound": 0}, "PROXY_PORTS.outbound: 0 not a port"),
        ({"inbound": 70000}, "PROXY_PORTS.inbound: 70000 not a port"),
        ({"outbound": "15001"}, "PROXY_PORTS.outbound: '15001'"),
        ({"outbound": 1.5}, "PROXY_PORTS.outbound"),
        ({"outbound": True}, "PROXY_PORTS.outbound"),
        ({"outbound": 15006}, "both 15006"),
        ([15001], "PROXY_PORTS is not an object"),
    ],
)
def test_bad_capture_ports_are_refused(ports: object, message: str) -> None:
    with pytest.raises(ProxyIdError, match=message):
        parse_node(NODE, {"PROXY_PORTS": ports})


def test_the_capture_listeners_bind_the_proxys_ports() -> None:
    state = _state()
    custom = parse_node(NODE, {"PROXY_PORTS": {"outbound": 15011, "inbound": 15016}})
    listeners = translate(state, custom).to_json()["lds"]
    assert _capture(listeners, "virtualOutbound") == (15011, [15011])
    assert _capture(listeners, "virtualInbound") == (15016, [15016])
    default = translate(state, parse_node(NODE)).to_json()["lds"]
    assert _capture(default, "virtualOutbound") == (15001, [15001])
    assert _capture(default, "virtualInbound") == (15006, [15006])


def test_shared_translation_keeps_proxies_with_other_ports_apart() -> None:
    """Replicas share halves by key; the capture ports are part of both keys."""
    translation = MeshTranslation(_state())
    default = translation.for_proxy(parse_node(NODE)).to_json()["lds"]
    custom = translation.for_proxy(
        parse_node(NODE, {"PROXY_PORTS": {"outbound": 15011, "inbound": 15016}})
    ).to_json()["lds"]
    outbound_only = translation.for_proxy(
        parse_node(NODE, {"PROXY_PORTS": {"outbound": 15011}})
    ).to_json()["lds"]
    assert _capture(default, "virtualOutbound")[0] == 15001
    assert _capture(custom, "virtualOutbound")[0] == 15011
    assert _capture(custom, "virtualInbound")[0] == 15016
    assert _capture(outbound_only, "virtualOutbound")[0] == 15011
    assert _capture(outbound_only, "virtualInbound")[0] == 15006
