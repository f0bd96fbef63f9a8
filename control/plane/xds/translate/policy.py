"""DestinationRules: which rule applies to a host, and the Envoy cluster settings its traffic
policy means (load balancer and its slow start, circuit breakers and the retry budget, outlier
detection, HTTP protocol options)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from control.api.duration import parse_millis
from control.api.models.destination_rule import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    ConsistentHashLB,
    DestinationRule,
    LoadBalancerSettings,
    OutlierDetection,
    RetryBudget,
    Subset,
    TrafficPolicy,
)
from control.api.registry import MeshResource
from control.plane.xds.translate.port_protocol import Protocol
from control.plane.xds.translate.service_registry import Registry

UNLIMITED = 4294967295  # Istio's "effectively unlimited" circuit-breaker threshold
DEFAULT_CONNECT_TIMEOUT = "10s"


def duration(text: str) -> str:
    """An Istio duration as protobuf JSON seconds ("1.5s"); "0s" only where the model allows it."""
    millis = parse_millis(text, zero=True)
    return f"{millis // 1000}.{millis % 1000:03d}s"


@dataclass(frozen=True, slots=True)
class Policy:
    """The effective policy of one cluster: each field from the most specific layer that set it."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None  # outbound_tls reads it
    retry_budget: RetryBudget | None = None  # a TrafficPolicy's only (not per port)


_POLICY_FIELDS = (
    "load_balancer",
    "connection_pool",
    "outlier_detection",
    "tls",
    "retry_budget",
)


def rules_by_host(
    destination_rules: Iterable[MeshResource[DestinationRule]],
    registry: Registry,
    proxy_namespace: str,
) -> dict[str, MeshResource[DestinationRule]]:
    """Hostname -> the DestinationRule that applies for a proxy of `proxy_namespace`: one with a
    workloadSelector (the caller passes only those that select the proxy) first, then the
    proxy's own namespace, then the host's namespace, then any; exact hosts before wildcards."""
    candidates: dict[
        str, list[tuple[tuple[int, int, int, str, str], MeshResource[DestinationRule]]]
    ]
    candidates = {}
    for rule in destination_rules:
        if not rule.spec.host:
            continue
        namespace = rule.namespace or "default"
        pattern = registry.resolve(rule.spec.host, namespace)
        wildcard = int(pattern.startswith("*"))
        for host in registry.matching(pattern):
            rank = 0 if namespace == proxy_namespace else 1 if namespace == host.namespace else 2
            selected = int(rule.spec.workload_selector is None)
            order = (selected, wildcard, rank, namespace, rule.name)
            candidates.setdefault(host.hostname, []).append((order, rule))
    return {host: min(found, key=lambda item: item[0])[1] for host, found in candidates.items()}


def _layers(policy: TrafficPolicy | None, port: int) -> list[Any]:
    if policy is None:
        return []
    layers: list[Any] = [policy]
    layers += [p for p in policy.port_level_settings if p.port and p.port.number == port]
    return layers


def effective_policy(rule: DestinationRule | None, port: int, subset: Subset | None) -> Policy:
    if rule is None:
        return Policy()
    layers = _layers(rule.traffic_policy, port)
    if subset is not None:
        layers += _layers(subset.traffic_policy, port)
    found: dict[str, Any] = {}
    for layer in layers:
        for name in _POLICY_FIELDS:
            value = getattr(layer, name, None)
            if value is not None:
                found[name] = value
    return Policy(**found)


def cluster_settings(policy: Policy, protocol: Protocol) -> dict[str, Any]:
    """The fields a policy sets on an Envoy cluster (Istio's defaults when unset)."""
    out: dict[str, Any] = {"connect_timeout": DEFAULT_CONNECT_TIMEOUT}
    out.update(_load_balancer(policy.load_balancer))
    out.update(connection_pool(policy.connection_pool, protocol))
    if policy.retry_budget is not None:
        # Envoy then ignores max_retries, as Istio documents.
        out["circuit_breakers"]["thresholds"][0]["retry_budget"] = _retry_budget(
            policy.retry_budget
        )
    if policy.outlier_detection is not None:
        out.update(_outlier(policy.outlier_detection))
    return out


