"""DestinationRule fields that were silently dropped, now on the wire (issue 17): a real Envoy
ACKs and holds the retry budget, slow start (`warmup`, and the deprecated
`warmupDurationSecs`), and the affinity cookie's attributes and session ttl (`0s`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control.cli.control_process import ControlPlane
from tests.control.envoy_proc import dump_section, run_envoy
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.waiting import eventually

pytestmark = [pytest.mark.envoy, pytest.mark.anyio]

NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
KEY = "productpage-v1-abc.default"
RULES = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    retryBudget: {percent: 25, minRetryConcurrency: 5}
    loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 30s, aggression: 2, minimumPercent: 10}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {loadBalancer: {warmupDurationSecs: 15s}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: user
          ttl: 0s
          attributes: [{name: SameSite, value: Strict}, {name: Secure}]
"""


def _clusters(dump: dict[str, Any]) -> dict[str, dict[str, Any]]:
    section = dump_section(dump, ".ClustersConfigDump")
    return {c["cluster"]["name"]: c["cluster"] for c in section["dynamic_active_clusters"]}


def _hash_policies(dump: dict[str, Any], vhost_prefix: str) -> list[Any]:
    for config in dump_section(dump, ".RoutesConfigDump")["dynamic_route_configs"]:
        for vhost in config["route_config"]["virtual_hosts"]:
            if vhost["name"].startswith(vhost_prefix):
                return [r["route"].get("hash_policy") for r in vhost["routes"]]
    return []


async def test_envoy_holds_the_destination_rule_fields(tmp_path: Path) -> None:
    config_dir = bookinfo_config(tmp_path)
    (config_dir / "rules.yaml").write_text(RULES)
    labels = {"app": "productpage", "version": "v1"}
    async with (
        ControlPlane(fast_settings(config_dir)) as plane,
        run_envoy(tmp_path, NODE, plane.xds_port, labels) as envoy,
    ):

        async def in_sync() -> dict[str, Any] | None:
            status = plane.sync.syncz().get(KEY)
            ok = status and status["inSync"] and len(status["types"]) == 4
            return status if ok else None

        status = await eventually(in_sync, what=f"Envoy in sync\n{envoy.log_tail()}")
        assert all(t["nacked"] is None for t in status["types"].values())
        dump = await envoy.config_dump()
        clusters = _clusters(dump)
        ratings = clusters["outbound|9090||ratings.default.svc.cluster.local"]
        threshold = ratings["circuit_breakers"]["thresholds"][0]
        assert threshold["retry_budget"] == {
            "budget_percent": {"value": 25},
            "min_retry_concurrency": 5,
        }
        assert ratings.get("lb_policy", "ROUND_ROBIN") == "ROUND_ROBIN"  # the default is omitted
        assert ratings["round_robin_lb_config"]["slow_start_config"] == {
            "slow_start_window": "30s",
            "aggression": {"default_value": 2, "runtime_key": "mizzen.lb.slow_start.aggression"},
            "min_weight_percent": {"value": 10},
        }
        # The subset's load balancer replaces the rule's: LEAST_REQUEST, the deprecated window.
        subset = clusters["outbound|9090|v1|ratings.default.svc.cluster.local"]
        slow = subset["least_request_lb_config"]["slow_start_config"]
        assert slow == {"slow_start_window": "15s"}
        assert "retry_budget" in subset["circuit_breakers"]["thresholds"][0]

        policies = _hash_policies(dump, "productpage.default.svc.cluster.local")
        assert policies
        cookie = {
            "name": "user",
            "ttl": "0s",
            "attributes": [{"name": "SameSite", "value": "Strict"}, {"name": "Secure"}],
        }
        assert all(p == [{"cookie": cookie}] for p in policies), policies
