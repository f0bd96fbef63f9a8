"""Routing proven with real packets: the client's requests to a Service's cluster IP are captured
by the redirect, routed by a real Envoy configured over ADS by the control plane, and land on
real backends in other network namespaces."""

from __future__ import annotations

import json
import time

import pytest

from control.demo import sample
from tests.e2e.conftest import URL, Mesh

pytestmark = [pytest.mark.netns, pytest.mark.envoy, pytest.mark.slow]

DEFAULT = sample.Routing()
ALL_V2 = sample.Routing(v1_weight=0, v2_weight=100)


def _restore(mesh: Mesh) -> None:
    mesh.set_routing(DEFAULT)
    mesh.converge(lambda s: "v1" in s.versions, timeout=15)


def test_weighted_split_is_80_20_over_1000_requests(mesh: Mesh) -> None:
    summary = mesh.requests(1000)
    assert summary.errors == 0, summary.first_error
    assert summary.statuses == {"200": 1000}
    assert 750 <= summary.versions.get("v1", 0) <= 850, summary.versions
    assert summary.versions.get("v1", 0) + summary.versions.get("v2", 0) == 1000


def test_header_match_pins_to_v2(mesh: Mesh) -> None:
    summary = mesh.requests(100, **{sample.PIN_HEADER: "v2"})
    assert summary.versions == {"v2": 100}
    other = mesh.requests(100, **{sample.PIN_HEADER: "v1"})
    assert "v1" in other.versions  # a value the match does not name falls through to the split


def test_fault_abort_returns_its_status(mesh: Mesh) -> None:
    summary = mesh.requests(20, path=sample.FAULT_PREFIX + "/x")
    assert summary.statuses == {str(DEFAULT.fault_status): 20}
    assert summary.versions == {}  # aborted in the client's Envoy: no backend answered


def test_config_edit_reroutes_within_a_second_without_failed_requests(mesh: Mesh) -> None:
    from control.demo.mesh import stream_requests

    stream = stream_requests(mesh.client, URL, duration=20)
    assert stream.stdin is not None
    assert stream.stdout is not None
    started = json.loads(stream.stdout.readline())
    assert started.get("started")
    time.sleep(0.5)
    edited_at = time.monotonic()
    mesh.set_routing(ALL_V2)
    time.sleep(2.5)
    out, _ = stream.communicate(timeout=30)  # closing stdin ends the stream
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    try:
        failures = [r for r in results if "error" in r or r.get("status") != 200]
        assert not failures, failures[:5]
        before = [r for r in results if r["t"] < edited_at]
        assert before
        assert {r["version"] for r in before} == {"v1", "v2"}
        last_v1 = max((r["t"] for r in results if r["version"] == "v1"), default=edited_at)
        assert last_v1 - edited_at < 1.0, f"v1 still answered {last_v1 - edited_at:.2f}s after"
        after = [r for r in results if r["t"] > last_v1]
        assert len(after) >= 20
        assert {r["version"] for r in after} == {"v2"}
    finally:
        _restore(mesh)


def test_control_plane_death_keeps_the_last_config_and_a_restart_converges(mesh: Mesh) -> None:
    mesh.kill_control_plane()
    try:
        mesh.set_routing(ALL_V2)  # nobody serves it yet
        during = mesh.requests(200)
        assert during.errors == 0, during.first_error
        assert during.statuses == {"200": 200}
        assert during.versions.get("v1", 0) > 100  # still the 80/20 split: the last good config
        pinned = mesh.requests(20, **{sample.PIN_HEADER: "v2"})
        assert pinned.versions == {"v2": 20}
    finally:
        mesh.start_control_plane()
    seconds = mesh.converge(lambda s: s.versions == {"v2": 5}, timeout=20)
    after = mesh.requests(100)
    assert after.versions == {"v2": 100}, f"converged after {seconds:.1f}s, then {after}"
    _restore(mesh)
