"""The agent's side of the standard metrics (pure): Istio's labels from Envoy's raw series and
the agent's own identity, and one valid exposition from Envoy's and the app's."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from control.agent.telemetry.exposition import StandardSeries, merge, parse_labels, render_labels
from control.agent.telemetry.standard import HTTP_LABELS, TCP_LABELS, family_of, istio_labels
from control.telemetry.facts import FACTS_TAG, facts_format, split_facts
from control.telemetry.peer import UNKNOWN_PEER, Peer, ServiceRef, workload_peer

CLIENT = workload_peer("client", "demo", {"app": "client", "version": "v1"}, account="client")
ECHO = workload_peer("echo-v1", "demo", {"app": "echo", "version": "v2"}, account="echo")
SERVICE = ServiceRef("echo.demo.svc.cluster.local", "echo", "demo").encode()


def _raw(**labels: str) -> dict[str, str]:
    return {"peer": ECHO.encode(), "service": SERVICE, "response_code": "200",
            "response_flags": "-", "grpc_response_status": "", **labels}  # fmt: skip


def test_the_source_reporter_names_itself_and_the_endpoint_it_reached() -> None:
    labels = istio_labels(_raw(reporter="source"), CLIENT, tcp=False)
    assert tuple(labels) == tuple(n for n in HTTP_LABELS if n in labels)
    assert set(labels) == set(HTTP_LABELS)
    assert labels["source_workload"] == "client"
    assert labels["source_canonical_revision"] == "v1"
    assert labels["destination_workload"] == "echo-v1"
    assert labels["destination_version"] == "v2"
    assert labels["destination_service_name"] == "echo"
    assert labels["destination_cluster"] == labels["source_cluster"] == "Kubernetes"
    assert labels["connection_security_policy"] == "unknown"
    assert labels["source_principal"] == labels["destination_principal"] == "unknown"
    assert labels["request_protocol"] == "http"


def test_grpc_status_makes_the_protocol_grpc_and_tcp_drops_codes() -> None:
    grpc = istio_labels(_raw(reporter="source", grpc_response_status="14"), CLIENT, tcp=False)
    assert grpc["request_protocol"] == "grpc"
    tcp = istio_labels(_raw(reporter="source"), CLIENT, tcp=True)
    assert set(tcp) == set(TCP_LABELS)
    assert tcp["request_protocol"] == "tcp"


def test_the_destination_reporter_reads_the_source_from_the_peer_header() -> None:
    raw = _raw(reporter="destination", peer=CLIENT.encode(), connection_security_policy="none")
    labels = istio_labels(raw, ECHO, tcp=False)
    assert labels["source_workload"] == "client"
    assert labels["destination_workload"] == "echo-v1"
    assert labels["connection_security_policy"] == "none"


def _claimed(principal: str, peer: Peer = CLIENT) -> dict[str, str]:
    raw = _raw(reporter="destination", peer=peer.encode(), source_principal=principal,
               destination_principal="spiffe://cluster.local/ns/demo/sa/echo",
               connection_security_policy="mutual_tls")  # fmt: skip
    return istio_labels(raw, ECHO, tcp=False)


def test_the_principal_wins_over_a_claimed_peer_of_another_namespace() -> None:
    spiffe = "spiffe://cluster.local/ns/other/sa/attacker"
    labels = _claimed(spiffe)
    assert labels["source_workload"] == "unknown"  # the claim of namespace demo is dropped
    assert labels["source_app"] == labels["source_canonical_service"] == "unknown"
    assert labels["source_canonical_revision"] == "latest"  # Istio's value for an unknown peer
    assert labels["source_workload_namespace"] == "other"  # the certificate's
    assert labels["source_principal"] == spiffe
    assert _claimed("spiffe://cluster.local/ns/demo/sa/client")["source_workload"] == "client"


def test_a_claim_of_another_service_account_in_the_same_namespace_is_dropped() -> None:
    labels = _claimed("spiffe://cluster.local/ns/demo/sa/intruder")
    assert labels["source_workload"] == "unknown"
    assert labels["source_workload_namespace"] == "demo"
    # Another trust domain (an alias) names the same workload: the claim stands.
    assert _claimed("spiffe://old.example/ns/demo/sa/client")["source_workload"] == "client"


def test_a_certificate_naming_no_workload_leaves_the_source_unknown() -> None:
    labels = _claimed("spiffe://cluster.local/some/other/path")
    assert labels["source_workload"] == labels["source_workload_namespace"] == "unknown"
    assert labels["source_principal"] == "spiffe://cluster.local/some/other/path"


def test_mutual_tls_needs_both_certificates_as_in_istio() -> None:
    """A connection whose handshake failed on an mTLS chain is logged there without a peer
    certificate: `none`, not the chain's `mutual_tls`."""
    assert _claimed("spiffe://cluster.local/ns/demo/sa/client")["connection_security_policy"] == (
        "mutual_tls"
    )
    assert _claimed("-")["connection_security_policy"] == "none"
    raw = _raw(reporter="destination", peer=CLIENT.encode(), connection_security_policy="none",
               source_principal="spiffe://cluster.local/ns/demo/sa/client")  # fmt: skip
    assert istio_labels(raw, ECHO, tcp=False)["connection_security_policy"] == "none"


