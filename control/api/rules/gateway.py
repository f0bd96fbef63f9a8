"""Gateway rules (Istio's ValidateGateway, validateServer, validateTLSOptions) and the server TLS
checks a Sidecar's ingress listeners share."""

from __future__ import annotations

from typing import Final

from control.api.errors import shown
from control.api.models.gateway import Gateway, GatewayPort, Server
from control.api.models.sidecar import ServerTLSSettings
from control.api.rules import common
from control.api.rules.context import Findings

UNIX_PREFIX: Final = "unix://"
_PASSTHROUGH: Final = frozenset({None, "PASSTHROUGH", "AUTO_PASSTHROUGH"})


def check(spec: Gateway, findings: Findings) -> None:
    if not spec.servers:
        findings.error("spec.servers", "gateway must have at least one server")
    names: set[str] = set()
    for index, server in enumerate(spec.servers):
        where = f"spec.servers[{index}]"
        _check_server(findings, where, server)
        if server.port is not None:
            name = server.port.name or ""
            if name in names:
                findings.error(
                    f"{where}.port.name",
                    f"port names in servers must be unique: duplicate name {name}",
                )
            names.add(name)
            tls = server.tls
            if tls is not None and tls.https_redirect and not _is_http(server.port):
                findings.warn(
                    f"{where}.tls.httpsRedirect",
                    "tls.httpsRedirect should only be used with http servers",
                )
    findings.warn(
        "spec",
        "mizzen validates Gateways but runs no gateway proxies: this Gateway is not served",
    )


def _is_http(port: GatewayPort) -> bool:
    return (port.protocol or "").lower() in common.HTTP_PROTOCOLS


def _is_tls(port: GatewayPort) -> bool:
    return (port.protocol or "").lower() in common.TLS_PROTOCOLS


def _check_server(findings: Findings, path: str, server: Server) -> None:
    if not server.hosts:
        findings.error(f"{path}.hosts", "server config must contain at least one host")
    for index, host in enumerate(server.hosts):
        _check_gateway_host(findings, f"{path}.hosts[{index}]", host)
    port = server.port
    port_ok = port is not None
    if port is None:
        findings.error(f"{path}.port", "port is required")
    else:
        protocol = port.protocol or ""
        if protocol.lower() not in common.PROTOCOLS:
            port_ok = False
            findings.error(
                f"{path}.port.protocol",
                f"invalid protocol {shown(protocol)}, supported protocols are HTTP, HTTP2, "
                "GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
            )
        if port.number or not (server.bind or "").startswith(UNIX_PREFIX):
            common.check_port(findings, f"{path}.port.number", port.number or 0)
        if port.target_port:
            findings.error(f"{path}.port.targetPort", "targetPort has no impact on Gateways")
        if not port.name:
            port_ok = False
            findings.error(f"{path}.port.name", "port name must be set")
    bind = server.bind or ""
    if bind.startswith(UNIX_PREFIX):
        common.check_unix_address(findings, f"{path}.bind", bind[len(UNIX_PREFIX) :])
        if port is not None and port.number:
            findings.error(f"{path}.bind", "port number must be 0 for unix domain socket")
    elif bind and not common.is_ip(bind):
        findings.error(f"{path}.bind", f"{shown(bind)} is not a valid IP")
    if server.tls is not None:
        check_server_tls(findings, f"{path}.tls", server.tls)
    if port is not None and port_ok:
        tls = server.tls
        if _is_tls(port) and tls is None:
            findings.error(f"{path}.tls", "server must have TLS settings for HTTPS/TLS protocols")
        elif not _is_tls(port) and tls is not None:
            if not _is_http(port):
                findings.error(
                    f"{path}.tls", "server cannot have TLS settings for non HTTPS/TLS ports"
                )
            elif (
                tls.mode not in _PASSTHROUGH
                or tls.ca_certificates
                or tls.private_key
                or tls.server_certificate
            ):
                findings.error(
                    f"{path}.tls", "server cannot have TLS settings for plain text HTTP ports"
                )


