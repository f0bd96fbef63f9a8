"""Is a set of resources safe to hand to Envoy? (go-control-plane's `Snapshot.Consistent`)

Never a listener pointing at a missing route table, never a route or TCP proxy pointing at a
missing cluster, never an EDS cluster without its ClusterLoadAssignment, never a cluster whose TLS
asks the ADS stream for a Secret (`credentialName`) without that Secret: Envoy would accept each
of these and then fail requests (503s, or clusters stuck warming).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from control.plane.xds.translate.credential_tls import SDS_PREFIX
from control.plane.xds.translate.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    Resources,
)

_HCM = hcm_pb2.HttpConnectionManager.DESCRIPTOR.full_name
_TCP = tcp_proxy_pb2.TcpProxy.DESCRIPTOR.full_name


def _chains(listener: listener_pb2.Listener) -> Iterator[listener_components_pb2.FilterChain]:
    yield from listener.filter_chains
    if listener.HasField("default_filter_chain"):
        yield listener.default_filter_chain


_RouteAt = tuple[Any, Any, Any]  # a route table, a virtual host of it, a route of that


def _route_clusters(config: route_pb2.RouteConfiguration) -> Iterator[tuple[_RouteAt, str]]:
    """(where, a cluster a route names); `where` is put in words only for a missing cluster
    (`_where`): a table of 1,000 routes is checked for every scope."""
    for vhost in config.virtual_hosts:
        for route in vhost.routes:
            if not route.HasField("route"):
                continue
            action = route.route
            at = (config, vhost, route)
            if action.cluster:
                yield at, action.cluster
            for weighted in action.weighted_clusters.clusters:
                yield at, weighted.name
            for mirror in action.request_mirror_policies:
                yield at, mirror.cluster


def _where(where: str | _RouteAt) -> str:
    if isinstance(where, str):
        return where
    config, vhost, route = where
    return f"route {config.name} / {vhost.name} / {route.name}"


Reference = tuple[str, str, str]  # the type it names, the name, the problem if it is missing
_SDS_PREFIX = SDS_PREFIX.encode()


def _secret_names(cluster: object) -> Iterator[str]:
    """The ADS-served SDS names (`kubernetes://...`) a cluster's TLS socket asks for."""
    socket = cluster.transport_socket  # type: ignore[attr-defined]
    if _SDS_PREFIX not in socket.typed_config.value:  # most clusters: no unpacking
        return
    context = tls_pb2.UpstreamTlsContext()
    socket.typed_config.Unpack(context)
    common = context.common_tls_context
    for config in common.tls_certificate_sds_secret_configs:
        if config.sds_config.HasField("ads"):
            yield config.name
    validation = common.combined_validation_context.validation_context_sds_secret_config
    if validation.sds_config.HasField("ads"):
        yield validation.name


def unresolved(resources: Resources) -> list[Reference]:
    """The references of `resources` that `resources` itself does not hold, in order."""
    clusters = resources.of(CLUSTER)
    routes = resources.of(ROUTE)
    endpoints = resources.of(ENDPOINT)
    found: list[Reference] = []
    needed: list[tuple[str | _RouteAt, str]] = []
    for listener in resources.of(LISTENER).values():
        assert isinstance(listener, listener_pb2.Listener)
        for chain in _chains(listener):
            for network_filter in chain.filters:
                config = network_filter.typed_config
                where = f"listener {listener.name}"
                if config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                    hcm = hcm_pb2.HttpConnectionManager()
                    config.Unpack(hcm)
                    name = hcm.rds.route_config_name
                    if hcm.HasField("rds") and name not in routes:
                        found.append((ROUTE, name, f"{where}: no route {name!r}"))
                    if hcm.HasField("route_config"):
                        needed.extend(_route_clusters(hcm.route_config))
                elif config.Is(tcp_proxy_pb2.TcpProxy.DESCRIPTOR):
                    proxy = tcp_proxy_pb2.TcpProxy()
                    config.Unpack(proxy)
                    if proxy.cluster:
                        needed.append((where, proxy.cluster))
                    needed.extend((where, w.name) for w in proxy.weighted_clusters.clusters)
    for config in routes.values():
        assert isinstance(config, route_pb2.RouteConfiguration)
        needed.extend(_route_clusters(config))
    found.extend(
        (CLUSTER, name, f"{_where(where)}: no cluster {name!r}")
        for where, name in needed
        if name not in clusters
    )
    secrets = resources.of(SECRET)
    for name, cluster in clusters.items():
        for secret in _secret_names(cluster):
            if secret not in secrets:
                found.append((SECRET, secret, f"cluster {name}: no secret {secret!r}"))
        if cluster.type == cluster.EDS:  # type: ignore[attr-defined]
            service = cluster.eds_cluster_config.service_name or name  # type: ignore[attr-defined]
            if service not in endpoints:
                problem = f"cluster {name}: no endpoints (ClusterLoadAssignment {service!r})"
                found.append((ENDPOINT, service, problem))
    return found


def problems(
    resources: Resources, unresolved_of: Callable[[Resources], list[Reference]] = unresolved
) -> list[str]:
    """Every dangling reference, in words; empty when consistent. Merged halves are checked
    half by half: what a half does not hold itself is looked up in the others, so a half
    shared by many proxies is read once (`unresolved_of` may remember it per half)."""
    if not resources.parts:
        return [problem for _, _, problem in unresolved_of(resources)]
    return [
        problem
        for part in resources.parts
        for type_url, name, problem in unresolved_of(part)
        if name not in resources.of(type_url)
    ]
