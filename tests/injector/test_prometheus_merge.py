"""Istio's metrics merging in the injector: the scrape annotations point at the agent, the
app's own travel in the proxy's environment and come back when the pod is injected again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from injector import InjectionConfig, InjectionContext, contract, inject
from injector.prometheus import merge_metrics

CONTEXT = InjectionContext("default", {"istio-injection": "enabled"})


def _pod(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }


def _proxy_env(pod: dict[str, Any]) -> dict[str, str]:
    containers = [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]
    proxy = next(c for c in containers if c["name"] == contract.PROXY_CONTAINER_NAME)
    return {e["name"]: e.get("value", "") for e in proxy["env"]}


def test_app_annotations_move_to_the_proxy_env_and_survive_reinjection() -> None:
    original = {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}
    result = inject(_pod(original), CONTEXT, InjectionConfig())
    annotations = result.pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "15020"
    assert annotations["prometheus.io/path"] == "/stats/prometheus"
    assert annotations["prometheus.io/scrape"] == "true"
    kept = json.loads(_proxy_env(result.pod)[contract.ENV_PROMETHEUS_ANNOTATIONS])
    assert kept == {"scrape": "true", "port": "9100"}
    again = inject(result.pod, CONTEXT, InjectionConfig())
    assert again.pod == result.pod  # un-injected (originals restored), injected the same way
    assert again.patch == []


@pytest.mark.parametrize(
    ("annotations", "enabled"),
    [
        ({"prometheus.io/scrape": "false"}, True),
        ({"prometheus.istio.io/merge-metrics": "false", "prometheus.io/port": "9"}, True),
        ({}, False),
    ],
)
def test_merging_is_skipped_as_istio_skips_it(annotations: dict[str, str], enabled: bool) -> None:
    assert merge_metrics(annotations, enabled) == ({}, None)


def test_the_pod_annotation_turns_merging_on_against_the_mesh_default() -> None:
    merged, env = merge_metrics({"prometheus.istio.io/merge-metrics": "true"}, enabled=False)
    assert merged["prometheus.io/port"] == "15020"
    assert env is None  # the app had no scrape annotations of its own


def test_mesh_config_key_turns_merging_off() -> None:
    config = InjectionConfig.from_mapping({"enablePrometheusMerge": False})
    result = inject(_pod({}), CONTEXT, config)
    assert "prometheus.io/port" not in result.pod["metadata"].get("annotations", {})
    assert contract.ENV_PROMETHEUS_ANNOTATIONS not in _proxy_env(result.pod)