def test_without_a_certificate_the_chains_decision_stands() -> None:
    labels = _claimed("-")
    assert labels["source_workload"] == "client"
    assert labels["source_principal"] == "unknown"


def test_the_client_keeps_the_endpoint_its_certificate_confirms() -> None:
    def reached(principal: str) -> dict[str, str]:
        raw = _raw(reporter="source", destination_principal=principal,
                   source_principal="spiffe://cluster.local/ns/demo/sa/client")  # fmt: skip
        return istio_labels(raw, CLIENT, tcp=False)

    confirmed = reached("spiffe://cluster.local/ns/demo/sa/echo")
    assert confirmed["destination_workload"] == "echo-v1"
    assert confirmed["destination_principal"] == "spiffe://cluster.local/ns/demo/sa/echo"
    assert confirmed["connection_security_policy"] == "unknown"  # as Istio's client sidecar
    contradicted = reached("spiffe://cluster.local/ns/shop/sa/web")
    assert contradicted["destination_workload"] == "unknown"
    assert contradicted["destination_workload_namespace"] == "shop"
    # An upstream TLS certificate naming no workload (DestinationRule MUTUAL): EDS stands.
    assert reached("spiffe://example.org/app")["destination_workload"] == "echo-v1"


def test_malformed_peers_and_services_read_as_unknown() -> None:
    for text in ("", "a;b", "a;b;c;d;e;f;g", "a;b;c;d;e;f;g;h;i", "a b;c;d;e;f;g;h;i",
                 "x" * 3000):  # fmt: skip
        assert Peer.decode(text) == UNKNOWN_PEER
    labels = istio_labels({"reporter": "source", "service": "nope"}, CLIENT, tcp=False)
    assert labels["destination_service"] == "unknown"
    assert labels["destination_workload"] == "unknown"
    assert labels["response_code"] == "0"


def test_workload_labels_follow_istios_rules() -> None:
    peer = workload_peer("reviews-v2", "bookinfo", {"app.kubernetes.io/name": "reviews"})
    assert (peer.app, peer.version, peer.canonical_service, peer.canonical_revision) == (
        "reviews", "unknown", "reviews", "latest"
    )  # fmt: skip
    canonical = workload_peer("w", "ns", {"service.istio.io/canonical-name": "shop", "app": "a"})
    assert canonical.canonical_service == "shop"
    assert workload_peer("w", "ns", {}).canonical_service == "w"


def test_family_names() -> None:
    assert family_of("envoy_istio_requests_total") == ("istio_requests_total", "")
    assert family_of("envoy_istio_request_bytes_bucket") == ("istio_request_bytes", "_bucket")
    assert family_of("envoy_istio_requests_total_bucket") is None
    assert family_of("envoy_cluster_upstream_rq") is None


