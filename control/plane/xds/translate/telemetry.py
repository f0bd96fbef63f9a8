"""Telemetry in a sidecar's resources, with upstream Envoy only (no Istio contrib filters).

Istio's standard metrics come from Envoy's stats access logger (`envoy.access_loggers.stats`):
after each request (HTTP) or at connection open and close (TCP) it adds to counters and
histograms named `istio.<metric>` whose tags are formatter strings. Envoy exports them as
`envoy_istio_*`; the agent turns them into Istio's series (`control.agent.telemetry`). Only the
per-request facts are tagged, and in three tags per stat (`control.telemetry.facts`: each tag
costs Envoy ~2,000 instructions per stat per request); the reporting proxy's own identity is
added by its agent at scrape time.

Who the peer is (`control.telemetry.peer`, one compact string):
- the client learns its destination from the EDS endpoint metadata `mizzen.peer` and the
  cluster metadata `mizzen.service` (`endpoint_metadata`, `cluster_metadata`);
- the server learns its source from the `x-mizzen-peer` header that the client sidecar sets
  (overwriting whatever the app sent) on routes to mesh services (`outbound_virtual_host`); the
  server moves it into dynamic metadata and the inbound route removes it before the app.
  Whether the server trusts that header depends on the chain (`ChainSecurity`): the principal
  of an mTLS peer certificate always wins over what a header claims.

Hook points (the lead carries them through re-arrangements; each is one call):
- `filters.http_connection_manager(..., telemetry=...)`: access loggers, the header-to-metadata
  filter (inbound), the tracer (`http_telemetry`);
- `filters.tcp_proxy(..., telemetry=...)`: TCP access loggers (`tcp_telemetry`);
- `routes.route_configuration`: `outbound_virtual_host` on each virtual host;
- `listeners._inbound_filters`: `inbound_route_headers` on the inline route, `ChainSecurity`
  per chain (set by the port's PeerAuthentication mode, `listeners._inbound_chains`);
- `clusters.load_assignment` / `outbound_clusters` / `inbound_clusters`: `endpoint_metadata`,
  `cluster_metadata`;
- `sidecar.inbound_resources`: `tracing.extra_clusters` (the tracing collector).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from control.config.mesh_config import MeshConfig
from control.config.mesh_telemetry import AccessLogEncoding
from control.plane.xds.translate.access_log import file_access_log
from control.plane.xds.translate.tracing import Tracer, tracer_of, tracing
from control.telemetry.facts import FACTS_TAG, facts_format
from control.telemetry.peer import (
    CLUSTER_ID,
    MAX_PEER_LENGTH,
    METADATA_NAMESPACE,
    PEER_ALPHABET,
    PEER_ENV,
    PEER_HEADER,
    PEER_KEY,
    SERVICE_KEY,
    STAT_PREFIX,
    ServiceRef,
    workload_peer,
)

_T: Final = "type.googleapis.com/"
STATS_LOGGER: Final = "envoy.access_loggers.stats"
_STATS_TYPE: Final = _T + "envoy.extensions.access_loggers.stats.v3.Config"
_TYPED_STRUCT: Final = _T + "xds.type.v3.TypedStruct"
# The cardinality cap: series the proxy's one stats scope, shared by all its loggers, may
# hold. An HTTP label set costs one counter and three histograms, a TCP one four counters:
# 5,000 HTTP label sets, or 2,500 TCP ones.
STATS_SCOPE_NAME: Final = "mizzen.istio"
MAX_COUNTERS: Final = 10_000
MAX_HISTOGRAMS: Final = 15_000
_H2M_TYPE: Final = _T + "envoy.extensions.filters.http.header_to_metadata.v3.Config"


class Direction(StrEnum):
    OUTBOUND = "outbound"  # reporter=source
    INBOUND = "inbound"  # reporter=destination


class ChainSecurity(StrEnum):
    """What an inbound filter chain knows about its peer (`listeners._inbound_chains`).

    - PLAINTEXT: a port served without mTLS (DISABLE, or a proxy without a certificate). Policy
      `none`; the peer header is believed: without certificates nothing better exists, and a
      meshed client's sidecar always overwrites it (a non-mesh client can still claim
      anything: documented).
    - MUTUAL_TLS: the chain that requires a client certificate. Policy `mutual_tls`; the
      principal is the certificate's URI SAN; the header is read, since only a holder of a
      mesh certificate gets here, and the agent drops a claimed peer whose namespace or
      service account is not the certificate's (the principal wins).
    - PLAINTEXT_BESIDE_MTLS: the plaintext chain of a PERMISSIVE port. Meshed clients arrive
      over mTLS, so whoever arrives here in plaintext is not one: the header is removed
      unread and the source is `unknown`.
    """

    PLAINTEXT = "plaintext"
    MUTUAL_TLS = "mutual_tls"
    PLAINTEXT_BESIDE_MTLS = "plaintext_beside_mtls"

    @property
    def policy(self) -> str:
        return "mutual_tls" if self is ChainSecurity.MUTUAL_TLS else "none"

    @property
    def trusts_peer_header(self) -> bool:
        return self is not ChainSecurity.PLAINTEXT_BESIDE_MTLS


@dataclass(frozen=True, slots=True)
class Telemetry:
    """The mesh's telemetry settings, as translation uses them (from MeshConfig)."""

    metrics: bool = True
    access_log_path: str = ""
    access_log_encoding: AccessLogEncoding = AccessLogEncoding.TEXT
    access_log_format: str = ""
    tracer: Tracer | None = None

    @classmethod
    def of(cls, mesh: MeshConfig) -> Telemetry:
        return cls(
            metrics=mesh.metrics_enabled,
            access_log_path=mesh.access_log_file,
            access_log_encoding=mesh.access_log_encoding,
            access_log_format=mesh.access_log_format,
            tracer=tracer_of(mesh),
        )


