"""Telemetry in translation (pure): what each inbound chain trusts, the peer header on routes to
mesh services only, metrics and access logs switched by MeshConfig, its errors named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from control.config.mesh_config import MeshConfig
from control.plane.xds.translate.telemetry import (
    ChainSecurity,
    Direction,
    Telemetry,
    http_telemetry,
    outbound_virtual_host,
    tcp_telemetry,
)
from control.telemetry.facts import FACTS_TAG, facts_format, split_facts
from control.telemetry.peer import (
    MAX_PEER_LENGTH,
    PEER_FIELDS,
    PEER_HEADER,
    UNKNOWN_PEER,
    Peer,
)


def _tags(telemetry_config: dict[str, Any]) -> dict[str, str]:
    """Each fact's format string (the `facts` tag split into its fields) and the principals'."""
    counter = telemetry_config["typed_config"]["value"]["counters"][0]
    tags = {t["name"]: t["value_format"] for t in counter["stat"]["tags"]}
    assert list(tags) == [FACTS_TAG, "source_principal", "destination_principal"]
    return split_facts(tags)


def test_a_plaintext_chain_reads_the_peer_header_and_reports_policy_none() -> None:
    http = http_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.PLAINTEXT)
    assert [f["name"] for f in http.filters] == ["envoy.filters.http.header_to_metadata"]
    rule = http.filters[0]["typed_config"]["request_rules"][0]
    assert rule["header"] == PEER_HEADER
    assert rule["remove"] is True
    tags = _tags(http.access_log[0])
    assert tags["peer"] == f"%DYNAMIC_METADATA(mizzen:peer):{MAX_PEER_LENGTH}%"
    assert tags["connection_security_policy"] == "none"
    assert tags["source_principal"] == "%DOWNSTREAM_PEER_URI_SAN%"


def test_an_mtls_chain_reports_mutual_tls_and_takes_the_principal_from_the_certificate() -> None:
    http = http_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.MUTUAL_TLS)
    tags = _tags(http.access_log[0])
    assert tags["connection_security_policy"] == "mutual_tls"
    assert tags["source_principal"] == "%DOWNSTREAM_PEER_URI_SAN%"
    assert tags["peer"] == f"%DYNAMIC_METADATA(mizzen:peer):{MAX_PEER_LENGTH}%"


def test_the_plaintext_chain_beside_mtls_ignores_the_header() -> None:
    """PERMISSIVE's plaintext chain: meshed clients come over mTLS, so a peer header arriving
    here is not believed (no filter reads it, no tag carries it); the route still strips it."""
    http = http_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.PLAINTEXT_BESIDE_MTLS)
    assert http.filters == []
    tags = _tags(http.access_log[0])
    assert tags["peer"] == ""
    assert tags["connection_security_policy"] == "none"
    tcp = tcp_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.PLAINTEXT_BESIDE_MTLS)
    assert all(_tags(log)["peer"] == "" for log in tcp["access_log"])


def test_the_client_tags_name_the_endpoint_and_the_cluster() -> None:
    tags = _tags(http_telemetry(Telemetry(), Direction.OUTBOUND).access_log[0])
    assert tags["reporter"] == "source"
    assert tags["peer"] == "%UPSTREAM_METADATA(mizzen:peer)%"
    assert tags["service"] == "%CLUSTER_METADATA(mizzen:service)%"
    assert tags["destination_principal"] == "%UPSTREAM_PEER_URI_SAN%"
    assert tags["connection_security_policy"] == ""  # the agent writes unknown, as Istio


def test_tcp_counts_open_at_connect_and_bytes_at_close() -> None:
    fields = tcp_telemetry(Telemetry(), Direction.OUTBOUND)
    assert fields["access_log_options"] == {"flush_access_log_on_connected": True}
    opened, closed = fields["access_log"]
    assert opened["filter"]["log_type_filter"]["types"] == ["TcpUpstreamConnected"]
    assert closed["filter"]["log_type_filter"]["types"] == ["TcpConnectionEnd"]
    names = [c["stat"]["name"] for c in closed["typed_config"]["value"]["counters"]]
    assert names == ["tcp_connections_closed_total", "tcp_sent_bytes_total",
                     "tcp_received_bytes_total"]  # fmt: skip


def test_an_mtls_tcp_chain_connects_upstream_after_the_handshake() -> None:
    """The `opened` entry is written at upstream connect: under mTLS that must come after the
    client's certificate, or the entry misses the principal (seen on the wire)."""
    mtls = tcp_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.MUTUAL_TLS)
    assert mtls["upstream_connect_mode"] == "ON_DOWNSTREAM_TLS_HANDSHAKE"
    assert mtls["max_early_data_bytes"] == 0
    for security in (ChainSecurity.PLAINTEXT, ChainSecurity.PLAINTEXT_BESIDE_MTLS):
        assert "upstream_connect_mode" not in tcp_telemetry(
            Telemetry(), Direction.INBOUND, security
        )


def test_the_stats_scope_bounds_the_series() -> None:
    logger = http_telemetry(Telemetry(), Direction.OUTBOUND).access_log[0]["typed_config"]
    scope = logger["value"]["stats_scope"]
    assert scope["prefix"] == "istio"
    assert scope["max_counters"] > 0
    assert scope["max_histograms"] > 0
    # one scope for every logger, so that a replaced chain's drain takes no series with it
    # (tests/control/test_stats_scope_envoy.py) and the limits are the proxy's
    tcp = tcp_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.MUTUAL_TLS)["access_log"]
    shared = [log["typed_config"]["value"]["stats_scope"]["sharing_name"] for log in tcp]
    assert shared == [scope["sharing_name"]] * 2


