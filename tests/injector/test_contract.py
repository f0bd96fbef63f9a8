"""Both sides of the contract: the agent reads the environment the injector writes.

Every injected proxy container of the golden files, with its downward-API fields filled in as
the kubelet would, must give valid agent settings (`control.agent.settings.AgentSettings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from control.agent.settings import AgentSettings
from injector import contract

TESTDATA = Path(__file__).parent / "testdata"
DOWNWARD = {
    "metadata.name": "web-1",
    "metadata.namespace": "shop",
    "status.podIP": "10.244.0.7",
    "spec.serviceAccountName": "web",
    "spec.nodeName": "node-1",
}


def _proxies(document: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(document, dict):
        if document.get("name") == contract.PROXY_CONTAINER_NAME and "env" in document:
            found.append(document)
        for value in document.values():
            found += _proxies(value)
    elif isinstance(document, list):
        for value in document:
            found += _proxies(value)
    return found


def _proxy_containers() -> list[tuple[str, dict[str, Any]]]:
    containers = []
    for golden in sorted(TESTDATA.glob("*.yaml.injected")):
        for document in yaml.safe_load_all(golden.read_text()):
            for index, proxy in enumerate(_proxies(document)):
                containers.append((f"{golden.name.removesuffix('.yaml.injected')}-{index}", proxy))
    return containers


CONTAINERS = _proxy_containers()


@pytest.mark.parametrize(("case", "proxy"), CONTAINERS, ids=[case for case, _ in CONTAINERS])
def test_the_agent_accepts_the_injected_environment(case: str, proxy: dict[str, Any]) -> None:
    env = {}
    for item in proxy["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = DOWNWARD[item["valueFrom"]["fieldRef"]["fieldPath"]]
    settings = AgentSettings.from_env(env)
    assert settings.pod_name == "web-1"
    assert settings.namespace == "shop"
    assert proxy["command"] == list(contract.PROXY_COMMAND)


def test_there_are_proxies_to_check() -> None:
    assert len(CONTAINERS) >= 40