def _retry_budget(budget: RetryBudget) -> dict[str, Any]:
    """Unset parts keep Envoy's defaults (20 %, 3), which are Istio's documented ones."""
    out: dict[str, Any] = {}
    if budget.percent is not None:
        out["budget_percent"] = {"value": float(budget.percent)}
    if budget.min_retry_concurrency is not None:
        out["min_retry_concurrency"] = budget.min_retry_concurrency
    return out


def _load_balancer(lb: LoadBalancerSettings | None) -> dict[str, Any]:
    if lb is not None and lb.consistent_hash is not None:
        return _consistent_hash(lb.consistent_hash)
    simple = lb.simple if lb is not None else None
    if simple == "RANDOM":
        return {"lb_policy": "RANDOM"}
    # LEAST_REQUEST, LEAST_CONN, unset (PASSTHROUGH: validation warns it is not applied yet).
    policy, config = "LEAST_REQUEST", "least_request_lb_config"
    if simple == "ROUND_ROBIN":
        policy, config = "ROUND_ROBIN", "round_robin_lb_config"
    out: dict[str, Any] = {"lb_policy": policy}
    slow_start = _slow_start(lb) if lb is not None else None
    if slow_start is not None:
        out[config] = {"slow_start_config": slow_start}
    return out


def _slow_start(lb: LoadBalancerSettings) -> dict[str, Any] | None:
    """`warmup` (or the deprecated `warmupDurationSecs`): new endpoints get traffic ramped up
    over the window, as Istio sets Envoy's slow start on round-robin and least-request."""
    warmup = lb.warmup
    window = warmup.duration if warmup is not None else lb.warmup_duration_secs
    if not window:
        return None
    config: dict[str, Any] = {"slow_start_window": duration(window)}
    if warmup is not None and warmup.aggression is not None:
        config["aggression"] = {
            "default_value": float(warmup.aggression),
            "runtime_key": "mizzen.lb.slow_start.aggression",
        }
    if warmup is not None and warmup.minimum_percent is not None:
        config["min_weight_percent"] = {"value": float(warmup.minimum_percent)}
    return config


