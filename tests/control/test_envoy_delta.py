"""A real Envoy with a `DELTA_GRPC` bootstrap: it gets its config incrementally, ACKs it (the
proxy shows in sync in /debug/syncz), and follows a route change and an endpoint change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control.cli.control_process import ControlPlane
from tests.control.envoy_proc import dump_section, run_envoy
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.waiting import eventually

pytestmark = [pytest.mark.envoy, pytest.mark.anyio]

DATA = Path(__file__).parent / "testdata" / "translate" / "bookinfo"
NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
KEY = "productpage-v1-abc.default"
REVIEWS = "outbound|9080||reviews.default.svc.cluster.local"


def _weights(dump: dict[str, Any]) -> list[int]:
    for route in dump_section(dump, ".RoutesConfigDump")["dynamic_route_configs"]:
        if route["route_config"]["name"] != "9080":
            continue
        for vhost in route["route_config"]["virtual_hosts"]:
            if vhost["name"] == "reviews.default.svc.cluster.local:9080":
                split = vhost["routes"][-1]["route"]["weighted_clusters"]["clusters"]
                return [c["weight"] for c in split]
    return []


async def test_envoy_on_delta_xds(tmp_path: Path) -> None:
    config_dir = bookinfo_config(tmp_path)
    settings = fast_settings(config_dir)
    labels = {"app": "productpage", "version": "v1"}
    async with (
        ControlPlane(settings) as plane,
        run_envoy(tmp_path, NODE, plane.xds_port, labels, api_type="DELTA_GRPC") as envoy,
    ):

        async def in_sync() -> dict[str, Any] | None:
            status = plane.sync.syncz().get(KEY)
            ok = status and status["inSync"] and len(status["types"]) == 4
            return status if ok else None

        first = await eventually(in_sync, what=f"Envoy in sync over delta\n{envoy.log_tail()}")
        assert first["api"] == "delta"
        assert all(t["nacked"] is None for t in first["types"].values())
        clusters = await envoy.clusters()
        assert f"{REVIEWS}::10.244.0.21:8080" in clusters
        assert "10.244.0.23" not in clusters
        assert _weights(await envoy.config_dump()) == [80, 20]

        # A route change reaches Envoy; clusters keep their version (nothing resent).
        mesh = config_dir / "mesh.yaml"
        text = mesh.read_text()
        mesh.write_text(
            text.replace("weight: 80", "weight: 50").replace("weight: 20", "weight: 50")
        )

        async def rebalanced() -> bool:
            return _weights(await envoy.config_dump()) == [50, 50]

        await eventually(rebalanced, what="new weights in Envoy")
        after = await eventually(in_sync, what="in sync after the change")
        assert after["types"]["rds"]["acked"] != first["types"]["rds"]["acked"]
        assert after["types"]["cds"]["pushes"] == first["types"]["cds"]["pushes"]

        # An endpoint change (the not-ready pod becomes ready) arrives as EDS alone.
        eds_pushes = after["types"]["eds"]["pushes"]
        text = mesh.read_text()
        mesh.write_text(
            text.replace('conditions: [{type: Ready, status: "False"}]', "conditions: []")
        )

        async def new_endpoint() -> bool:
            return f"{REVIEWS}::10.244.0.23:8080" in await envoy.clusters()

        await eventually(new_endpoint, what="the new endpoint in Envoy")
        final = await eventually(in_sync, what="in sync after the endpoint change")
        assert final["types"]["eds"]["pushes"] == eds_pushes + 1
        assert final["types"]["cds"]["pushes"] == first["types"]["cds"]["pushes"]
        assert final["types"]["lds"]["pushes"] == first["types"]["lds"]["pushes"]


async def test_an_updated_eds_cluster_finishes_warming(tmp_path: Path) -> None:
    """A DestinationRule change updates an EDS cluster whose endpoints did not change: Envoy
    warms the new cluster until its ClusterLoadAssignment arrives, so the server sends it again
    (without it the cluster stayed warming, CDS was never ACKed, the rule never applied)."""
    config_dir = bookinfo_config(tmp_path)
    labels = {"app": "productpage", "version": "v1"}
    async with (
        ControlPlane(fast_settings(config_dir)) as plane,
        run_envoy(tmp_path, NODE, plane.xds_port, labels, api_type="DELTA_GRPC") as envoy,
    ):

        async def in_sync() -> dict[str, Any] | None:
            status = plane.sync.syncz().get(KEY)
            ok = status and status["inSync"] and len(status["types"]) == 4
            return status if ok else None

        first = await eventually(in_sync, what=f"Envoy in sync\n{envoy.log_tail()}")
        rule = (
            "\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: ratings, namespace: default}\n"
            "spec: {host: ratings, trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}}\n"
        )
        (config_dir / "ratings-rule.yaml").write_text(rule)

        async def applied() -> dict[str, Any] | None:
            status = await in_sync()
            acked = status and status["types"]["cds"]["acked"] != first["types"]["cds"]["acked"]
            return status if acked else None

        await eventually(applied, what=f"the updated cluster ACKed\n{envoy.log_tail()}")
        dump = await envoy.config_dump()
        clusters = dump_section(dump, ".ClustersConfigDump")
        assert not clusters.get("dynamic_warming_clusters")
        ratings = next(
            c["cluster"] for c in clusters["dynamic_active_clusters"]
            if c["cluster"]["name"] == "outbound|9090||ratings.default.svc.cluster.local"
        )  # fmt: skip
        limits = ratings["circuit_breakers"]["thresholds"][0]
        assert limits["max_connections"] == 7
