"""Clusters (CDS) and their endpoints (EDS) for one proxy: outbound per host, port and subset;
the passthrough and black-hole clusters; inbound ORIGINAL_DST clusters for its own ports."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from control.api.models.destination_rule import DestinationRule
from control.api.registry import MeshResource
from control.plane.model.endpoints import labels_match
from control.plane.xds.translate import names
from control.plane.xds.translate.outbound_tls import ClientTls, endpoint_tls_metadata
from control.plane.xds.translate.policy import (
    DEFAULT_CONNECT_TIMEOUT,
    cluster_settings,
    connection_pool,
    effective_policy,
)
from control.plane.xds.translate.port_protocol import Protocol
from control.plane.xds.translate.service_registry import (
    HostEndpoint,
    Registry,
    Resolution,
    ServiceHost,
)
from control.plane.xds.translate.telemetry import add_metadata, cluster_metadata, endpoint_metadata

ADS: dict[str, Any] = {"ads": {}, "resource_api_version": "V3"}


@dataclass(frozen=True, slots=True)
class InboundPort:
    """A port of this proxy's workload that a Service exposes (the target port)."""

    port: int
    protocol: Protocol
    # The first Service selecting this port, as (host, name, namespace): telemetry's
    # destination_service on the server side.
    service: tuple[str, str, str] | None = None


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def load_assignment(
    name: str,
    endpoints: Iterable[HostEndpoint],
    accepts_mtls: Callable[[HostEndpoint], bool] | None = None,
) -> dict[str, Any]:
    """`accepts_mtls`: which endpoints auto-mTLS picks (`outbound_tls`), None: none."""
    lb_endpoints = []
    for endpoint in endpoints:
        entry: dict[str, Any] = {"endpoint": {"address": _socket(endpoint.address, endpoint.port)}}
        if endpoint.weight:
            entry["load_balancing_weight"] = endpoint.weight
        # Telemetry hook: who this endpoint is.
        add_metadata(
            entry,
            endpoint_metadata(
                endpoint.workload, endpoint.namespace, endpoint.labels, endpoint.service_account
            ),
        )
        if accepts_mtls is not None:
            add_metadata(entry, endpoint_tls_metadata(accepts_mtls(endpoint)))
        lb_endpoints.append(entry)
    assignment: dict[str, Any] = {"cluster_name": name}
    if lb_endpoints:
        assignment["endpoints"] = [{"lb_endpoints": lb_endpoints}]
    return assignment


def outbound_clusters(
    registry: Registry,
    rules: Mapping[str, MeshResource[DestinationRule]],
    client_tls: ClientTls | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(clusters, load assignments of the EDS ones) for every host, port and subset;
    `client_tls`: the client's side of mTLS (None: plaintext, the DestinationRules' TLS
    still applied)."""
    tls = client_tls or ClientTls()
    clusters: list[dict[str, Any]] = []
    assignments: list[dict[str, Any]] = []
    for host in registry.hosts.values():
        host_clusters(host, rules.get(host.hostname), tls, clusters, assignments)
    return clusters, assignments


def host_clusters(
    host: ServiceHost,
    rule: MeshResource[DestinationRule] | None,
    tls: ClientTls,
    clusters: list[dict[str, Any]],
    assignments: list[dict[str, Any]],
) -> None:
    """One host's clusters (every port and subset) and load assignments, appended: what they
    are depends on the host, the DestinationRule that applies to it and `tls` alone, so scopes
    that see the same host with the same rule share them (`proxy_resources`)."""
    spec = rule.spec if rule else None
    subsets = [s for s in spec.subsets if s.name] if spec else []
    for port in host.ports:
        if port.protocol is Protocol.UDP:
            continue
        for subset in [None, *subsets]:
            subset_name = subset.name or "" if subset else ""
            name = names.outbound_cluster(port.number, host.hostname, subset_name)
            endpoints = [
                e for e in port.endpoints if subset is None or labels_match(subset.labels, e.labels)
            ]
            cluster: dict[str, Any] = {"name": name}
            accepts = (
                (lambda e, ns=host.namespace: tls.endpoint_accepts_mtls(e, ns))
                if tls.sds and tls.auto_mtls else None
            )  # fmt: skip
            cluster.update(_discovery(host.resolution, name, endpoints, assignments, accepts))
            policy = effective_policy(spec, port.number, subset)
            settings = cluster_settings(policy, port.protocol)
            settings.update(tls.cluster_fields(policy.tls, host, port, subset_name, rule))
            if host.resolution is Resolution.PASSTHROUGH:
                settings["lb_policy"] = "CLUSTER_PROVIDED"
                settings.pop("ring_hash_lb_config", None)
                settings.pop("maglev_lb_config", None)
            cluster.update(settings)
            add_metadata(cluster, _service_metadata(host))  # telemetry hook
            clusters.append(cluster)


def _discovery(
    resolution: Resolution,
    name: str,
    endpoints: list[HostEndpoint],
    assignments: list[dict[str, Any]],
    accepts_mtls: Callable[[HostEndpoint], bool] | None = None,
) -> dict[str, Any]:
    if resolution is Resolution.EDS:
        assignments.append(load_assignment(name, endpoints, accepts_mtls))
        return {"type": "EDS", "eds_cluster_config": {"eds_config": ADS, "service_name": name}}
    if resolution is Resolution.PASSTHROUGH:
        return {"type": "ORIGINAL_DST"}
    return {
        "type": resolution.value,
        "dns_lookup_family": "V4_ONLY",
        "load_assignment": load_assignment(name, endpoints),
    }


def _service_metadata(host: ServiceHost) -> dict[str, Any]:
    """A Kubernetes Service is named by its short name; a ServiceEntry host by itself."""
    name = host.local_names[0] if host.local_names else host.hostname
    return cluster_metadata(host.hostname, name, host.namespace)


def _bound_to_passthrough_source() -> dict[str, Any]:
    return {"source_address": {"address": names.INBOUND_PASSTHROUGH_SOURCE, "port_value": 0}}


def fixed_clusters() -> list[dict[str, Any]]:
    """The clusters every sidecar has."""
    limits = connection_pool(None, Protocol.TCP)
    return [
        {
            "name": names.BLACKHOLE_CLUSTER,
            "type": "STATIC",
            "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        },
        {
            "name": names.PASSTHROUGH_CLUSTER,
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
            "metadata": cluster_metadata(
                names.PASSTHROUGH_CLUSTER, names.PASSTHROUGH_CLUSTER, "unknown"
            ),
            **limits,
        },
        {
            "name": names.INBOUND_PASSTHROUGH_CLUSTER,
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
            "upstream_bind_config": _bound_to_passthrough_source(),
            **limits,
        },
    ]


def inbound_clusters(ports: Iterable[InboundPort]) -> list[dict[str, Any]]:
    """Istio's inbound forwarding: to the pod's own IP and the original port, from 127.0.0.6, so
    apps bound to the pod IP get the traffic and ports bound to localhost stay private."""
    clusters = []
    for port in ports:
        cluster: dict[str, Any] = {
            "name": names.inbound_cluster(port.port),
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
            "upstream_bind_config": _bound_to_passthrough_source(),
        }
        if port.service is not None:  # telemetry hook: the server's destination_service
            add_metadata(cluster, cluster_metadata(*port.service))
        cluster.update(connection_pool(None, port.protocol))
        clusters.append(cluster)
    return clusters