def _consistent_hash(hash_lb: ConsistentHashLB) -> dict[str, Any]:
    if hash_lb.maglev is not None:
        config: dict[str, Any] = {}
        if hash_lb.maglev.table_size:
            config["table_size"] = hash_lb.maglev.table_size
        return {"lb_policy": "MAGLEV", "maglev_lb_config": config}
    ring = (hash_lb.ring_hash.minimum_ring_size if hash_lb.ring_hash else None) or (
        hash_lb.minimum_ring_size or 1024
    )
    return {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": ring}}


def hash_policy(lb: LoadBalancerSettings | None) -> list[dict[str, Any]]:
    """The route-side half of consistent hashing: what Envoy hashes on."""
    if lb is None or lb.consistent_hash is None:
        return []
    h = lb.consistent_hash
    if h.http_header_name:
        return [{"header": {"header_name": h.http_header_name}}]
    if h.http_cookie is not None and h.http_cookie.name:
        cookie: dict[str, Any] = {"name": h.http_cookie.name}
        if h.http_cookie.path:
            cookie["path"] = h.http_cookie.path
        if h.http_cookie.ttl:  # "0s": a session cookie
            cookie["ttl"] = duration(h.http_cookie.ttl)
        attributes = [
            {"name": a.name, "value": a.value or ""} for a in h.http_cookie.attributes if a.name
        ]
        if attributes:
            cookie["attributes"] = attributes
        return [{"cookie": cookie}]
    if h.use_source_ip:
        return [{"connection_properties": {"source_ip": True}}]
    if h.http_query_parameter_name:
        return [{"query_parameter": {"name": h.http_query_parameter_name}}]
    return []


def _limit(value: int | None) -> int:
    return value if value is not None and value > 0 else UNLIMITED


def connection_pool(pool: ConnectionPoolSettings | None, protocol: Protocol) -> dict[str, Any]:
    tcp, http = (pool.tcp, pool.http) if pool is not None else (None, None)
    out: dict[str, Any] = {
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": _limit(tcp.max_connections if tcp else None),
                    "max_pending_requests": _limit(
                        http.http1_max_pending_requests if http else None
                    ),
                    "max_requests": _limit(http.http2_max_requests if http else None),
                    "max_retries": _limit(http.max_retries if http else None),
                    "track_remaining": True,
                }
            ]
        }
    }
    if tcp is not None:
        if tcp.connect_timeout:
            out["connect_timeout"] = duration(tcp.connect_timeout)
        if tcp.tcp_keepalive is not None:
            keepalive: dict[str, Any] = {}
            if tcp.tcp_keepalive.probes:
                keepalive["keepalive_probes"] = tcp.tcp_keepalive.probes
            if tcp.tcp_keepalive.time:
                keepalive["keepalive_time"] = max(1, parse_millis(tcp.tcp_keepalive.time) // 1000)
            if tcp.tcp_keepalive.interval:
                interval = max(1, parse_millis(tcp.tcp_keepalive.interval) // 1000)
                keepalive["keepalive_interval"] = interval
            out["upstream_connection_options"] = {"tcp_keepalive": keepalive}
    options = _http_options(pool, protocol)
    if options is not None:
        out["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": options
        }
    return out


def _http_options(pool: ConnectionPoolSettings | None, protocol: Protocol) -> dict[str, Any] | None:
    """HttpProtocolOptions: HTTP/2 upstreams for http2/grpc ports, and the pool's HTTP knobs."""
    http = pool.http if pool is not None else None
    tcp = pool.tcp if pool is not None else None
    common: dict[str, Any] = {}
    if http is not None and http.idle_timeout:
        common["idle_timeout"] = duration(http.idle_timeout)
    if http is not None and http.max_requests_per_connection:
        common["max_requests_per_connection"] = http.max_requests_per_connection
    if tcp is not None and tcp.max_connection_duration:
        common["max_connection_duration"] = duration(tcp.max_connection_duration)
    upgrade = http is not None and http.h2_upgrade_policy == "UPGRADE" and protocol.is_http
    http2 = protocol.is_http2 or upgrade
    if not http2 and not common:
        return None
    options: dict[str, Any] = {"@type": _HTTP_OPTIONS_TYPE}
    if common and protocol.is_http:
        options["common_http_protocol_options"] = common
    if http is not None and http.use_client_protocol and protocol.is_http:
        options["use_downstream_protocol_config"] = {"http2_protocol_options": {}}
    elif http2:
        h2: dict[str, Any] = {}
        if http is not None and http.max_concurrent_streams:
            h2["max_concurrent_streams"] = http.max_concurrent_streams
        options["explicit_http_config"] = {"http2_protocol_options": h2}
    else:
        options["explicit_http_config"] = {"http_protocol_options": {}}
    return options


_HTTP_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _outlier(detection: OutlierDetection) -> dict[str, Any]:
    out: dict[str, Any] = {"enforcing_success_rate": 0}
    errors = detection.consecutive_5xx_errors
    if errors is None and detection.consecutive_errors is not None:
        errors = detection.consecutive_errors
    if errors is not None:
        out["consecutive_5xx"] = errors
        out["enforcing_consecutive_5xx"] = 100 if errors > 0 else 0
    if detection.consecutive_gateway_errors is not None:
        out["consecutive_gateway_failure"] = detection.consecutive_gateway_errors
        enforcing = 100 if detection.consecutive_gateway_errors > 0 else 0
        out["enforcing_consecutive_gateway_failure"] = enforcing
    if detection.split_external_local_origin_errors:
        out["split_external_local_origin_errors"] = True
        if detection.consecutive_local_origin_failures is not None:
            out["consecutive_local_origin_failure"] = detection.consecutive_local_origin_failures
            out["enforcing_consecutive_local_origin_failure"] = 100
    if detection.interval:
        out["interval"] = duration(detection.interval)
    if detection.base_ejection_time:
        out["base_ejection_time"] = duration(detection.base_ejection_time)
    if detection.max_ejection_percent is not None:
        out["max_ejection_percent"] = detection.max_ejection_percent
    result: dict[str, Any] = {"outlier_detection": out}
    if detection.min_health_percent is not None:
        result["common_lb_config"] = {
            "healthy_panic_threshold": {"value": float(detection.min_health_percent)}
        }
    return result
