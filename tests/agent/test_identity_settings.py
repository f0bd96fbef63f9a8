"""The agent's identity settings from the pod's environment and flags, and what they do to
Envoy's bootstrap (the SDS cluster, xDS over mutual TLS), checked by the real Envoy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from control.agent.bootstrap import XDS_CLUSTER, bootstrap_yaml, render_bootstrap
from control.agent.envoy_binary import find_envoy
from control.agent.identity_settings import IdentityOptions
from control.agent.settings import AgentOptions, AgentSettings, SettingsError
from control.config.sds_names import SDS_CLUSTER
from injector import contract
from tests.agent.conftest import pod_env

IDENTITY_ENV = {
    contract.ENV_TOKEN_PATH: contract.TOKEN_PATH,
    contract.ENV_ROOT_CERT_PATH: contract.ROOT_CERT_PATH,
    contract.ENV_SDS_SOCKET_PATH: contract.SDS_SOCKET_PATH,
    contract.ENV_DISCOVERY_ADDRESS: "mizzen.mizzen-system.svc:15012",
}


def _settings(identity: IdentityOptions | None = None, **env: str) -> AgentSettings:
    options = AgentOptions(identity=identity or IdentityOptions())
    return AgentSettings.from_env(pod_env(**{**IDENTITY_ENV, **env}), options)


def test_identity_is_on_when_the_pod_has_a_token() -> None:
    identity = _settings().identity
    assert identity is not None
    assert identity.spiffe_id == "spiffe://cluster.local/ns/shop/sa/client"
    assert str(identity.token_path) == contract.TOKEN_PATH
    assert (identity.ca_host, identity.ca_port) == ("mizzen.mizzen-system.svc", 15012)
    assert identity.discovery_host == "mizzen.mizzen-system.svc"
    assert identity.key_spec.describe() == "ECDSA P256"  # mizzen's default (Istio: RSA 2048)
    assert identity.cert_ttl == 86400
    assert AgentSettings.from_env(pod_env()).identity is None  # no token: off (tests, demo)
    assert _settings(IdentityOptions(mode="off")).identity is None


def test_istio_proxy_metadata_and_flags_are_honoured() -> None:
    rsa = _settings(ECC_SIGNATURE_ALGORITHM="RSA", WORKLOAD_RSA_KEY_SIZE="3072").identity
    assert rsa is not None
    assert rsa.key_spec.describe() == "RSA 3072"
    p384 = _settings(ECC_SIGNATURE_ALGORITHM="ECDSA", ECC_CURVE="P384").identity
    assert p384 is not None
    assert p384.key_spec.describe() == "ECDSA P384"
    ttl = _settings(SECRET_TTL="1h30m", CA_ADDR="ca.example:8443").identity
    assert ttl is not None
    assert ttl.cert_ttl == 5400
    assert (ttl.ca_host, ttl.ca_port) == ("ca.example", 8443)
    flags = _settings(IdentityOptions(ca_address="[fd00::1]:15012", cert_ttl=20)).identity
    assert flags is not None
    assert (flags.ca_target, flags.cert_ttl) == ("[fd00::1]:15012", 20)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({contract.ENV_ROOT_CERT_PATH: ""}, contract.ENV_ROOT_CERT_PATH),
        ({contract.ENV_SDS_SOCKET_PATH: ""}, contract.ENV_SDS_SOCKET_PATH),
        ({"ECC_SIGNATURE_ALGORITHM": "DSA"}, "ECC_SIGNATURE_ALGORITHM"),
        ({"ECC_CURVE": "P521"}, "ECC_CURVE"),
        (
            {"ECC_SIGNATURE_ALGORITHM": "RSA", "WORKLOAD_RSA_KEY_SIZE": "1024"},
            "WORKLOAD_RSA_KEY_SIZE",
        ),
        ({"SECRET_TTL": "soon"}, "SECRET_TTL"),
        ({"CA_ADDR": "no-port"}, "CA_ADDR"),
        ({contract.ENV_SERVICE_ACCOUNT: "Not_Valid"}, contract.ENV_SERVICE_ACCOUNT),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError) as error:
        _settings(**env)
    assert error.value.field == field


def test_the_bootstrap_gets_the_sds_cluster_and_xds_over_mutual_tls() -> None:
    rendered = render_bootstrap(_settings(), "0.1.0")
    clusters = {c["name"]: c for c in rendered["static_resources"]["clusters"]}
    sds = clusters[SDS_CLUSTER]
    pipe = sds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert pipe == {"pipe": {"path": contract.SDS_SOCKET_PATH}}
    assert "http2_protocol_options" in str(sds["typed_extension_protocol_options"])
    tls = clusters[XDS_CLUSTER]["transport_socket"]["typed_config"]
    assert tls["sni"] == "mizzen.mizzen-system.svc"
    common = tls["common_tls_context"]
    assert common["tls_certificate_sds_secret_configs"][0]["name"] == "default"
    validation = common["combined_validation_context"]
    assert validation["validation_context_sds_secret_config"]["name"] == "ROOTCA"
    assert validation["default_validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "mizzen.mizzen-system.svc"}}
    ]
    by_ip = render_bootstrap(_settings(MIZZEN_DISCOVERY_ADDRESS="10.0.0.1:15012"), "0.1.0")
    ip_tls = by_ip["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
    assert "sni" not in ip_tls
    assert (
        ip_tls["common_tls_context"]["combined_validation_context"]["default_validation_context"][
            "match_typed_subject_alt_names"
        ][0]["san_type"]
        == "IP_ADDRESS"
    )
    plain = render_bootstrap(_settings(IdentityOptions(xds_tls=False)), "0.1.0")
    assert "transport_socket" not in plain["static_resources"]["clusters"][0]
    assert SDS_CLUSTER in [c["name"] for c in plain["static_resources"]["clusters"]]


@pytest.mark.envoy
@pytest.mark.parametrize("variant", ["dns", "ip", "plaintext-xds"])
def test_envoy_accepts_the_identity_bootstrap(variant: str, tmp_path: Path) -> None:
    settings = {
        "dns": lambda: _settings(),
        "ip": lambda: _settings(MIZZEN_DISCOVERY_ADDRESS="10.0.0.1:15012"),
        "plaintext-xds": lambda: _settings(IdentityOptions(xds_tls=False)),
    }[variant]()
    path = tmp_path / "bootstrap.yaml"
    path.write_text(bootstrap_yaml(settings, "0.1.0"))
    result = subprocess.run(
        [str(find_envoy()), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
