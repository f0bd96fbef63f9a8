"""Istio's standard metrics from real sidecars: requests counted exactly, by code, with the
right labels on both reporters; TCP; the merged exposition; spoofing; access logs; tracing."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from control.cli.demo.mesh import send_requests
from tests.e2e.telemetry_mesh import (
    APP_ERROR,
    DEAD,
    DEAD_HOST,
    ECHO_HOST,
    ECHO_IP,
    ERRORS,
    FAULT_STATUS,
    FAULTS,
    NAMESPACE,
    OK,
    SPOOF,
    SPOOFED,
    TCP_BYTES,
    TCP_CONNECTIONS,
    TCP_HOST,
    TelemetryMesh,
    send_traffic,
)
from tests.harness.netns import Pod

pytestmark = [pytest.mark.netns, pytest.mark.envoy, pytest.mark.slow]


Series = dict[str, Any]


def scrape(pod: Pod) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """The agent's merged exposition, parsed (a parse error fails the test: it must be valid)."""
    text = httpx.get(f"http://{pod.ip}:15020/stats/prometheus", timeout=10).text
    families: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            families.setdefault(family.name, []).append((sample.name, sample.labels, sample.value))
    return families


def samples(families: Mapping[str, list[Any]], sample: str) -> list[Any]:
    return [s for found in families.values() for s in found if s[0] == sample]


def total(families: Mapping[str, list[Any]], sample: str, **labels: str) -> float:
    return sum(
        value
        for samples in families.values()
        for name, found, value in samples
        if name == sample and all(found.get(k) == v for k, v in labels.items())
    )


def eventually(check: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout}s: {what} (last: {last})")


Families = dict[str, list[tuple[str, dict[str, str], float]]]


def flushed(pod: Pod) -> bool:
    """Envoy flushes histograms every 5 s: their counts caught up with the counters."""
    families = scrape(pod)
    return total(families, "istio_requests_total") == total(
        families, "istio_request_duration_milliseconds_count"
    )


def delta(after: Families, before: Families) -> Families:
    """`after` with each sample less its value in `before` (counters only grow)."""
    old = {(n, tuple(sorted(labels.items()))): v for f in before.values() for n, labels, v in f}
    return {
        family: [(n, labels, v - old.get((n, tuple(sorted(labels.items()))), 0.0))
                 for n, labels, v in found]
        for family, found in after.items()
    }  # fmt: skip


@dataclass
class Traffic:
    """The mesh, and what its sidecars had counted before this module's traffic (other
    modules send traffic through the same mesh)."""

    mesh: TelemetryMesh
    before: dict[str, Families]

    @property
    def client(self) -> Pod:
        return self.mesh.client

    @property
    def echo(self) -> Pod:
        return self.mesh.echo

    def counted(self, pod: Pod) -> Families:
        return delta(scrape(pod), self.before[pod.name])


@pytest.fixture(scope="module")
def traffic(telemetry_mesh: TelemetryMesh) -> Traffic:
    """The traffic every test of this module reads (sent once)."""
    pods = (telemetry_mesh.client, telemetry_mesh.echo)
    for pod in pods:
        eventually(lambda pod=pod: flushed(pod), what=f"{pod.name}'s histograms flushed")
    before = {pod.name: scrape(pod) for pod in pods}
    send_traffic(telemetry_mesh, "metrics")
    return Traffic(telemetry_mesh, before)


def _client_labels() -> dict[str, str]:
    return {
        "source_workload": "client", "source_workload_namespace": NAMESPACE,
        "source_app": "client", "source_version": "v1", "source_canonical_service": "client",
        "source_canonical_revision": "v1", "source_cluster": "Kubernetes",
        "source_principal": "unknown",
    }  # fmt: skip


def _echo_labels() -> dict[str, str]:
    return {
        "destination_workload": "echo-v1", "destination_workload_namespace": NAMESPACE,
        "destination_app": "echo", "destination_version": "v1",
        "destination_canonical_service": "echo", "destination_canonical_revision": "v1",
        "destination_cluster": "Kubernetes", "destination_principal": "unknown",
    }  # fmt: skip


def test_the_client_counts_every_request_by_code_with_both_workloads(
    traffic: Traffic,
) -> None:
    families = traffic.counted(traffic.client)
    src = {"reporter": "source", **_client_labels()}
    echo = {**src, "destination_service": ECHO_HOST, "destination_service_name": "echo",
            "destination_service_namespace": NAMESPACE, "request_protocol": "http",
            "connection_security_policy": "unknown"}  # fmt: skip
    name = "istio_requests_total"
    assert total(families, name, **echo, **_echo_labels(), response_code="200") == OK + SPOOFED
    assert total(families, name, **echo, response_code=str(FAULT_STATUS),
                 response_flags="FI", destination_workload="unknown") == FAULTS  # fmt: skip
    dead = [s for s in samples(families, name) if s[1].get("destination_service") == DEAD_HOST]
    assert sum(v for _, _, v in dead) == DEAD, dead
    assert {s[1]["response_code"] for s in dead} == {"503"}
    assert all("UF" in s[1]["response_flags"] for s in dead), dead
    assert {s[1]["destination_workload"] for s in dead} == {"dead-v1"}
    assert total(families, name, **echo, **_echo_labels(), response_code=str(APP_ERROR)) == ERRORS
    assert total(families, name, reporter="source") == OK + SPOOFED + FAULTS + DEAD + ERRORS


