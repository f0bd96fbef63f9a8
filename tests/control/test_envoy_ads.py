"""A real Envoy on the ADS server: it gets listeners, clusters, routes and endpoints, ACKs them,
follows a config-file change, and NACKs a broken push while keeping its last good config."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from control.cli.control_process import ControlPlane, ControlSettings
from control.plane.model.state import MeshState
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import LISTENER, Resources
from tests.control.envoy_proc import dump_section, run_envoy
from tests.control.translations import plane_translating_with
from tests.control.waiting import eventually

pytestmark = [pytest.mark.envoy, pytest.mark.anyio]

DATA = Path(__file__).parent / "testdata" / "translate" / "bookinfo"
NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
TYPES = ("cds", "eds", "lds", "rds")


class BreakableTranslator:
    """The real translation; when `broken`, the HTTP listener gets an empty stat_prefix, which
    protobuf accepts and Envoy's validation refuses (a stand-in for any bad push)."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self, state: MeshState, proxy: Proxy) -> Resources:
        resources = translate(state, proxy)
        if not self.broken:
            return resources
        listeners = []
        for listener in resources.of(LISTENER).values():
            listener = copy.deepcopy(listener)
            if listener.name == "0.0.0.0_9080":  # type: ignore[attr-defined]
                hcm_filter = listener.filter_chains[0].filters[0]  # type: ignore[attr-defined]
                hcm = hcm_pb2.HttpConnectionManager()
                hcm_filter.typed_config.Unpack(hcm)
                hcm.stat_prefix = ""
                # Envoy cuts its error detail short: keep the broken listener small enough
                # that the validation error (printed after the proto) is still in it.
                hcm.ClearField("access_log")
                hcm_filter.typed_config.Pack(hcm)
            listeners.append(listener)
        by_type = {t: list(resources.of(t).values()) for t in resources.by_type}
        by_type[LISTENER] = listeners
        return Resources.of_messages(by_type)


