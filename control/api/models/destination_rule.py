"""DestinationRule (networking.istio.io): what happens to traffic after routing picked a host."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.api.duration import Duration, ZeroDuration
from control.api.models.base import (
    ApiModel,
    Bool,
    Float,
    Int,
    Labels,
    LabelSelector,
    PortSelector,
    Str,
    UInt,
)

SimpleLB = Literal["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN",
                   "LEAST_REQUEST"]  # fmt: skip


class HTTPCookieAttribute(ApiModel):
    """An attribute of the affinity cookie (`SameSite=Strict`, `Secure`)."""

    name: Str | None = None
    value: Str | None = None


class HTTPCookie(ApiModel):
    name: Str | None = None
    path: Str | None = None
    ttl: ZeroDuration | None = None
    """`0s`: a session cookie; unset: no cookie is generated (Envoy's and Istio's rule)."""
    attributes: tuple[HTTPCookieAttribute, ...] = ()


class RingHash(ApiModel):
    minimum_ring_size: UInt | None = None


class MagLev(ApiModel):
    table_size: UInt | None = None


class ConsistentHashLB(ApiModel):
    """Session affinity: exactly one hash key (header, cookie, source IP or query parameter)."""

    http_header_name: Str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: Bool | None = None
    http_query_parameter_name: Str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: UInt | None = None
    """Deprecated: use ringHash.minimumRingSize."""


class LocalityDistribute(ApiModel):
    from_: Str | None = Field(default=None, alias="from")
    to: dict[Str, UInt] = Field(default_factory=dict)


class LocalityFailover(ApiModel):
    from_: Str | None = Field(default=None, alias="from")
    to: Str | None = None


class LocalityLoadBalancerSetting(ApiModel):
    distribute: tuple[LocalityDistribute, ...] = ()
    failover: tuple[LocalityFailover, ...] = ()
    failover_priority: tuple[Str, ...] = ()
    enabled: Bool | None = None


class WarmupConfiguration(ApiModel):
    """Slow start: traffic to a new endpoint ramps up over `duration`."""

    duration: Duration | None = None
    minimum_percent: Float | None = None
    aggression: Float | None = None


class LoadBalancerSettings(ApiModel):
    simple: SimpleLB | None = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    warmup_duration_secs: Duration | None = None
    """Deprecated: use warmup."""
    warmup: WarmupConfiguration | None = None


class TcpKeepalive(ApiModel):
    probes: UInt | None = None
    time: Duration | None = None
    interval: Duration | None = None


class TCPSettings(ApiModel):
    max_connections: Int | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


class HTTPSettings(ApiModel):
    http1_max_pending_requests: Int | None = None
    http2_max_requests: Int | None = None
    max_requests_per_connection: Int | None = None
    max_retries: Int | None = None
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: Bool | None = None
    max_concurrent_streams: Int | None = None


class ConnectionPoolSettings(ApiModel):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(ApiModel):
    split_external_local_origin_errors: Bool | None = None
    consecutive_local_origin_failures: UInt | None = None
    consecutive_gateway_errors: UInt | None = None
    consecutive_5xx_errors: UInt | None = Field(default=None, alias="consecutive5xxErrors")
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Int | None = None
    min_health_percent: Int | None = None
    consecutive_errors: Int | None = None
    """Deprecated: use consecutive5xxErrors."""


class ClientTLSSettings(ApiModel):
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    client_certificate: Str | None = None
    private_key: Str | None = None
    ca_certificates: Str | None = None
    credential_name: Str | None = None
    subject_alt_names: tuple[Str, ...] = ()
    sni: Str | None = None
    insecure_skip_verify: Bool | None = None
    ca_crl: Str | None = None


class TunnelSettings(ApiModel):
    """Tunnels the connection through a proxy (HTTP CONNECT or POST)."""

    protocol: Str | None = None
    target_host: Str | None = None
    target_port: UInt | None = None


class RetryBudget(ApiModel):
    """Retries allowed at once, as a share of the active requests (Envoy's retry budget)."""

    percent: Float | None = None
    min_retry_concurrency: UInt | None = None


class ProxyProtocol(ApiModel):
    version: Literal["V1", "V2"] | None = None


class PortTrafficPolicy(ApiModel):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(ApiModel):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None


class Subset(ApiModel):
    """A named group of a service's endpoints, picked by labels, with its own policy."""

    name: Str | None = None
    labels: Labels = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class DestinationRule(ApiModel):
    """The spec of a DestinationRule."""

    host: Str | None = None
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[Str, ...] = ()
    workload_selector: LabelSelector | None = None
    """Istio's `matchLabels` form (type.v1beta1.WorkloadSelector)."""
