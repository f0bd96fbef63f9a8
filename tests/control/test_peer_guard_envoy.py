"""The server's guard on a claimed peer, in a real Envoy: the inbound telemetry that translation
writes (`http_telemetry`, a plaintext chain: the header is believed) served by Envoy, a client
sending `x-mizzen-peer` values no sidecar would, and the series Envoy exports read back as the
agent reads them. Whatever a client claims, the facts split into their fields (a `|` never
shifts them), the peer holds only the identity's alphabet, and a series' peer is at most one
identity long (the header itself may be ~60 KiB)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.agent.telemetry.exposition import parse_labels, split_sample
from control.plane.xds.translate.telemetry import (
    ChainSecurity,
    Direction,
    Telemetry,
    http_telemetry,
)
from control.telemetry.facts import split_facts
from control.telemetry.peer import MAX_PEER_LENGTH, PEER_HEADER
from tests.control.envoy_proc import Envoy, run_envoy_config

pytestmark = [pytest.mark.envoy, pytest.mark.anyio]

_T = "type.googleapis.com/"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
WELL_FORMED = "client;demo;client;v1;client;v1;Kubernetes;client"


def _bootstrap() -> dict[str, Any]:
    telemetry = http_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.PLAINTEXT)
    router_type = _T + "envoy.extensions.filters.http.router.v3.Router"
    router = {"name": "envoy.filters.http.router", "typed_config": {"@type": router_type}}
    manager = {
        "@type": _T + _HCM,
        "stat_prefix": "inbound",
        "access_log": telemetry.access_log,
        "http_filters": [*telemetry.filters, router],
        "route_config": {
            "virtual_hosts": [{
                "name": "app", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"},
                            "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}],
            }],
        },
    }  # fmt: skip
    listener = {
        "name": "inbound",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager", "typed_config": manager,
        }]}],
    }  # fmt: skip
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [listener]},
    }


@pytest.fixture
async def envoy(tmp_path: Path) -> AsyncIterator[Envoy]:
    async with run_envoy_config(tmp_path, _bootstrap()) as running:
        yield running


async def _listener_url(envoy: Envoy) -> str:
    for _ in range(100):
        listeners = (await envoy.http.get("/listeners", params={"format": "json"})).json()
        for status in listeners.get("listener_statuses", []):
            address = status["local_address"]["socket_address"]
            if address.get("port_value"):
                return f"http://127.0.0.1:{address['port_value']}"
        await asyncio.sleep(0.05)
    raise AssertionError("the listener never bound")


async def _recorded_peers(envoy: Envoy) -> list[str]:
    """The peer field of each `istio_requests_total` series, read as the agent reads them."""
    text = (await envoy.http.get("/stats/prometheus")).text
    peers = []
    for line in text.splitlines():
        sample = split_sample(line)
        if sample and sample.name == "envoy_istio_requests_total":
            labels = parse_labels(sample.labels)
            facts = split_facts(labels)
            assert facts.get("reporter") == "destination", labels  # split, and no field shifted
            assert facts["response_code"] == "200", labels
            peers.append(facts["peer"])
    return peers


async def test_whatever_a_client_claims_the_recorded_peer_is_bounded_and_never_shifts_the_facts(
    envoy: Envoy,
) -> None:
    claims = {
        "well-formed": WELL_FORMED,
        "separators": f"{WELL_FORMED}|x|y",
        "quotes and braces": 'a;b"},evil="1',
        "long": "x" * 3_000,
        "huge": "y" * 50_000,  # header_to_metadata ignores a value over 8 KiB: no peer
    }
    url = await _listener_url(envoy)
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=5) as client:
        for claim in claims.values():
            response = await client.get("/", headers={PEER_HEADER: claim})
            assert response.status_code == 200
    peers: list[str] = []
    for _ in range(100):  # the stats logger records as the request ends
        peers = await _recorded_peers(envoy)
        if len(peers) == len(claims):
            break
        await asyncio.sleep(0.05)
    assert sorted(peers) == sorted(
        [WELL_FORMED, f"{WELL_FORMED}xy", "a;bevil1", "x" * MAX_PEER_LENGTH, ""]
    ), json.dumps(peers)[:500]