def _replace_atomically(path: Path, text: str) -> None:
    temporary = path.with_name("." + path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def _syncz(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/debug/syncz")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _route(dump: dict[str, Any], name: str) -> dict[str, Any]:
    routes = dump_section(dump, ".RoutesConfigDump")["dynamic_route_configs"]
    for route in routes:
        if route["route_config"]["name"] == name:
            config: dict[str, Any] = route["route_config"]
            return config
    raise KeyError(name)


def _vhost(route: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in route["virtual_hosts"] if v["name"] == name)


async def test_envoy_acks_follows_changes_and_survives_a_nack(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    shutil.copy(DATA / "mesh.yaml", config_dir / "mesh.yaml")
    translator = BreakableTranslator()
    settings = ControlSettings(config_dir=config_dir, xds_port=0, debug_port=0)
    async with plane_translating_with(settings, translator) as plane:
        debug = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{plane.debug_port}", trust_env=False, timeout=5
        )
        labels = {"app": "productpage", "version": "v1"}
        async with debug, run_envoy(tmp_path, NODE, plane.xds_port, labels) as envoy:

            async def all_acked() -> dict[str, Any] | None:
                proxy = (await _syncz(debug)).get("productpage-v1-abc.default")
                if proxy is None:
                    return None
                types = proxy["types"]
                done = all(t in types and types[t]["acked"] == types[t]["sent"] for t in TYPES)
                return proxy if done else None

            first = await eventually(all_acked, what=f"ACKs\n{envoy.log_tail()}")
            assert first["connectedSince"]
            prefix = first["types"]["cds"]["sent"].rsplit("-", 1)[0]
            assert prefix == plane.cache.versions.prefix

            # What Envoy holds: Istio's listeners, clusters and routes, with endpoints.
            dump = await envoy.config_dump()
            listeners = {
                item["name"]
                for item in dump_section(dump, ".ListenersConfigDump")["dynamic_listeners"]
            }
            assert {
                "virtualOutbound",
                "virtualInbound",
                "0.0.0.0_9080",
                "10.96.1.5_3306",
            } <= listeners
            clusters = await envoy.clusters()
            assert (
                "outbound|9080|v1|reviews.default.svc.cluster.local::10.244.0.21:8080" in clusters
            )
            assert (
                "outbound|9080|v2|reviews.default.svc.cluster.local::10.244.0.22:8080" in clusters
            )
            assert "10.244.0.23" not in clusters  # the not-ready pod is no endpoint
            assert "inbound|9080||" in clusters
            reviews = _vhost(_route(dump, "9080"), "reviews.default.svc.cluster.local:9080")
            weights = {
                c["name"]: c["weight"]
                for c in reviews["routes"][-1]["route"]["weighted_clusters"]["clusters"]
            }
            assert weights == {
                "outbound|9080|v1|reviews.default.svc.cluster.local": 80,
                "outbound|9080|v2|reviews.default.svc.cluster.local": 20,
            }

            # A config change by atomic rename reaches Envoy.
            text = (config_dir / "mesh.yaml").read_text()
            changed = text.replace("weight: 80", "weight: 50").replace("weight: 20", "weight: 50")
            _replace_atomically(config_dir / "mesh.yaml", changed)

            async def rebalanced() -> bool:
                vhost = _vhost(_route(await envoy.config_dump(), "9080"), reviews["name"])
                split = vhost["routes"][-1]["route"]["weighted_clusters"]["clusters"]
                return [c["weight"] for c in split] == [50, 50]

            await eventually(rebalanced, what="the new weights in Envoy")
            acked = await eventually(all_acked, what="ACK of the change")
            assert acked["types"]["rds"]["acked"] != first["types"]["rds"]["acked"]
            assert acked["types"]["cds"]["acked"] == first["types"]["cds"]["acked"]  # unchanged

            # A broken push is NACKed; Envoy keeps the last good listener.
            translator.broken = True
            plane.cache.set_state(plane.cache.state)

            async def nacked() -> dict[str, Any] | None:
                proxy = (await _syncz(debug))["productpage-v1-abc.default"]
                lds = proxy["types"]["lds"]
                return lds if lds["nacked"] else None

            lds = await eventually(nacked, what="the NACK")
            assert lds["nacked"] == lds["sent"]
            assert "stat_prefix" in lds["nackError"] or "StatPrefix" in lds["nackError"]
            assert lds["acked"] != lds["nacked"]
            dump = await envoy.config_dump()
            http_listener = next(
                item for item in dump_section(dump, ".ListenersConfigDump")["dynamic_listeners"]
                if item["name"] == "0.0.0.0_9080"
            )  # fmt: skip
            kept = http_listener["active_state"]["listener"]["filter_chains"][0]["filters"][0]
            assert kept["typed_config"]["stat_prefix"] == "outbound_0.0.0.0_9080"
            assert http_listener["error_state"]["details"]
            metrics = (await debug.get("/metrics")).text
            assert 'mizzen_xds_nacks_total{type="lds"} 1.0' in metrics

            # Fixed again: the next push is ACKed.
            translator.broken = False
            plane.cache.set_state(plane.cache.state)
            recovered = await eventually(all_acked, what="ACK after the fix")
            assert recovered["types"]["lds"]["acked"] not in (lds["acked"], lds["nacked"])
            assert "mizzen_xds_convergence_seconds_count" in metrics


async def test_a_restarted_control_plane_serves_envoy_again(tmp_path: Path) -> None:
    """The restarted process has a new version prefix: Envoy's old versions are never taken for
    ACKs, it gets the full state on its new stream, and ACKs it."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    shutil.copy(DATA / "mesh.yaml", config_dir / "mesh.yaml")
    first = ControlPlane(ControlSettings(config_dir=config_dir, xds_port=0, debug_port=0))
    await first.start()
    port = first.xds_port
    labels = {"app": "productpage", "version": "v1"}
    try:
        async with run_envoy(tmp_path, NODE, port, labels) as envoy:
            await eventually(lambda: _acked_all(first), what="first ACKs")
            await first.stop()
            second = ControlPlane(
                ControlSettings(config_dir=config_dir, xds_port=port, debug_port=0)
            )
            await second.start()
            try:
                assert second.cache.versions.prefix != first.cache.versions.prefix
                status = await eventually(lambda: _acked_all(second), what="ACKs after restart")
                for name in TYPES:
                    assert status["types"][name]["acked"].startswith(second.cache.versions.prefix)
                dump = await envoy.config_dump()
                listeners = dump_section(dump, ".ListenersConfigDump")["dynamic_listeners"]
                assert "virtualOutbound" in {item["name"] for item in listeners}
            finally:
                await second.stop()
    finally:
        await first.stop()


async def _acked_all(plane: ControlPlane) -> dict[str, Any] | None:
    proxy = plane.sync.syncz().get("productpage-v1-abc.default")
    if proxy is None:
        return None
    types = proxy["types"]
    done = all(t in types and types[t]["acked"] == types[t]["sent"] for t in TYPES)
    return proxy if done else None
