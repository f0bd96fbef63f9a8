"""A DestinationRule's traffic policy: load balancer, connection pool, outlier detection, TLS.

Shared with the Sidecar (its inbound connection pools).
"""

from __future__ import annotations

import math

from control.api.errors import shown
from control.api.models.destination_rule import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    OutlierDetection,
    PortTrafficPolicy,
    TrafficPolicy,
)
from control.api.rules import common
from control.api.rules.context import Findings

_MAGLEV_MAX = 5000011


def check_traffic_policy(findings: Findings, path: str, policy: TrafficPolicy) -> None:
    if not policy.model_fields_set - {"port_level_settings"} and not policy.port_level_settings:
        findings.error(path, "traffic policy must have at least one field")
        return
    _check_parts(findings, path, policy)
    if policy.tunnel is not None and policy.proxy_protocol is not None:
        findings.error(path, "tunnel and proxyProtocol must not be set together")
    budget = policy.retry_budget
    if budget is not None and budget.percent is not None and not 0 <= budget.percent <= 100:
        findings.error(
            f"{path}.retryBudget.percent", "retry budget percent must be in range [0.0, 100.0]"
        )
    for field, value in (("tunnel", policy.tunnel), ("proxyProtocol", policy.proxy_protocol)):
        if value is not None:
            findings.warn(f"{path}.{field}", f"mizzen does not apply {field} yet")
    if (tunnel := policy.tunnel) is not None:
        if tunnel.protocol and tunnel.protocol not in {"CONNECT", "POST"}:
            findings.error(f"{path}.tunnel.protocol", 'tunnel protocol must be "CONNECT" or "POST"')
        target = tunnel.target_host or ""
        if common.fqdn_error(target) and not common.is_ip(target):
            findings.error(
                f"{path}.tunnel.targetHost",
                f"tunnel target host must be valid FQDN or IP address: {shown(target)}",
            )
        common.check_port(findings, f"{path}.tunnel.targetPort", tunnel.target_port or 0)
    seen: set[int] = set()
    for index, port_policy in enumerate(policy.port_level_settings):
        where = f"{path}.portLevelSettings[{index}]"
        if port_policy.port is None or port_policy.port.number is None:
            findings.error(f"{where}.port", "portTrafficPolicy must have valid port")
        else:
            number = port_policy.port.number
            common.check_port(findings, f"{where}.port.number", number)
            if number in seen:
                findings.warn(
                    f"{where}.port.number",
                    f"duplicate port {number} in portLevelSettings: one of them is ignored",
                )
            seen.add(number)
        if not port_policy.model_fields_set - {"port"}:
            findings.error(where, "port traffic policy must have at least one field")
        else:
            _check_parts(findings, where, port_policy)


def _check_parts(findings: Findings, path: str, policy: TrafficPolicy | PortTrafficPolicy) -> None:
    outlier, pool = policy.outlier_detection, policy.connection_pool
    balancer, tls = policy.load_balancer, policy.tls
    if outlier is not None:
        check_outlier_detection(findings, f"{path}.outlierDetection", outlier)
    if pool is not None:
        check_connection_pool(findings, f"{path}.connectionPool", pool)
    if balancer is not None:
        check_load_balancer(findings, f"{path}.loadBalancer", balancer, outlier)
    if tls is not None:
        check_client_tls(findings, f"{path}.tls", tls)


def check_outlier_detection(findings: Findings, path: str, outlier: OutlierDetection) -> None:
    if outlier.consecutive_errors:
        findings.warn(
            f"{path}.consecutiveErrors",
            "outlier detection consecutive errors is "
            "deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
        )
    if not outlier.split_external_local_origin_errors and outlier.consecutive_local_origin_failures:
        findings.error(
            f"{path}.consecutiveLocalOriginFailures",
            "outlier detection consecutive "
            "local origin failures is specified, but split external local origin "
            "errors is set to false",
        )
    for field, value in (
        ("maxEjectionPercent", outlier.max_ejection_percent),
        ("minHealthPercent", outlier.min_health_percent),
    ):
        if value is not None and not 0 <= value <= 100:
            findings.error(f"{path}.{field}", f"percentage {value} is not in range 0..100")