def _check_gateway_host(findings: Findings, path: str, entry: str) -> None:
    """Istio's ValidateNamespaceSlashWildcardHostname for gateways: `[namespace/]dnsName`."""
    namespace, slash, host = entry.partition("/")
    if not slash:
        _check_host_part(findings, path, entry)
        return
    if not namespace or not host:
        findings.error(path, "config namespace and dnsName in host entry cannot be empty")
        return
    if namespace not in {"*", "."} and not common.is_dns1123_label(namespace):
        findings.error(path, f"invalid namespace value {shown(namespace)} in gateway")
    _check_host_part(findings, path, host)


def _check_host_part(findings: Findings, path: str, host: str) -> None:
    if host != "*" and "." not in host:
        findings.error(path, "short names (non FQDN) are not allowed")
    problem = common.wildcard_domain_error(host)
    if problem and not common.is_ip(host):
        findings.error(path, problem)
    if "*" in host and host != "*" and not host.startswith("*."):
        findings.error(path, f"partial wildcard {shown(host)} not allowed")


def check_server_tls(findings: Findings, path: str, tls: ServerTLSSettings) -> None:
    """Istio's validateTLSOptions."""
    if tls.min_protocol_version in {"TLSV1_0", "TLSV1_1"} and not tls.cipher_suites:
        findings.warn(
            path,
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they "
            "no longer include compatible ciphers.",
        )
    certificates = tls.server_certificate or tls.private_key or tls.ca_certificates
    if tls.mode == "ISTIO_MUTUAL":
        for field, value, words in (
            ("serverCertificate", tls.server_certificate, "server certificate"),
            ("privateKey", tls.private_key, "private key"),
            ("caCertificates", tls.ca_certificates, "CA bundle"),
            ("tlsCertificates", tls.tls_certificates, "tlsCertificates"),
            ("credentialName", tls.credential_name, "credentialName"),
            ("credentialNames", tls.credential_names, "credentialNames"),
        ):
            if value:
                findings.error(
                    f"{path}.{field}", f"ISTIO_MUTUAL TLS cannot have associated {words}"
                )
        return
    if tls.mode in {"PASSTHROUGH", "AUTO_PASSTHROUGH"} and (
        certificates or tls.ca_crl or tls.tls_certificates or tls.credential_name
        or tls.credential_names
    ):  # fmt: skip
        findings.warn(path, f"{tls.mode} mode does not use certificates, they will be ignored")
    sources = sum((
        bool(tls.server_certificate and tls.private_key), bool(tls.credential_name),
        bool(tls.credential_names), bool(tls.tls_certificates),
    ))  # fmt: skip
    if sources > 1:
        findings.error(
            path,
            "only one of credential_name, credential_names, server_certificate/private_key, "
            "tls_certificates should be specified",
        )
    terminating = tls.mode in {"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"}
    if terminating and (tls.credential_name or tls.credential_names):
        return
    if terminating:
        prefix = "SIMPLE TLS" if tls.mode == "SIMPLE" else "MUTUAL TLS"
        if prefix == "MUTUAL TLS" and not tls.ca_certificates:
            findings.error(f"{path}.caCertificates", f"{prefix} requires a client CA bundle")
        if len(tls.tls_certificates) > 2:
            findings.warn(path, f"{prefix} can support up to 2 server certificates")
        pairs = [(c.server_certificate, c.private_key) for c in tls.tls_certificates] or [
            (tls.server_certificate, tls.private_key)
        ]
        for certificate, key in pairs:
            if not certificate:
                findings.error(path, f"{prefix} requires a server certificate")
            if not key:
                findings.error(path, f"{prefix} requires a private key")
    if tls.ca_crl:
        if tls.credential_name:
            findings.error(
                f"{path}.caCrl",
                "CRL is not supported with credentialName. CRL has to be specified in the "
                "credential",
            )
        if tls.mode == "SIMPLE":
            findings.error(f"{path}.caCrl", "CRL is not supported with SIMPLE TLS")
