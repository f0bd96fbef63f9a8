"""Envoy's bootstrap: a golden file reviewers read, the properties the control plane relies on,
and the real Envoy's verdict on every variant."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from control.agent.bootstrap import XDS_CLUSTER, bootstrap_yaml, render_bootstrap
from control.agent.envoy_binary import find_envoy
from control.agent.settings import AgentOptions, AgentSettings
from injector import contract
from tests.agent.conftest import pod_env

GOLDEN = Path(__file__).parent / "testdata" / "bootstrap.yaml"
REFRESH = os.environ.get("MIZZEN_REFRESH_GOLDEN") == "1"
VERSION = "0.1.0"


def _settings(
    options: AgentOptions | None = None, env: dict[str, str] | None = None
) -> AgentSettings:
    return AgentSettings.from_env(pod_env(**(env or {})), options)


def test_golden() -> None:
    """Refresh with MIZZEN_REFRESH_GOLDEN=1 and review the diff."""
    rendered = bootstrap_yaml(_settings(), VERSION)
    if REFRESH:
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text()


def test_ads_waits_for_the_control_plane_and_sends_the_node_once() -> None:
    dynamic = render_bootstrap(_settings(), VERSION)["dynamic_resources"]
    ads = dynamic["ads_config"]
    assert ads["set_node_on_first_message_only"] is True
    assert ads["api_type"] == "DELTA_GRPC"  # Delta by default
    sotw = render_bootstrap(_settings(AgentOptions(xds_api="GRPC")), VERSION)
    assert sotw["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"
    assert ads["grpc_services"] == [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}]
    for source in ("cds_config", "lds_config"):
        assert dynamic[source] == {
            "ads": {},
            "initial_fetch_timeout": "0s",
            "resource_api_version": "V3",
        }


def test_node_identifies_the_pod_for_the_control_plane() -> None:
    node = render_bootstrap(_settings(), VERSION)["node"]
    assert node["id"] == "sidecar~10.44.0.7~client-1.shop~shop.svc.cluster.local"
    assert node["metadata"]["NAMESPACE"] == "shop"
    assert node["metadata"]["SERVICE_ACCOUNT"] == "client"
    assert node["metadata"]["LABELS"] == {"app": "client", "version": "v1"}
    assert node["metadata"]["INSTANCE_IPS"] == "10.44.0.7"


def test_admin_listens_on_localhost_only() -> None:
    admin = render_bootstrap(_settings(AgentOptions(admin_port=16000)), VERSION)["admin"]
    assert admin["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 16000}


def test_a_hostname_discovery_address_is_resolved_by_dns() -> None:
    rendered = render_bootstrap(
        _settings(env={contract.ENV_DISCOVERY_ADDRESS: "mizzen.mizzen-system.svc:15010"}), VERSION
    )
    cluster = rendered["static_resources"]["clusters"][0]
    assert (cluster["name"], cluster["type"]) == (XDS_CLUSTER, "STRICT_DNS")
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    address = endpoint["address"]["socket_address"]
    assert address == {"address": "mizzen.mizzen-system.svc", "port_value": 15010}


def test_an_ipv6_pod_exposes_prometheus_on_its_own_family() -> None:
    env = {contract.ENV_INSTANCE_IP: "fd00::7", contract.ENV_DISCOVERY_ADDRESS: "[fd00::1]:15010"}
    [listener] = render_bootstrap(_settings(env=env), VERSION)["static_resources"]["listeners"]
    address = listener["address"]["socket_address"]
    assert address == {"address": "::", "port_value": 15090, "ipv4_compat": True}
    [v4] = render_bootstrap(_settings(), VERSION)["static_resources"]["listeners"]
    assert v4["address"]["socket_address"]["address"] == "0.0.0.0"


def test_prometheus_port_zero_leaves_no_listener() -> None:
    rendered = render_bootstrap(_settings(AgentOptions(prometheus_port=0)), VERSION)
    assert rendered["static_resources"]["listeners"] == []
    names = [c["name"] for c in rendered["static_resources"]["clusters"]]
    assert names == [XDS_CLUSTER]


def test_labels_cannot_inject_yaml() -> None:
    """Label values travel as data: a value full of YAML syntax comes back unchanged."""
    nasty = 'x"\n  admin: {address: evil}\n- &a *a'
    settings = _settings(env={contract.ENV_LABELS: json.dumps({"app": nasty})})
    loaded = yaml.safe_load(bootstrap_yaml(settings, VERSION))
    assert loaded["node"]["metadata"]["LABELS"]["app"] == nasty
    assert loaded["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


VARIANTS = {
    "default": ({}, None),
    "hostname-discovery": (
        {contract.ENV_DISCOVERY_ADDRESS: "mizzen.mizzen-system.svc:15010"},
        None,
    ),
    "ipv6-pod": (
        {contract.ENV_INSTANCE_IP: "fd00::7", contract.ENV_DISCOVERY_ADDRESS: "[fd00::1]:15010"},
        None,
    ),
    "no-prometheus": ({}, AgentOptions(prometheus_port=0, admin_port=16000)),
    "no-labels": ({contract.ENV_LABELS: "{}", contract.ENV_WORKLOAD_NAME: ""}, None),
}


@pytest.mark.envoy
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_envoy_accepts_the_bootstrap(variant: str, tmp_path: Path) -> None:
    env, options = VARIANTS[variant]
    path = tmp_path / "bootstrap.yaml"
    path.write_text(bootstrap_yaml(_settings(options, env), VERSION))
    result = subprocess.run(
        [str(find_envoy()), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr
