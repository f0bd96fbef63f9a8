"""The agent reads the injector's environment once, and names the variable when a value is bad."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.agent.settings import AgentOptions, AgentSettings, DiscoveryAddress, SettingsError
from injector import contract
from tests.agent.conftest import pod_env


def test_reads_the_pod_from_the_injectors_variables() -> None:
    parsed = AgentSettings.from_env(pod_env())
    assert parsed.pod_name == "client-1"
    assert parsed.namespace == "shop"
    assert parsed.labels == {"app": "client", "version": "v1"}
    assert parsed.discovery_address == DiscoveryAddress(host="10.44.0.1", port=15010)
    assert parsed.node_id == "sidecar~10.44.0.7~client-1.shop~shop.svc.cluster.local"
    assert parsed.service_cluster == "client.shop"
    assert parsed.spiffe_id == "spiffe://cluster.local/ns/shop/sa/client"
    assert parsed.status_port == contract.AGENT_STATUS_PORT


def test_cluster_domain_and_status_port_come_from_the_environment() -> None:
    parsed = AgentSettings.from_env(
        pod_env(**{contract.ENV_CLUSTER_DOMAIN: "corp.example", contract.ENV_STATUS_PORT: "0"})
    )
    assert parsed.node_id.endswith("~shop.svc.corp.example")
    assert parsed.status_port == 0


def test_a_flag_overrides_the_status_port_of_the_environment() -> None:
    env = pod_env(**{contract.ENV_STATUS_PORT: "15020"})
    assert AgentSettings.from_env(env, AgentOptions(status_port=9)).status_port == 9


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        (contract.ENV_POD_NAME, "", "is required"),
        (contract.ENV_POD_NAME, "web~1", "pattern"),
        (contract.ENV_POD_NAMESPACE, "shop.eu", "pattern"),
        (contract.ENV_INSTANCE_IP, "10.0.0.300", "IP"),
        (contract.ENV_DISCOVERY_ADDRESS, "control-plane", "host:port"),
        (contract.ENV_DISCOVERY_ADDRESS, "cp:99999", "out of range"),
        (contract.ENV_DISCOVERY_ADDRESS, "a b:15010", "no usable host"),
        (contract.ENV_LABELS, "{not json", "is not JSON"),
        (contract.ENV_LABELS, '["app"]', "JSON object"),
        (contract.ENV_LABELS, '{"app": 3}', "must be a str"),
        (contract.ENV_INTERCEPTION_MODE, "MAGIC", "REDIRECT"),
        (contract.ENV_STATUS_PORT, "http", "not a number"),
        (contract.ENV_APP_PROBES, '{"/elsewhere": {}}', "is not an /app-health/<container>"),
        (contract.ENV_APP_PROBES, '{"/app-health/a/livez": {}}', "exactly one of"),
        (
            contract.ENV_APP_PROBES,
            '{"/app-health/a/livez": {"httpGet": {"port": 0}}}',
            "httpGet.port",
        ),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        AgentSettings.from_env(pod_env(**{variable: value}))
    assert caught.value.field == variable
    assert words in str(caught.value)


def test_app_probes_are_parsed_from_the_injectors_json() -> None:
    probes = {
        "/app-health/web/readyz": {
            "httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
            "timeoutSeconds": 3,
        },
        "/app-health/web/livez": {"tcpSocket": {"port": 8080}},
    }
    parsed = AgentSettings.from_env(pod_env(**{contract.ENV_APP_PROBES: json.dumps(probes)}))
    ready = parsed.app_probes["/app-health/web/readyz"]
    assert ready.http_get is not None
    assert (ready.http_get.path, ready.http_get.port, ready.timeout_seconds) == ("/ready", 8080, 3)
    live = parsed.app_probes["/app-health/web/livez"]
    assert live.tcp_socket is not None
    assert live.tcp_socket.port == 8080


def test_settings_are_frozen() -> None:
    parsed = AgentSettings.from_env(pod_env())
    with pytest.raises(ValueError, match="frozen"):
        parsed.pod_name = "other"  # type: ignore[misc]


_LABEL = r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?"


@settings(max_examples=200)
@given(
    host=st.one_of(
        st.ip_addresses().map(str),
        st.from_regex(
            r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,20}[a-z0-9])?){0,3}",
            fullmatch=True,
        ),
    ),
    port=st.integers(min_value=1, max_value=65535),
)
def test_discovery_address_round_trips(host: str, port: int) -> None:
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert DiscoveryAddress.parse(text) == DiscoveryAddress(host=host, port=port)


@settings(max_examples=200)
@given(st.text(max_size=30))
def test_discovery_address_never_fails_without_naming_the_variable(text: str) -> None:
    try:
        parsed = DiscoveryAddress.parse(text)
    except SettingsError as error:
        field = error.field
    else:
        field = contract.ENV_DISCOVERY_ADDRESS
        assert 1 <= parsed.port <= 65535
    assert field == contract.ENV_DISCOVERY_ADDRESS


def test_the_pods_proxy_config_sets_drain_and_concurrency() -> None:
    env = pod_env(
        **{contract.ENV_PROXY_CONFIG: '{"terminationDrainDuration": "12.5s", "concurrency": 4}'}
    )
    options = AgentSettings.from_env(env).options
    assert (options.drain_duration, options.concurrency) == (12.5, 4)


def test_a_flag_beats_the_pods_proxy_config() -> None:
    env = pod_env(**{contract.ENV_PROXY_CONFIG: '{"terminationDrainDuration": "30s"}'})
    assert AgentSettings.from_env(env, AgentOptions(drain_duration=1)).options.drain_duration == 1


@pytest.mark.parametrize(
    "config",
    [
        '{"terminationDrainDuration": "5 minutes"}',
        '{"terminationDrainDuration": "999999999s"}',  # beyond what Envoy's flag takes
        '{"concurrency": -1}',
        '{"concurrency": 100000}',
        "[1]",
    ],
)
def test_a_bad_proxy_config_names_its_variable(config: str) -> None:
    with pytest.raises(SettingsError) as caught:
        AgentSettings.from_env(pod_env(**{contract.ENV_PROXY_CONFIG: config}))
    assert caught.value.field == contract.ENV_PROXY_CONFIG