OFF: Final = Telemetry(metrics=False)


@dataclass(frozen=True, slots=True)
class HttpTelemetry:
    """What an HTTP connection manager gets: access loggers, filters before the router, a
    tracing block (or None)."""

    access_log: list[dict[str, Any]] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    tracing: dict[str, Any] | None = None


# --- the standard metrics ---------------------------------------------------------------------


def _tag(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value_format": value}


def _tags(
    direction: Direction, security: ChainSecurity, response: Mapping[str, str]
) -> list[dict[str, str]]:
    """The per-request facts (`control.telemetry.facts`: one tag, `response` the response's
    fields) and the two principals; the agent derives the other labels from these and its own
    pod."""
    meta = f"{METADATA_NAMESPACE}:{PEER_KEY}"
    facts = {"service": f"%CLUSTER_METADATA({METADATA_NAMESPACE}:{SERVICE_KEY})%", **response}
    if direction is Direction.OUTBOUND:
        facts |= {"reporter": "source", "peer": f"%UPSTREAM_METADATA({meta})%"}
        principals = ("%UPSTREAM_LOCAL_URI_SAN%", "%UPSTREAM_PEER_URI_SAN%")
    else:
        facts |= {"reporter": "destination", "connection_security_policy": security.policy}
        if security.trusts_peer_header:  # else no peer: the agent reads the source as unknown
            # At most a compact identity's length: a longer claim is not a peer anyway, and
            # each series' name holds it (the header itself may be ~60 KiB).
            facts["peer"] = f"%DYNAMIC_METADATA({meta}):{MAX_PEER_LENGTH}%"
        principals = ("%DOWNSTREAM_PEER_URI_SAN%", "%DOWNSTREAM_LOCAL_URI_SAN%")
    return [
        _tag(FACTS_TAG, facts_format(facts)),
        _tag("source_principal", principals[0]),
        _tag("destination_principal", principals[1]),
    ]


def _stats_logger(
    counters: list[dict[str, Any]],
    histograms: list[dict[str, Any]],
    log_types: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A stats logger in the proxy's one shared stats scope (`sharing_name`), whose limits
    bound the series Envoy keeps: past them, new series are refused and counted by Envoy's
    `server.stats_overflow_counter`/`_histogram`.

    Shared, because a scope of its own belongs to the logger's filter chain: when a config
    change replaces the chain and its drain ends, every series that only it had recorded is
    freed, and an idle series' counters start again from zero at its next request (a counter
    reset, and lost counts, on every policy change). The shared scope lives as long as any
    logger uses it, so the series do too (`tests/control/test_stats_scope_envoy.py`). A
    TypedStruct because the Python protos predate `stats_scope`."""
    config = {
        "stats_scope": {
            "prefix": STAT_PREFIX,
            "max_counters": MAX_COUNTERS,
            "max_histograms": MAX_HISTOGRAMS,
            "sharing_name": STATS_SCOPE_NAME,
        },
        "counters": counters,
        "histograms": histograms,
    }
    logger: dict[str, Any] = {
        "name": STATS_LOGGER,
        "typed_config": {"@type": _TYPED_STRUCT, "type_url": _STATS_TYPE, "value": config},
    }
    if log_types:
        logger["filter"] = {"log_type_filter": {"types": list(log_types)}}
    return logger


def http_metrics(direction: Direction, security: ChainSecurity) -> dict[str, Any]:
    """istio_requests_total and the three histograms (Envoy's default buckets, as Istio)."""
    response = {
        "response_code": "%RESPONSE_CODE%",
        "response_flags": "%RESPONSE_FLAGS%",
        "grpc_response_status": "%GRPC_STATUS_NUMBER%",
    }
    tags = _tags(direction, security, response)
    histograms = [
        ("request_duration_milliseconds", "Milliseconds", "%DURATION%"),
        ("request_bytes", "Bytes", "%BYTES_RECEIVED%"),
        ("response_bytes", "Bytes", "%BYTES_SENT%"),
    ]
    return _stats_logger(
        [{"stat": {"name": "requests_total", "tags": tags}, "value_fixed": 1}],
        [
            {"stat": {"name": name, "tags": tags}, "unit": unit, "value_format": value}
            for name, unit, value in histograms
        ],
    )


def tcp_metrics(direction: Direction, security: ChainSecurity) -> list[dict[str, Any]]:
    """Opened when the upstream connects, closed and bytes when the connection ends: Envoy's
    periodic TCP log entries carry each connection's running totals, which a counter cannot
    add up, so the byte counters move at close (documented)."""
    tags = _tags(direction, security, {})
    closing = _tags(direction, security, {"response_flags": "%RESPONSE_FLAGS%"})

    def counter(name: str, with_tags: list[dict[str, str]], value: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"stat": {"name": name, "tags": with_tags}}
        if value is None:
            entry["value_fixed"] = 1
        else:
            entry["value_format"] = value
        return entry

    opened = counter("tcp_connections_opened_total", tags, None)
    closed = [
        counter("tcp_connections_closed_total", closing, None),
        counter("tcp_sent_bytes_total", closing, "%BYTES_SENT%"),
        counter("tcp_received_bytes_total", closing, "%BYTES_RECEIVED%"),
    ]
    return [
        _stats_logger([opened], [], ("TcpUpstreamConnected",)),
        _stats_logger(closed, [], ("TcpConnectionEnd",)),
    ]


# --- peer identity ----------------------------------------------------------------------------


# The server's guard on a claimed peer: every character outside the compact identity's alphabet
# is dropped, so the value can never hold the facts' `|` (nor anything else Envoy's series or
# the agent's parser could trip on); whether what is left is a peer (eight label-like fields)
# the agent decides (`Peer.decode`: anything else reads as unknown). A structural pattern
# (eight fields, else empty) cost Envoy ~14,000 instructions per request (RE2 must extract a
# submatch over an ambiguous alternation); this class is found or not by RE2's DFA (~2,000).
# The series it makes are no more than those of well-formed junk, which no pattern can refuse:
# the stats scope's caps bound them, and the tag's length bound (`_tags`) their size.
PEER_GUARD: Final = f"[^{PEER_ALPHABET}]"


def _peer_rule() -> dict[str, Any]:
    return {
        "header": PEER_HEADER,
        "on_header_present": {
            "metadata_namespace": METADATA_NAMESPACE,
            "key": PEER_KEY,
            "type": "STRING",
            "regex_value_rewrite": {"pattern": {"regex": PEER_GUARD}, "substitution": ""},
        },
        "remove": True,
    }


def header_to_metadata() -> dict[str, Any]:
    """Moves the client sidecar's `x-mizzen-peer` into dynamic metadata (and off the request)."""
    return {
        "name": "envoy.filters.http.header_to_metadata",
        "typed_config": {"@type": _H2M_TYPE, "request_rules": [_peer_rule()]},
    }


def outbound_virtual_host(virtual_host: dict[str, Any], mesh_service: bool) -> dict[str, Any]:
    """A route to a mesh service carries this sidecar's identity (overwriting what the app
    sent); any other destination gets no peer header at all."""
    if mesh_service:
        virtual_host["request_headers_to_add"] = [
            *virtual_host.get("request_headers_to_add", []),
            {
                "header": {"key": PEER_HEADER, "value": f"%ENVIRONMENT({PEER_ENV})%"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            },
        ]
    else:
        virtual_host["request_headers_to_remove"] = [
            *virtual_host.get("request_headers_to_remove", []),
            PEER_HEADER,
        ]
    return virtual_host


def inbound_route_headers() -> list[str]:
    """Headers the inbound route removes before the app, whatever the chain trusts."""
    return [PEER_HEADER]


def endpoint_metadata(
    workload: str, namespace: str, labels: Mapping[str, str], account: str = "default"
) -> dict[str, Any] | None:
    """EDS metadata naming a mesh pod, or None for endpoints that are not pods."""
    if not workload:
        return None
    peer = workload_peer(workload, namespace, labels, CLUSTER_ID, account or "default")
    return {"filter_metadata": {METADATA_NAMESPACE: {PEER_KEY: peer.encode()}}}


def add_metadata(resource: dict[str, Any], metadata: dict[str, Any] | None) -> None:
    """Merges `filter_metadata` into a cluster's or an endpoint's metadata, keeping what other
    parts put there (the mTLS work's `envoy.transport_socket_match`, say)."""
    if not metadata:
        return
    existing = resource.setdefault("metadata", {}).setdefault("filter_metadata", {})
    for namespace, values in metadata["filter_metadata"].items():
        existing.setdefault(namespace, {}).update(values)


def cluster_metadata(host: str, name: str, namespace: str) -> dict[str, Any]:
    """The destination service of a cluster."""
    service = ServiceRef(host, name, namespace).encode()
    return {"filter_metadata": {METADATA_NAMESPACE: {SERVICE_KEY: service}}}


# --- what each hook point gets ----------------------------------------------------------------


def http_telemetry(
    telemetry: Telemetry,
    direction: Direction,
    security: ChainSecurity = ChainSecurity.PLAINTEXT,
) -> HttpTelemetry:
    logs: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    if telemetry.metrics:
        logs.append(http_metrics(direction, security))
    if direction is Direction.INBOUND and security.trusts_peer_header:
        filters.append(header_to_metadata())
    if telemetry.access_log_path:
        logs.append(_access_log(telemetry))
    tracer = telemetry.tracer
    spans = tracing(tracer, outbound=direction is Direction.OUTBOUND) if tracer else None
    return HttpTelemetry(logs, filters, spans)


def tcp_telemetry(
    telemetry: Telemetry,
    direction: Direction,
    security: ChainSecurity = ChainSecurity.PLAINTEXT,
) -> dict[str, Any]:
    """Fields for a tcp_proxy: its access loggers and when they run."""
    logs: list[dict[str, Any]] = []
    if telemetry.metrics:
        logs += tcp_metrics(direction, security)
    if telemetry.access_log_path:
        entry = _access_log(telemetry)
        entry["filter"] = {"log_type_filter": {"types": ["TcpConnectionEnd"]}}
        logs.append(entry)
    if not logs:
        return {}
    fields: dict[str, Any] = {
        "access_log": logs,
        "access_log_options": {"flush_access_log_on_connected": True},
    }
    if security is ChainSecurity.MUTUAL_TLS:
        # By default tcp_proxy connects upstream as the connection is accepted, often before
        # the client's certificate arrives: the `opened` entry would miss the principal. Wait
        # for the handshake (as Istio's own gateways do for the peer identity); no application
        # data flows before it, so none needs buffering.
        fields["upstream_connect_mode"] = "ON_DOWNSTREAM_TLS_HANDSHAKE"
        fields["max_early_data_bytes"] = 0
    return fields


def _access_log(telemetry: Telemetry) -> dict[str, Any]:
    return file_access_log(
        telemetry.access_log_path, telemetry.access_log_encoding, telemetry.access_log_format
    )
