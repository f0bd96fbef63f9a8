"""Sidecar rules (Istio's ValidateSidecar)."""

from __future__ import annotations

from control.api.errors import shown
from control.api.models.sidecar import IstioEgressListener, IstioIngressListener, Sidecar
from control.api.rules import common
from control.api.rules.context import Findings
from control.api.rules.gateway import check_server_tls
from control.api.rules.http_parts import check_destination
from control.api.rules.traffic_policy import check_connection_pool

UNIX_PREFIX = "unix://"
_LOCAL_HOSTS = frozenset({"127.0.0.1", "0.0.0.0", "::1", "::", ""})


def check(spec: Sidecar, findings: Findings) -> None:
    if spec.workload_selector is not None:
        labels = spec.workload_selector.labels
        common.check_selector_labels(findings, "spec.workloadSelector.labels", labels)
        if not labels:
            findings.warn(
                "spec.workloadSelector",
                "sidecar: workload selector specified without "
                "labels, will be applied to all services in namespace",
            )
    if (
        not spec.egress
        and not spec.ingress
        and spec.outbound_traffic_policy is None
        and spec.inbound_connection_pool is None
    ):
        findings.error("spec", "sidecar: empty configuration provided")
        return
    ports: set[int] = set()
    for index, listener in enumerate(spec.ingress):
        _check_ingress(findings, f"spec.ingress[{index}]", listener, ports)
    if spec.inbound_connection_pool is not None:
        check_connection_pool(findings, "spec.inboundConnectionPool", spec.inbound_connection_pool)
    _warn_not_applied(findings, spec)
    ports = set()
    sockets: set[str] = set()
    for index, egress in enumerate(spec.egress):
        where = f"spec.egress[{index}]"
        if egress.port is None:
            if index != len(spec.egress) - 1:
                findings.error(
                    where,
                    "sidecar: the egress listener with empty port should be the "
                    "last listener in the list",
                )
        else:
            _check_egress_port(findings, where, egress, ports, sockets)
        _check_egress_hosts(findings, where, egress)
    policy = spec.outbound_traffic_policy
    if policy is not None and policy.egress_proxy is not None:
        where = "spec.outboundTrafficPolicy.egressProxy"
        if policy.mode != "ALLOW_ANY":
            findings.error(
                where,
                "sidecar: egress_proxy must be set only with ALLOW_ANY "
                "outbound_traffic_policy mode",
            )
        elif policy.egress_proxy.port is None:
            findings.error(f"{where}.port", "sidecar: egress_proxy port must be non-nil")
        else:
            problem = common.fqdn_error(policy.egress_proxy.host or "")
            if problem:
                findings.error(f"{where}.host", problem)
            check_destination(findings, where, policy.egress_proxy)


def _check_ingress(
    findings: Findings, path: str, listener: IstioIngressListener, ports: set[int]
) -> None:
    port = listener.port
    if port is None:
        findings.error(f"{path}.port", "sidecar: port is required for ingress listeners")
        return
    if port.target_port:
        findings.error(f"{path}.port.targetPort", "targetPort has no impact on Sidecars")
    if port.name:
        common.check_port_name(findings, f"{path}.port.name", port.name)
    common.check_protocol(findings, f"{path}.port.protocol", port.protocol)
    common.check_port(findings, f"{path}.port.number", port.number or 0)
    if listener.bind and not common.is_ip(listener.bind):
        findings.error(f"{path}.bind", f"{shown(listener.bind)} is not a valid IP address")
    if (port.number or 0) in ports:
        findings.error(f"{path}.port.number", "sidecar: ports on IP bound listeners must be unique")
    ports.add(port.number or 0)
    if listener.default_endpoint:
        _check_default_endpoint(findings, f"{path}.defaultEndpoint", listener.default_endpoint)
    if (tls := listener.tls) is not None:
        if tls.subject_alt_names:
            findings.error(
                f"{path}.tls.subjectAltNames",
                "sidecar: subjectAltNames is not supported in ingress tls",
            )
        if tls.https_redirect:
            findings.error(f"{path}.tls.httpsRedirect", "sidecar: httpsRedirect is not supported")
        if tls.credential_name:
            findings.error(
                f"{path}.tls.credentialName", "sidecar: credentialName is not currently supported"
            )
        if tls.credential_names:
            findings.error(
                f"{path}.tls.credentialNames", "sidecar: credentialNames is not currently supported"
            )
        if tls.tls_certificates:
            findings.error(
                f"{path}.tls.tlsCertificates",
                "sidecar: tls_certificates is not currently supported",
            )
        if (port.protocol or "").lower() not in common.TLS_PROTOCOLS:
            findings.error(f"{path}.tls", "server cannot have TLS settings for non HTTPS/TLS ports")
        check_server_tls(findings, f"{path}.tls", tls)
        if tls.mode in {"ISTIO_MUTUAL", "AUTO_PASSTHROUGH"}:
            findings.error(
                f"{path}.tls.mode",
                f"configuration is invalid: cannot set mode to {tls.mode} in sidecar ingress tls",
            )
    if listener.connection_pool is not None:
        check_connection_pool(findings, f"{path}.connectionPool", listener.connection_pool)
        protocol = (port.protocol or "").lower()
        if listener.connection_pool.http is not None and protocol not in common.HTTP_PROTOCOLS:
            findings.warn(
                f"{path}.connectionPool.http",
                f"sidecar: HTTP connection pool "
                f"settings are configured for port {port.number} but its protocol is "
                "not HTTP; only TCP settings will apply",
            )