def test_only_routes_to_mesh_services_carry_the_peer_header() -> None:
    mesh = outbound_virtual_host({"name": "echo", "routes": []}, mesh_service=True)
    [added] = mesh["request_headers_to_add"]
    assert added["header"] == {"key": PEER_HEADER, "value": "%ENVIRONMENT(MIZZEN_PEER)%"}
    assert added["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD"  # the app's value is replaced
    external = outbound_virtual_host({"name": "allow_any", "routes": []}, mesh_service=False)
    assert external["request_headers_to_remove"] == [PEER_HEADER]
    assert "request_headers_to_add" not in external


def test_metrics_and_access_logs_follow_mesh_config() -> None:
    off = Telemetry.of(MeshConfig.from_mapping({"defaultProviders": {"metrics": []}}))
    assert http_telemetry(off, Direction.OUTBOUND).access_log == []
    assert tcp_telemetry(off, Direction.OUTBOUND) == {}
    logs = Telemetry.of(MeshConfig.from_mapping({"accessLogFile": "/dev/stdout"}))
    names = [log["name"] for log in http_telemetry(logs, Direction.OUTBOUND).access_log]
    assert names == ["envoy.access_loggers.stats", "envoy.access_loggers.stdout"]


def test_tracing_needs_an_opentelemetry_provider() -> None:
    provider = {"name": "otel", "opentelemetry": {"service": "otel.obs", "port": 4317}}
    by_default = MeshConfig.from_mapping(
        {"extensionProviders": [provider], "defaultProviders": {"tracing": ["otel"]}}
    )
    tracer = Telemetry.of(by_default).tracer
    assert tracer is not None
    assert tracer.cluster == "opentelemetry|4317|otel.obs"
    assert tracer.sampling == 1.0  # Istio's default
    enabled = MeshConfig.from_mapping({"extensionProviders": [provider], "enableTracing": True})
    assert Telemetry.of(enabled).tracer is not None
    assert Telemetry.of(MeshConfig.from_mapping({"enableTracing": True})).tracer is None


@pytest.mark.parametrize(
    ("mesh", "message"),
    [
        ({"defaultProviders": {"tracing": ["nope"]}}, "no extensionProvider 'nope'"),
        ({"accessLogEncoding": "JSON", "accessLogFormat": "[1]"}, "JSON object of strings"),
        ({"accessLogEncoding": "XML"}, "accessLogEncoding"),
        ({"defaultConfig": {"tracing": {"sampling": 150}}}, "sampling"),
        ({"extensionProviders": [{"name": "a", "prometheus": {}}] * 2}, "names must be unique"),
        ({"extensionProviders": [{"name": "a"}]}, "set exactly one kind"),
    ],
)
def test_bad_telemetry_settings_are_refused_by_name(mesh: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MeshConfig.from_mapping(mesh)


def test_telemetry_metadata_joins_what_is_there() -> None:
    from control.plane.xds.translate.telemetry import add_metadata, endpoint_metadata

    entry = {
        "metadata": {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}}
    }
    add_metadata(entry, endpoint_metadata("echo-v1", "demo", {"app": "echo"}, "echo-sa"))
    found = entry["metadata"]["filter_metadata"]
    assert found["envoy.transport_socket_match"] == {"tlsMode": "istio"}
    assert found["mizzen"]["peer"].startswith("echo-v1;demo;echo;")
    assert found["mizzen"]["peer"].endswith(";echo-sa")  # checked against the server's SAN
    plain: dict[str, Any] = {}
    add_metadata(plain, endpoint_metadata("", "demo", {}))  # not a pod: nothing added
    assert plain == {}


WELL_FORMED = "client;demo;client;v1;client;v1;Kubernetes;client"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (WELL_FORMED, WELL_FORMED),
        ("junk", "junk"),  # in the alphabet: kept, and the agent reads it as unknown
        ("a b;c;d;e;f;g;h", "ab;c;d;e;f;g;h"),
        (f"{WELL_FORMED}|x|y", f"{WELL_FORMED}xy"),  # never a field separator of the facts
        ('x"\\{}=,\t\u00e9/:@%|', "x"),
        ("|||", ""),
    ],
)
def test_the_server_strips_a_claimed_peer_to_the_identity_alphabet(value: str, kept: str) -> None:
    """header_to_metadata's rewrite (RE2, as in Envoy: every match replaced): what is left can
    neither shift the facts' fields nor carry text the series or the agent would misread."""
    import re2

    from control.plane.xds.translate.telemetry import PEER_GUARD

    assert re2.sub(PEER_GUARD, "", value) == kept
    recorded = facts_format({"reporter": "destination", "peer": kept, "response_code": "200"})
    assert split_facts({FACTS_TAG: recorded})["peer"] == kept  # the fields never shift


def test_the_claimed_peer_is_recorded_at_most_one_identity_long() -> None:
    """The header may be ~60 KiB; each series' name holds the tag, so the format bounds it."""
    tags = _tags(
        http_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.PLAINTEXT).access_log[0]
    )
    assert tags["peer"] == f"%DYNAMIC_METADATA(mizzen:peer):{MAX_PEER_LENGTH}%"
    longest = ";".join(["x" * 253] * PEER_FIELDS)
    assert len(longest) == MAX_PEER_LENGTH
    assert Peer.decode(longest).workload == "x" * 253
    assert Peer.decode(longest + "x") == UNKNOWN_PEER
