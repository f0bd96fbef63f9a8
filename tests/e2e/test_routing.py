"""Routing proven with real packets: the client's requests to a Service's cluster IP are captured
by the redirect, routed by a real Envoy configured over ADS by the control plane, and land on
real backends in other network namespaces."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from control.cli.demo import sample
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


def test_a_backend_with_a_sidecar_is_reached_through_its_inbound_capture(mesh: Mesh) -> None:
    """v2's own Envoy forwards inbound requests from 127.0.0.6 (Istio's passthrough source);
    the plain v1 sees the client pod itself."""
    summary = mesh.requests(100)
    assert summary.errors == 0, summary.first_error
    assert set(summary.peers) == {f"v1 from {mesh.client.ip}", "v2 from 127.0.0.6"}


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
    from control.cli.demo.mesh import stream_requests

    stream = stream_requests(mesh.client, URL, duration=20)
    stream.wait_started()
    time.sleep(0.5)
    edited_at = time.monotonic()
    mesh.set_routing(ALL_V2)
    time.sleep(2.5)
    results = stream.stop()
    try:
        failures = [r for r in results if "error" in r or r.get("status") != 200]
        assert not failures, failures[:5]
        before = [r for r in results if r["t"] < edited_at]
        assert before
        assert {r["version"] for r in before} == {"v1", "v2"}
        last_v1 = max((r["t"] for r in results if r["version"] == "v1"), default=edited_at)
        assert last_v1 - edited_at < 1.0, f"v1 still answered {last_v1 - edited_at:.2f}s after"
        after = [r for r in results if r["t"] > last_v1]
        assert len(after) >= 20, (f"edited at {edited_at:.3f}", results[-10:], mesh.diagnostics())
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


def test_the_client_envoy_runs_as_the_proxy_uid_under_a_root_agent(mesh: Mesh) -> None:
    """The redirect exempts only uid 1337's packets: a root Envoy would capture itself."""
    pids = mesh.client.run(["ip", "netns", "pids", mesh.client.netns]).stdout.split()
    owners = {}
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
            owners[fields["Name"].strip()] = int(fields["Uid"].split()[0])
    assert owners.get("envoy") == 1337, owners
    assert any(name.startswith("python") and uid == 0 for name, uid in owners.items()), owners


_GET = (
    "import sys, urllib.request\n"
    "r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
    "print(r.status); print(r.read().decode())\n"
)


@pytest.mark.parametrize(
    ("port", "path", "expected"),
    [
        (15021, "/healthz/ready", "ready"),  # what the kubelet asks
        (15090, "/stats/prometheus", "envoy_cluster_upstream_rq"),  # Envoy's own metrics
        (15020, "/stats/prometheus", "envoy_cluster_upstream_rq"),  # through the agent
    ],
)
def test_health_and_metrics_are_reachable_from_outside_the_pod(
    mesh: Mesh, port: int, path: str, expected: str
) -> None:
    """From the node's side of the bridge, past the redirect (these ports are excluded)."""
    url = f"http://{mesh.client.ip}:{port}{path}"
    out = mesh.topology.host.run([sys.executable, "-c", _GET, url]).stdout
    status, _, body = out.partition("\n")
    assert status == "200"
    assert expected in body


def test_envoy_admin_is_not_reachable_from_outside_the_pod(mesh: Mesh) -> None:
    """Admin listens on 127.0.0.1 only; from outside, port 15000 is just another inbound port
    (captured to 15006, where no chain serves it): the connection fails, nothing answers."""
    url = f"http://{mesh.client.ip}:15000/ready"
    done = mesh.topology.host.run([sys.executable, "-c", _GET, url], check=False)
    assert done.returncode != 0
    assert "LIVE" not in done.stdout
    assert re.search(r"Connection (refused|reset)|RemoteDisconnected|timed out", done.stderr), (
        done.stderr
    )