def _check_default_endpoint(findings: Findings, path: str, endpoint: str) -> None:
    if endpoint.startswith(UNIX_PREFIX):
        common.check_unix_address(findings, path, endpoint[len(UNIX_PREFIX) :])
        return
    host, colon, port = endpoint.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or host not in _LOCAL_HOSTS:
        findings.error(
            path,
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,"
            "0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset",
        )
    if not (port.isascii() and port.isdigit()) or len(port) > 5:
        findings.error(path, f"sidecar: defaultEndpoint port ({shown(port)}) is not a number")
    else:
        common.check_port(findings, path, int(port))


def _check_egress_port(
    findings: Findings,
    path: str,
    egress: IstioEgressListener,
    ports: set[int],
    sockets: set[str],
) -> None:
    port = egress.port
    assert port is not None
    if port.target_port:
        findings.error(f"{path}.port.targetPort", "targetPort has no impact on Sidecars")
    if port.name:
        common.check_port_name(findings, f"{path}.port.name", port.name)
    common.check_protocol(findings, f"{path}.port.protocol", port.protocol)
    bind = egress.bind or ""
    if not port.number:
        if not bind.startswith(UNIX_PREFIX):
            findings.error(
                f"{path}.bind",
                "sidecar: ports with 0 value must have a unix domain socket bind address",
            )
        else:
            common.check_unix_address(findings, f"{path}.bind", bind[len(UNIX_PREFIX) :])
        if egress.capture_mode not in {None, "DEFAULT", "NONE"}:
            findings.error(
                f"{path}.captureMode",
                "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
            )
        if bind in sockets:
            findings.error(
                f"{path}.bind", "sidecar: unix domain socket values for listeners must be unique"
            )
        sockets.add(bind)
        return
    common.check_port(findings, f"{path}.port.number", port.number)
    if bind and not common.is_ip(bind):
        findings.error(f"{path}.bind", f"{shown(bind)} is not a valid IP address")
    if port.number in ports:
        findings.error(f"{path}.port.number", "sidecar: ports on IP bound listeners must be unique")
    ports.add(port.number)


def _check_egress_hosts(findings: Findings, path: str, egress: IstioEgressListener) -> None:
    if not egress.hosts:
        findings.error(f"{path}.hosts", "sidecar: egress listener must contain at least one host")
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(egress.hosts):
        where = f"{path}.hosts[{index}]"
        namespace, slash, host = entry.partition("/")
        if not slash or not namespace or not host:
            findings.error(where, f"{shown(entry)} must be of form namespace/dnsName")
            continue
        # Istio 1.31: a `~` prefix subtracts (`~ns1/*`, `~/foo.com`) from what the others import.
        bare = namespace[1:] if namespace.startswith("~") else namespace
        if bare not in {".", "*", ""} and not common.is_dns1123_label(bare):
            findings.error(where, f"invalid namespace value {shown(namespace)} in sidecar")
        if host != "*":
            problem = common.wildcard_domain_error(host)
            if problem:
                findings.error(where, problem)
        if (namespace, host) in seen or (namespace, "*") in seen:
            findings.warn(where, f"duplicated egress host: {entry}")
        seen.add((namespace, host))
    imported = {(ns, host) for ns, host in seen if not ns.startswith("~")}
    if ("*", "*") in imported and len(imported) > 1:
        findings.warn(
            f"{path}.hosts", "`*/*` host select all resources, no other hosts can be added"
        )


def _warn_not_applied(findings: Findings, spec: Sidecar) -> None:
    """What mizzen accepts and does not act on yet (its translation reads egress hosts and
    outboundTrafficPolicy.mode): said once per part, never dropped silently."""
    if spec.ingress:
        findings.warn("spec.ingress", "mizzen does not apply Sidecar ingress listeners yet")
    if spec.inbound_connection_pool is not None:
        findings.warn(
            "spec.inboundConnectionPool", "mizzen does not apply inboundConnectionPool yet"
        )
    for index, egress in enumerate(spec.egress):
        if egress.port is not None or egress.bind or egress.capture_mode:
            findings.warn(
                f"spec.egress[{index}]",
                "mizzen does not apply an egress listener's port, bind or captureMode yet: its "
                "hosts are visible on every port",
            )
    policy = spec.outbound_traffic_policy
    if policy is not None and policy.egress_proxy is not None:
        findings.warn(
            "spec.outboundTrafficPolicy.egressProxy", "mizzen does not apply egressProxy yet"
        )
