"""Istio's standard metrics from what Envoy's stats loggers recorded (pure).

Envoy's series (`envoy_istio_requests_total{facts,source_principal,destination_principal}`,
the facts split into `reporter`, `peer`, `service`, ... by `control.telemetry.facts`) carry only
the per-request facts; the reporting proxy's own identity is this agent's. For each raw label set
this module derives Istio's 25 labels: `source_*` and `destination_*` from the peer's compact
identity and the agent's own, `destination_service*` from the cluster's service, principals
from the certificates (`unknown` without mTLS), `request_protocol` from the gRPC status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from control.telemetry.peer import (
    UNKNOWN,
    UNKNOWN_PEER,
    Peer,
    ServiceRef,
    spiffe_workload,
    workload_peer,
)

ENVOY_PREFIX: Final = "envoy_istio_"
# Istio's families: name -> (type, is TCP).
FAMILIES: Final = {
    "istio_requests_total": ("counter", False),
    "istio_request_duration_milliseconds": ("histogram", False),
    "istio_request_bytes": ("histogram", False),
    "istio_response_bytes": ("histogram", False),
    "istio_tcp_connections_opened_total": ("counter", True),
    "istio_tcp_connections_closed_total": ("counter", True),
    "istio_tcp_sent_bytes_total": ("counter", True),
    "istio_tcp_received_bytes_total": ("counter", True),
}
HTTP_LABELS: Final = (
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)
# TCP series have no response code or gRPC status (as Istio's).
TCP_LABELS: Final = tuple(
    n for n in HTTP_LABELS if n not in ("response_code", "grpc_response_status")
)


def _principal(raw: str) -> str:
    return raw if raw and raw != "-" else UNKNOWN


def authenticated_peer(claimed: Peer, principal: str, *, unverifiable: Peer) -> Peer:
    """The peer a proxy reports, given what it was told and the peer certificate's principal.

    The principal wins: under mTLS a claim stands only when its namespace and service account
    are the certificate's; otherwise the claim is dropped and only the certificate's namespace
    is reported (as Istio takes the peer namespace from the SAN). Without a certificate the
    claim stands (the filter chain already decided whether to believe it); with a certificate
    that names no Kubernetes workload, `unverifiable` is reported."""
    if principal == UNKNOWN:
        return claimed
    workload = spiffe_workload(principal)
    if workload is None:
        return unverifiable
    namespace, account = workload
    if (claimed.namespace, claimed.account) == (namespace, account):
        return claimed
    return Peer(namespace=namespace)


def _server_policy(chain: str, peer_principal: str, local_principal: str) -> str:
    """Istio's rule: `mutual_tls` when both certificates are known, else `none`. The chain's
    word alone is not enough: a client whose handshake fails on an mTLS chain is logged there
    too (a TCP connection's close), without any peer certificate."""
    if not chain:
        return UNKNOWN
    mutual = chain == "mutual_tls" and UNKNOWN not in (peer_principal, local_principal)
    return "mutual_tls" if mutual else "none"


def istio_labels(raw: Mapping[str, str], own: Peer, tcp: bool) -> dict[str, str]:
    """Istio's labels for one raw label set; `own` is this proxy's workload."""
    reporter = raw.get("reporter", "")
    peer = Peer.decode(raw.get("peer", ""))
    service = ServiceRef.decode(raw.get("service", ""))
    source_principal = _principal(raw.get("source_principal", ""))
    destination_principal = _principal(raw.get("destination_principal", ""))
    if reporter == "destination":
        # A header's claim the certificate cannot vouch for is not reported.
        source = authenticated_peer(peer, source_principal, unverifiable=UNKNOWN_PEER)
        destination = own
        policy = _server_policy(raw.get("connection_security_policy", ""),
                                source_principal, destination_principal)  # fmt: skip
    else:
        reporter = "source"
        source = own
        # The endpoint metadata comes from the control plane: kept unless a mesh certificate
        # contradicts it.
        destination = authenticated_peer(peer, destination_principal, unverifiable=peer)
        # As Istio's client sidecar, which never sets the policy (istio/proxy istio_stats.cc:
        # `mutual_tls_` stays unset for Reporter::ClientSidecar).
        policy = UNKNOWN
    grpc = raw.get("grpc_response_status", "")
    labels = {
        "reporter": reporter,
        "source_workload": source.workload,
        "source_canonical_service": source.canonical_service,
        "source_canonical_revision": source.canonical_revision,
        "source_workload_namespace": source.namespace,
        "source_principal": source_principal,
        "source_app": source.app,
        "source_version": source.version,
        "source_cluster": source.cluster,
        "destination_workload": destination.workload,
        "destination_workload_namespace": destination.namespace,
        "destination_principal": destination_principal,
        "destination_app": destination.app,
        "destination_version": destination.version,
        "destination_service": service.host,
        "destination_canonical_service": destination.canonical_service,
        "destination_canonical_revision": destination.canonical_revision,
        "destination_service_name": service.name,
        "destination_service_namespace": service.namespace,
        "destination_cluster": destination.cluster,
        "request_protocol": "tcp" if tcp else ("grpc" if grpc else "http"),
        "response_flags": raw.get("response_flags") or "-",
        "connection_security_policy": policy,
    }
    if tcp:
        return {name: labels[name] for name in TCP_LABELS}
    labels["response_code"] = raw.get("response_code") or "0"
    labels["grpc_response_status"] = grpc
    return {name: labels[name] for name in HTTP_LABELS}


def family_of(envoy_name: str) -> tuple[str, str] | None:
    """`envoy_istio_request_bytes_bucket` -> (`istio_request_bytes`, `_bucket`); None when the
    name is not one of the standard families."""
    if not envoy_name.startswith(ENVOY_PREFIX):
        return None
    name = envoy_name[len("envoy_") :]
    if name in FAMILIES:
        return name, ""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and FAMILIES.get(name[: -len(suffix)], ("", False))[0] == (
            "histogram"
        ):
            return name[: -len(suffix)], suffix
    return None


def own_peer(
    workload: str, namespace: str, labels: Mapping[str, str], account: str = "default"
) -> Peer:
    """This proxy's workload, as its peers name it (the same rules as the control plane's)."""
    if not workload:
        return UNKNOWN_PEER
    return workload_peer(workload, namespace, labels, account=account)
