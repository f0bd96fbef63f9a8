"""A real Envoy over State of the World: a cluster the server sends again (a DestinationRule
changed a setting) or a new one (a subset was added) warms until its ClusterLoadAssignment
arrives, so endpoints must follow the clusters (issue 17, translation 1). The bootstrap's
initial fetch timeout is 0 s, so a cluster left without endpoints stays warming for good."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control.cli.control_process import ControlPlane
from tests.control.envoy_proc import Envoy, dump_section, run_envoy
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.waiting import eventually

pytestmark = [pytest.mark.envoy, pytest.mark.anyio]

NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
KEY = "productpage-v1-abc.default"
RATINGS = "outbound|9090||ratings.default.svc.cluster.local"
REVIEWS_V3 = "outbound|9080|v3|reviews.default.svc.cluster.local"
LABELS = {"app": "productpage", "version": "v1"}


def _active(dump: dict[str, Any]) -> dict[str, dict[str, Any]]:
    clusters = dump_section(dump, ".ClustersConfigDump")
    assert not clusters.get("dynamic_warming_clusters"), clusters["dynamic_warming_clusters"]
    return {c["cluster"]["name"]: c["cluster"] for c in clusters["dynamic_active_clusters"]}


async def _settled(plane: ControlPlane, envoy: Envoy, before: str) -> dict[str, Any]:
    """In sync, with a CDS version other than `before` ACKed and no cluster warming."""

    async def check() -> dict[str, Any] | None:
        status = plane.sync.syncz().get(KEY)
        if not status or not status["inSync"] or status["types"]["cds"]["acked"] == before:
            return None
        dump = await envoy.config_dump()
        warming = dump_section(dump, ".ClustersConfigDump").get("dynamic_warming_clusters")
        return None if warming else dump

    return await eventually(check, timeout=10, what=f"the clusters ACKed\n{envoy.log_tail()}")


async def _first_sync(plane: ControlPlane) -> str:
    async def in_sync() -> str | None:
        status = plane.sync.syncz().get(KEY)
        ok = status and status["inSync"] and len(status["types"]) == 4
        return status["types"]["cds"]["acked"] if ok else None

    return await eventually(in_sync, what="Envoy in sync over SotW")


async def test_a_cluster_setting_change_applies_without_waiting(tmp_path: Path) -> None:
    config_dir = bookinfo_config(tmp_path)
    async with (
        ControlPlane(fast_settings(config_dir)) as plane,
        run_envoy(tmp_path, NODE, plane.xds_port, LABELS) as envoy,
    ):
        before = await _first_sync(plane)
        (config_dir / "ratings-rule.yaml").write_text(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: ratings, namespace: default}\n"
            "spec: {host: ratings, trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}}\n"
        )
        dump = await _settled(plane, envoy, before)
        limits = _active(dump)[RATINGS]["circuit_breakers"]["thresholds"][0]
        assert limits["max_connections"] == 7
        assert f"{RATINGS}::10.244.0.30:" in await envoy.clusters()


async def test_a_new_subset_becomes_active_with_its_endpoints(tmp_path: Path) -> None:
    config_dir = bookinfo_config(tmp_path)
    mesh = config_dir / "mesh.yaml"
    async with (
        ControlPlane(fast_settings(config_dir)) as plane,
        run_envoy(tmp_path, NODE, plane.xds_port, LABELS) as envoy,
    ):
        before = await _first_sync(plane)
        text = mesh.read_text()
        subsets = "  - name: v1\n    labels: {version: v1}\n"
        assert subsets in text
        # v3's pod becomes ready and the rule gains its subset, in one change.
        mesh.write_text(
            text.replace(subsets, subsets + "  - name: v3\n    labels: {version: v3}\n").replace(
                'conditions: [{type: Ready, status: "False"}]', "conditions: []"
            )
        )
        dump = await _settled(plane, envoy, before)
        assert REVIEWS_V3 in _active(dump)
        assert f"{REVIEWS_V3}::10.244.0.23:8080" in await envoy.clusters()
