"""`mizzen proxy-config` against a real control plane (in-process) with a Python ADS client,
and against a real Envoy's admin for the proxy's own view."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.cli.control_process import ControlPlane
from tests.cli_status.cli_run import mizzen
from tests.cli_status.test_proxy_status import control_url, node, synced_client
from tests.control.ads_client import AdsClient
from tests.control.envoy_proc import run_envoy
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.waiting import eventually

pytestmark = pytest.mark.anyio

REVIEWS = "reviews.default.svc.cluster.local"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as running:
        yield running


@pytest.fixture
async def productpage(plane: ControlPlane) -> AsyncIterator[AdsClient]:
    client = await synced_client(plane, "productpage-v1-abc", "10.244.0.10")
    yield client
    await client.close()


def rows(text: str) -> list[list[str]]:
    """Table rows split on the two-space column gaps (cells may contain single spaces)."""
    return [[c.strip() for c in line.split("  ") if c.strip()] for line in text.splitlines()]


async def test_clusters_table(
    plane: ControlPlane, productpage: AdsClient, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = await mizzen(
        capsys, "proxy-config", "clusters", "productpage-v1-abc.default",
        "--control", control_url(plane),
    )  # fmt: skip
    assert outcome.code == 0, outcome.err
    table = rows(outcome.out)
    assert table[0] == ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"]
    assert [REVIEWS, "9080", "v1", "outbound", "EDS"] in table
    assert [REVIEWS, "9080", "-", "outbound", "EDS"] in table
    assert ["-", "9080", "-", "inbound", "ORIGINAL_DST"] in table
    assert ["PassthroughCluster", "-", "-", "-", "ORIGINAL_DST"] in table


async def test_pod_without_namespace_listeners_routes_endpoints(
    plane: ControlPlane, productpage: AdsClient, capsys: pytest.CaptureFixture[str]
) -> None:
    url = control_url(plane)
    listeners = await mizzen(capsys, "proxy-config", "listeners", "productpage-v1-abc",
                             "--control", url)  # fmt: skip
    assert listeners.code == 0, listeners.err
    table = rows(listeners.out)
    assert table[0] == ["NAME", "ADDRESSES", "PORT", "MATCH", "DESTINATION"]
    assert ["0.0.0.0_9080", "0.0.0.0", "9080", "ALL", "Route: 9080"] in table
    inbound = ["virtualInbound", "0.0.0.0", "15006", "port 9080", "Inline Route: inbound|9080||"]
    assert inbound in table

    routes = await mizzen(capsys, "proxy-config", "routes", "productpage-v1-abc", "--control", url)
    assert routes.code == 0, routes.err
    reviews = [r for r in rows(routes.out) if r[1] == f"{REVIEWS}:9080"]
    assert ["9080", f"{REVIEWS}:9080", f"{REVIEWS}, {REVIEWS}:9080 +8 more", "/* [end-user]",
            f"outbound|9080|v2|{REVIEWS}"] in reviews  # fmt: skip

    endpoints = await mizzen(capsys, "proxy-config", "endpoints", "productpage-v1-abc",
                             "--control", url)  # fmt: skip
    assert endpoints.code == 0, endpoints.err
    table = rows(endpoints.out)
    assert ["10.244.0.21:8080", "HEALTHY", "n/a", f"outbound|9080|v1|{REVIEWS}"] in table
    assert not any(r[0].startswith("10.244.0.23") for r in table)  # the not-ready pod

    as_json = await mizzen(capsys, "proxy-config", "clusters", "productpage-v1-abc", "-o", "json",
                           "--control", url)  # fmt: skip
    names = {c["name"] for c in json.loads(as_json.out)}
    assert f"outbound|9080|v1|{REVIEWS}" in names


async def test_unknown_proxy_and_unreachable_control_plane(
    plane: ControlPlane, productpage: AdsClient, capsys: pytest.CaptureFixture[str],
    unused_port: int,
) -> None:  # fmt: skip
    unknown = await mizzen(capsys, "proxy-config", "clusters", "nobody.default",
                           "--control", control_url(plane))  # fmt: skip
    assert unknown.code == 1
    assert unknown.err == (
        "mizzen proxy-config: no connected proxy 'nobody.default' "
        "(1 connected; see `mizzen proxy-status`)\n"
    )
    down = await mizzen(capsys, "proxy-config", "routes", "productpage-v1-abc",
                        "--control", f"http://127.0.0.1:{unused_port}")  # fmt: skip
    assert down.code == 1
    assert down.err.startswith(f"mizzen proxy-config: cannot reach http://127.0.0.1:{unused_port}")
    assert down.err.count("\n") == 1


async def test_ambiguous_pod_name(plane: ControlPlane, capsys: pytest.CaptureFixture[str]) -> None:
    clients = [AdsClient(plane.xds_port, node("web", f"10.0.0.{i}", ns)) for i, ns in
               enumerate(("a", "b"), start=1)]  # fmt: skip
    try:
        for client in clients:
            client.send("type.googleapis.com/envoy.config.cluster.v3.Cluster")
            await client.recv()
        outcome = await mizzen(capsys, "proxy-config", "clusters", "web",
                               "--control", control_url(plane))  # fmt: skip
        assert outcome.code == 1
        assert outcome.err == (
            "mizzen proxy-config: pod 'web' is in several namespaces; give one of: web.a, web.b\n"
        )
    finally:
        for client in clients:
            await client.close()


async def test_unreachable_envoy_admin_falls_back_to_the_control_plane(
    plane: ControlPlane, productpage: AdsClient, capsys: pytest.CaptureFixture[str],
    unused_port: int,
) -> None:  # fmt: skip
    outcome = await mizzen(capsys, "proxy-config", "clusters", "productpage-v1-abc.default",
                           "--control", control_url(plane),
                           "--envoy-admin", f"http://127.0.0.1:{unused_port}")  # fmt: skip
    assert outcome.code == 0
    assert "Envoy admin: cannot reach" in outcome.err
    assert outcome.err.rstrip().endswith("showing the control plane's view")
    assert [REVIEWS, "9080", "v1", "outbound", "EDS"] in rows(outcome.out)


@pytest.mark.envoy
async def test_envoy_admin_view_beside_the_control_plane(
    plane: ControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node_id = node("productpage-v1-abc", "10.244.0.10")
    labels = {"app": "productpage", "version": "v1"}
    async with run_envoy(tmp_path, node_id, plane.xds_port, labels) as envoy:
        url = control_url(plane)

        async def synced() -> bool:
            outcome = await mizzen(capsys, "proxy-status", "--control", url)
            return "SYNCED  SYNCED  SYNCED  SYNCED" in outcome.out

        await eventually(synced, what="Envoy synced")
        clusters = await mizzen(capsys, "proxy-config", "clusters", "productpage-v1-abc",
                                "--control", url, "--envoy-admin", envoy.admin)  # fmt: skip
        assert clusters.code == 0, clusters.err
        control_part, envoy_part = clusters.out.split("# Envoy admin ")
        assert [REVIEWS, "9080", "v1", "outbound", "EDS"] in rows(control_part)
        assert [REVIEWS, "9080", "v1", "outbound", "EDS"] in rows(envoy_part)
        assert ["xds-grpc", "-", "-", "-", "STATIC"] in rows(envoy_part)  # the bootstrap's
        assert "Envoy holds every cluster sent" in clusters.out  # the bootstrap's not counted

        listeners = await mizzen(capsys, "proxy-config", "listeners", "productpage-v1-abc",
                                 "--control", url, "--envoy-admin", envoy.admin)  # fmt: skip
        assert "Envoy holds every listener sent" in listeners.out
        assert ["0.0.0.0_9080", "0.0.0.0", "9080", "ALL", "Route: 9080"] in rows(
            listeners.out.split("# Envoy admin ")[1]
        )

        routes = await mizzen(capsys, "proxy-config", "routes", "productpage-v1-abc",
                              "--control", url, "--envoy-admin", envoy.admin)  # fmt: skip
        assert "Envoy holds every route sent" in routes.out

        endpoints = await mizzen(capsys, "proxy-config", "endpoints", "productpage-v1-abc",
                                 "--control", url, "--envoy-admin", envoy.admin,
                                 "-o", "json")  # fmt: skip
        both = json.loads(endpoints.out)
        held = {s["name"]: s for s in both["envoy"]}
        hosts = held[f"outbound|9080|v1|{REVIEWS}"]["host_statuses"]
        assert [h["address"]["socket_address"]["port_value"] for h in hosts] == [8080]
        table = await mizzen(capsys, "proxy-config", "endpoints", "productpage-v1-abc",
                             "--control", url, "--envoy-admin", envoy.admin)  # fmt: skip
        envoy_rows = rows(table.out.split("# Envoy admin ")[1])
        assert "Envoy holds every endpoint sent" in table.out
        assert ["10.244.0.21:8080", "HEALTHY", "OK", f"outbound|9080|v1|{REVIEWS}"] in envoy_rows