def check_connection_pool(findings: Findings, path: str, pool: ConnectionPoolSettings) -> None:
    if pool.http is None and pool.tcp is None:
        findings.error(path, "connection pool must have at least one field")
        return
    if (http := pool.http) is not None:
        negatives = (
            (
                "http1MaxPendingRequests",
                http.http1_max_pending_requests,
                "http1 max pending requests",
            ),
            ("http2MaxRequests", http.http2_max_requests, "http2 max requests"),
            (
                "maxRequestsPerConnection",
                http.max_requests_per_connection,
                "max requests per connection",
            ),
            ("maxRetries", http.max_retries, "max retries"),
            ("maxConcurrentStreams", http.max_concurrent_streams, "max concurrent streams"),
        )
        for field, value, words in negatives:
            if value is not None and value < 0:
                findings.error(f"{path}.http.{field}", f"{words} must be non-negative")
        if http.h2_upgrade_policy == "UPGRADE" and http.use_client_protocol:
            findings.error(
                f"{path}.http",
                "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            )
    tcp = pool.tcp
    if tcp is not None and tcp.max_connections is not None and tcp.max_connections < 0:
        findings.error(f"{path}.tcp.maxConnections", "max connections must be non-negative")
    if tcp is not None and tcp.idle_timeout is not None:
        findings.warn(f"{path}.tcp.idleTimeout", "mizzen does not apply tcp.idleTimeout yet")


def check_load_balancer(
    findings: Findings,
    path: str,
    balancer: LoadBalancerSettings,
    outlier: OutlierDetection | None,
) -> None:
    if balancer.simple is not None and balancer.consistent_hash is not None:
        findings.error(path, "only one of simple or consistentHash may be set")
    if (ch := balancer.consistent_hash) is not None:
        where = f"{path}.consistentHash"
        keys = [
            key
            for key in (
                "http_header_name",
                "http_cookie",
                "use_source_ip",
                "http_query_parameter_name",
            )
            if getattr(ch, key) is not None
        ]
        if len(keys) > 1:
            findings.error(
                where,
                "only one of httpHeaderName, httpCookie, useSourceIp or "
                "httpQueryParameterName may be set",
            )
        elif not keys:
            findings.warn(
                where,
                "consistentHash without a hash key hashes nothing; set "
                "httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName",
            )
        if ch.http_cookie is not None and not ch.http_cookie.name:
            findings.error(f"{where}.httpCookie.name", "name required for HttpCookie")
        if ch.http_header_name is not None:  # Envoy refuses (NACKs) an invalid header name
            common.check_header_name(findings, f"{where}.httpHeaderName", ch.http_header_name)
        if ch.ring_hash is not None and ch.maglev is not None:
            findings.error(where, "only one of ringHash or maglev may be set")
        if ch.minimum_ring_size:
            findings.warn(
                f"{where}.minimumRingSize",
                "consistent hash MinimumRingSize is "
                "deprecated, use ConsistentHashLB's RingHash configuration instead",
            )
            if ch.ring_hash is not None or ch.maglev is not None:
                findings.error(
                    where, "only one of MinimumRingSize or Maglev/Ringhash can be specified"
                )
        if ch.maglev is not None:
            size = ch.maglev.table_size or 0
            if size == 0:
                findings.error(f"{where}.maglev.tableSize", "tableSize must be set for maglev")
            elif size >= _MAGLEV_MAX:
                findings.error(
                    f"{where}.maglev.tableSize", "tableSize must be less than 5000011 for maglev"
                )
            elif not _is_prime(size):
                findings.error(
                    f"{where}.maglev.tableSize", "tableSize must be a prime number for maglev"
                )
    if (warmup := balancer.warmup) is not None:
        where = f"{path}.warmup"
        if warmup.duration is None:
            findings.error(f"{where}.duration", "duration is required")
        if warmup.minimum_percent is not None and not 0 <= warmup.minimum_percent <= 100:
            findings.error(
                f"{where}.minimumPercent",
                "minimumPercent value should be less than or equal to 100",
            )
        if warmup.aggression is not None and warmup.aggression < 1:
            findings.error(f"{where}.aggression", "aggression should be greater than or equal to 1")
    cookie = balancer.consistent_hash.http_cookie if balancer.consistent_hash else None
    if cookie is not None and cookie.attributes:
        for index, attribute in enumerate(cookie.attributes):
            if not attribute.name:
                findings.error(
                    f"{path}.consistentHash.httpCookie.attributes[{index}].name",
                    "cookie attribute name is required",
                )
    if balancer.simple == "PASSTHROUGH":
        findings.warn(
            f"{path}.simple",
            "mizzen does not apply PASSTHROUGH yet: the cluster balances LEAST_REQUEST",
        )
    if balancer.locality_lb_setting is not None:
        where = f"{path}.localityLbSetting"
        _check_locality(findings, where, balancer.locality_lb_setting, outlier)
        findings.warn(where, "mizzen does not apply locality load balancing yet")


def _is_prime(number: int) -> bool:
    if number < 4:
        return number > 1
    if number % 2 == 0:
        return False
    return all(number % factor for factor in range(3, math.isqrt(number) + 1, 2))


def _check_locality(
    findings: Findings,
    path: str,
    setting: LocalityLoadBalancerSetting,
    outlier: OutlierDetection | None,
) -> None:
    if setting.distribute and setting.failover:
        findings.error(path, "can not simultaneously specify 'distribute' and 'failover'")
    for index, rule in enumerate(setting.distribute):
        where = f"{path}.distribute[{index}]"
        if not rule.from_:
            findings.error(f"{where}.from", "locality to distribute from must be set")
        total = sum(rule.to.values())
        if total != 100:
            findings.error(f"{where}.to", f"total locality weight {total} != 100")
    for index, failover in enumerate(setting.failover):
        where = f"{path}.failover[{index}]"
        if not failover.from_ or not failover.to:
            findings.error(where, "locality failover from and to must both be set")
        elif failover.from_ == failover.to:
            findings.error(where, "locality lb failover settings must specify different regions")
        elif "/" in failover.from_ or "/" in failover.to:
            findings.error(where, "locality lb failover only supports region (no zone or subzone)")
    if (setting.failover or setting.failover_priority) and outlier is None:
        findings.warn(path, "locality failover takes effect only with outlierDetection set")


def check_client_tls(findings: Findings, path: str, tls: ClientTLSSettings) -> None:
    if tls.mode == "ISTIO_MUTUAL":
        for field, value, words in (
            ("clientCertificate", tls.client_certificate, "client certificate"),
            ("privateKey", tls.private_key, "private key"),
            ("caCertificates", tls.ca_certificates, "CA certificates"),
            ("credentialName", tls.credential_name, "credentialName"),
        ):
            if value:
                findings.error(
                    f"{path}.{field}", f"ISTIO_MUTUAL TLS cannot have associated {words}"
                )
    if tls.mode == "MUTUAL" and not tls.credential_name:
        if not tls.client_certificate:
            findings.error(
                f"{path}.clientCertificate", "client certificate required for mutual tls"
            )
        if not tls.private_key:
            findings.error(f"{path}.privateKey", "private key required for mutual tls")
    if tls.ca_crl and tls.credential_name:
        findings.error(
            f"{path}.caCrl",
            "CRL is not supported with credentialName. CRL has to be specified in the credential",
        )
    if tls.insecure_skip_verify and (tls.ca_certificates or tls.subject_alt_names):
        findings.warn(
            path, "insecureSkipVerify is set: caCertificates and subjectAltNames are not checked"
        )