_TAGS = (
    f'reporter="source",peer="{ECHO.encode()}",service="{SERVICE}",response_code="200",'
    'response_flags="-",grpc_response_status=""'
)
_DURATION = "envoy_istio_request_duration_milliseconds"
ENVOY = "\n".join(
    [
        "# TYPE envoy_cluster_upstream_rq counter",
        'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="x"} 3',
        "# TYPE envoy_istio_requests_total counter",
        f"envoy_istio_requests_total{{{_TAGS}}} 5",
        f"# TYPE {_DURATION} histogram",
        f'{_DURATION}_bucket{{{_TAGS},le="0.5"}} 1',
        f'{_DURATION}_bucket{{{_TAGS},le="+Inf"}} 5',
        f"{_DURATION}_sum{{{_TAGS}}} 7.5",
        f"{_DURATION}_count{{{_TAGS}}} 5",
    ]
)
APP = """# HELP app_widgets_total Widgets.
# TYPE app_widgets_total counter
app_widgets_total 42
# TYPE istio_requests_total counter
istio_requests_total{source_workload="spoofed"} 1000
garbage line with spaces
# EOF
"""


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        found[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return found


def test_the_merged_exposition_is_valid_and_keeps_each_family_once() -> None:
    merged = merge(ENVOY, StandardSeries(CLIENT), APP)
    text = merged.text()
    families = _families(text)  # parses: valid text format
    requests = families["istio_requests"]
    assert [(n, v) for n, _, v in requests] == [("istio_requests_total", 5.0)]
    assert requests[0][1]["destination_workload"] == "echo-v1"
    assert requests[0][1]["source_workload"] == "client"
    buckets = [
        s for s in families["istio_request_duration_milliseconds"] if s[0].endswith("_bucket")
    ]
    assert [s[1]["le"] for s in buckets] == ["0.5", "+Inf"]
    assert "envoy_cluster_upstream_rq" in families
    assert families["app_widgets"][0][2] == 42
    assert "spoofed" not in text  # the app's istio_requests_total collided: dropped
    assert merged.app_families_dropped == 1
    assert "envoy_istio" not in text
    assert "# EOF" not in text
    assert "garbage" not in text


def test_without_an_identity_the_standard_series_are_left_out() -> None:
    text = merge(ENVOY, None).text()
    assert "istio_requests_total" not in text
    assert "envoy_cluster_upstream_rq" in text


def test_labels_round_trip_through_escaping() -> None:
    labels = {"a": 'quote " backslash \\ newline \n', "b": ""}
    assert parse_labels(render_labels(labels)) == labels


def test_raw_series_that_are_one_istio_series_are_added_up() -> None:
    """Two junk peer headers (a non-mesh client on a plaintext port) both read as the unknown
    source: one series, their sum, never a duplicate (Prometheus would refuse the scrape)."""
    tags = 'reporter="destination",peer="%s",service="x",response_code="200"'
    text = "\n".join([
        "# TYPE envoy_istio_requests_total counter",
        f"envoy_istio_requests_total{{{tags % 'junk-1'}}} 3",
        f"envoy_istio_requests_total{{{tags % 'junk-2'}}} 4",
    ])  # fmt: skip
    merged = merge(text, StandardSeries(ECHO))
    [requests] = list(text_string_to_metric_families(merged.text()))
    [sample] = requests.samples
    assert sample.value == 7
    assert sample.labels["source_workload"] == "unknown"
    assert merged.standard_series == 1


def test_the_facts_tag_renders_as_the_separate_tags_did() -> None:
    """Translation joins the facts into one tag (`control.telemetry.facts`): the agent's series
    are the same as from one tag per fact; a facts value that does not split is no shifted
    label."""
    separate = StandardSeries(CLIENT).head(f"envoy_istio_requests_total{{{_TAGS}}}")
    facts = facts_format(
        {
            "reporter": "source",
            "peer": ECHO.encode(),
            "service": SERVICE,
            "response_code": "200",
            "response_flags": "-",
        }
    )
    joined = StandardSeries(CLIENT).head(f'envoy_istio_requests_total{{{FACTS_TAG}="{facts}"}}')
    assert joined == separate is not None
    assert split_facts({FACTS_TAG: "source|x", "source_principal": "p"}) == {
        "source_principal": "p"
    }
    with pytest.raises(ValueError, match="not a facts field"):
        facts_format({"source_principal": "%UPSTREAM_LOCAL_URI_SAN%"})