def test_the_server_counts_the_requests_it_got_with_the_source_workload(
    traffic: Traffic,
) -> None:
    families = traffic.counted(traffic.echo)
    labels = {"reporter": "destination", **_client_labels(), **_echo_labels(),
              "destination_service": ECHO_HOST, "destination_service_name": "echo",
              "destination_service_namespace": NAMESPACE, "request_protocol": "http",
              "connection_security_policy": "none", "response_code": "200",
              "response_flags": "-", "grpc_response_status": ""}  # fmt: skip
    assert total(families, "istio_requests_total", **labels) == OK + SPOOFED
    labels["response_code"] = str(APP_ERROR)
    assert total(families, "istio_requests_total", **labels) == ERRORS
    everything = total(families, "istio_requests_total", reporter="destination")
    assert everything == OK + SPOOFED + ERRORS


def test_a_client_app_cannot_spoof_its_identity_into_the_server_metrics(
    traffic: Traffic,
) -> None:
    """The app sent `x-mizzen-peer` naming workload `evil`; its sidecar overwrote it, so the
    server saw the client's own identity, and the header never reached the server's app."""
    families = traffic.counted(traffic.echo)
    workloads = {s[1]["source_workload"] for s in samples(families, "istio_requests_total")}
    assert workloads == {"client"}
    reached = send_requests(traffic.client, f"http://{ECHO_IP}/", 1, {"x-mizzen-peer": SPOOF})
    assert reached.statuses == {"200": 1}
    got = httpx.get(f"http://{traffic.echo.ip}:8080/", timeout=5)  # directly: the app itself
    assert got.headers["x-saw-peer-header"] == "no"


def test_duration_histograms_count_every_request(traffic: Traffic) -> None:
    """Envoy flushes histograms every 5 s: wait for the counts to match the counters."""

    def matched() -> bool:  # each Envoy flushes on its own timer: wait for both
        for pod, reporter in ((traffic.client, "source"), (traffic.echo, "destination")):
            families = traffic.counted(pod)
            name = "istio_request_duration_milliseconds_count"
            if total(families, name, reporter=reporter) != total(
                families, "istio_requests_total", reporter=reporter
            ):
                return False
        return True

    eventually(matched, what="duration histogram count == request count")
    for pod, reporter in ((traffic.client, "source"), (traffic.echo, "destination")):
        families = traffic.counted(pod)
        requests = total(families, "istio_requests_total", reporter=reporter)
        for histogram in ("istio_request_duration_milliseconds", "istio_request_bytes",
                          "istio_response_bytes"):  # fmt: skip
            assert total(families, f"{histogram}_count", reporter=reporter) == requests
            le = total(families, f"{histogram}_bucket", reporter=reporter, le="+Inf")
            assert le == requests
        buckets = {
            s[1]["le"] for s in samples(families, "istio_request_duration_milliseconds_bucket")
        }
        assert {"0.5", "1", "5", "3600000", "+Inf"} <= buckets  # Envoy's default buckets


def test_tcp_connections_and_bytes_on_both_sides(traffic: Traffic) -> None:
    client = traffic.counted(traffic.client)
    src = {"reporter": "source", "destination_service": TCP_HOST, "request_protocol": "tcp",
           **_client_labels(), **_echo_labels()}  # fmt: skip
    assert total(client, "istio_tcp_connections_opened_total", **src) == TCP_CONNECTIONS
    assert total(client, "istio_tcp_connections_closed_total", **src) == TCP_CONNECTIONS
    sent = TCP_CONNECTIONS * TCP_BYTES
    assert total(client, "istio_tcp_received_bytes_total", **src) == sent
    assert total(client, "istio_tcp_sent_bytes_total", **src) == sent
    server = traffic.counted(traffic.echo)
    dst = {"reporter": "destination", "destination_service": TCP_HOST, **_echo_labels(),
           "source_workload": "unknown", "source_principal": "unknown",
           "connection_security_policy": "none"}  # fmt: skip
    assert total(server, "istio_tcp_connections_opened_total", **dst) == TCP_CONNECTIONS
    assert total(server, "istio_tcp_received_bytes_total", **dst) == sent


def test_the_merged_exposition_holds_envoys_and_the_apps_metrics(traffic: Traffic) -> None:
    families = traffic.counted(traffic.echo)
    assert "app_widgets" in families  # the app's own, from its annotated port and path
    assert total(scrape(traffic.echo), "mizzen_agent_app_metrics_up") == 1
    assert "envoy_cluster_upstream_rq" in families  # Envoy's own
    assert not any(name.startswith("envoy_istio") for name in families)  # renamed, not doubled


def test_access_logs_use_istios_text_format(traffic: Traffic) -> None:
    """Envoy writes its access log about once a second."""

    def fault_lines() -> list[str]:
        log = traffic.mesh.log_text("client.log").splitlines()
        return [line for line in log if '"GET /fault/metrics HTTP/1.1" 418 FI ' in line]

    lines = eventually(lambda: len(fault_lines()) == FAULTS and fault_lines(), what="7 lines")
    assert f"outbound|80||{ECHO_HOST}" in lines[0]
    assert lines[0].startswith("[20")  # Istio's TEXT format: [START_TIME] "METHOD PATH PROTO"


def test_spans_of_both_sidecars_share_a_trace(traffic: Traffic) -> None:
    def joined() -> set[str]:
        spans = traffic.mesh.traces.snapshot()
        by_trace: dict[str, set[str]] = {}
        for span in spans:
            by_trace.setdefault(span.trace_id, set()).add(span.service)
        return {t for t, services in by_trace.items()
                if {f"client.{NAMESPACE}", f"echo.{NAMESPACE}"} <= services}  # fmt: skip

    what = "a trace with spans of both sidecars"
    try:
        eventually(joined, timeout=30, what=what)
    except AssertionError:
        seen = {
            (span.service, span.name, span.trace_id[:8]) for span in traffic.mesh.traces.snapshot()
        }
        raise AssertionError(f"{what}; spans seen: {sorted(seen)[:20]}") from None
