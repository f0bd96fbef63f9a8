"""Envoy TLS transport sockets, as Istio's sidecars use them: the mesh's mTLS (certificate and
roots over SDS from the agent, `default` and `ROOTCA`) on both sides, and TLS to servers outside
the mesh with files mounted in the proxy (DestinationRule SIMPLE / MUTUAL)."""

from __future__ import annotations

import ipaddress
from typing import Any, Final

# The message types these sockets put in an Any, registered for parsing.
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401

from control.config.sds_names import ROOT_SECRET, WORKLOAD_SECRET, sds_config

_T: Final = "type.googleapis.com/envoy.extensions.transport_sockets."
_DOWNSTREAM: Final = _T + "tls.v3.DownstreamTlsContext"
_UPSTREAM: Final = _T + "tls.v3.UpstreamTlsContext"
TLS_SOCKET: Final = "envoy.transport_sockets.tls"

# What a meshed client offers (each cluster's static list: upstream Envoy has no filter that
# picks `istio-http/*` per request) and what the server's mTLS chain matches on: Istio's values.
MESH_ALPN: Final = ("istio-peer-exchange", "istio", "istio-http/1.0", "istio-http/1.1", "istio-h2")
CLIENT_ALPN_HTTP1: Final = ("istio-http/1.1", "istio", "http/1.1")
CLIENT_ALPN_HTTP2: Final = ("istio-h2", "istio", "h2")
CLIENT_ALPN_TCP: Final = ("istio-peer-exchange", "istio")
# The server's own list (Istio's inbound): HTTP chains speak h2 or HTTP/1.1, TCP chains any.
SERVER_ALPN_HTTP: Final = ("h2", "http/1.1")
SERVER_ALPN_TCP: Final = ("istio-peer-exchange", "h2", "http/1.1")
SYSTEM_ROOTS: Final = "/etc/ssl/certs/ca-certificates.crt"
# A name no certificate carries: the SAN check of a TLS setting mizzen cannot honour, so the
# connection fails (the reason in the access log) instead of going out without it.
REFUSED_SAN: Final = "tls-setting-not-supported.mizzen.invalid"


def _mesh_common(alpn: tuple[str, ...], sans: tuple[str, ...] = ()) -> dict[str, Any]:
    default: dict[str, Any] = {}
    if sans:
        default["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": san}} for san in sans
        ]
    return {
        "alpn_protocols": list(alpn),
        "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
        "tls_certificate_sds_secret_configs": [
            {"name": WORKLOAD_SECRET, "sds_config": sds_config()}
        ],
        "combined_validation_context": {
            "default_validation_context": default,
            "validation_context_sds_secret_config": {
                "name": ROOT_SECRET,
                "sds_config": sds_config(),
            },
        },
    }


def _socket(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"name": TLS_SOCKET, "typed_config": {"@type": kind, **config}}


def inbound_mtls(http: bool) -> dict[str, Any]:
    """The server side: a client certificate is required and must chain to the mesh roots."""
    alpn = SERVER_ALPN_HTTP if http else SERVER_ALPN_TCP
    config = {"require_client_certificate": True, "common_tls_context": _mesh_common(alpn)}
    return _socket(_DOWNSTREAM, config)


def istio_mutual(sni: str, sans: tuple[str, ...], alpn: tuple[str, ...]) -> dict[str, Any]:
    """The client side of mesh mTLS: the workload certificate, the server's SPIFFE ids checked
    (when the destination's service accounts are known; the chain to the roots always)."""
    return _socket(_UPSTREAM, {"sni": sni, "common_tls_context": _mesh_common(alpn, sans)})


def san_matcher(name: str) -> dict[str, Any]:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        kind = "URI" if "://" in name else "DNS"
        return {"san_type": kind, "matcher": {"exact": name}}
    return {"san_type": "IP_ADDRESS", "matcher": {"exact": name}}


def file_tls(
    *,
    sni: str | None,
    ca_file: str | None,
    sans: tuple[str, ...],
    skip_verify: bool,
    cert_file: str | None = None,
    key_file: str | None = None,
    crl_file: str | None = None,
    alpn: tuple[str, ...] = (),
) -> dict[str, Any]:
    """SIMPLE (and MUTUAL, with the client's certificate and key): files in the proxy. Without
    `caCertificates` the server is verified against the system roots, as Istio does."""
    common: dict[str, Any] = {}
    if alpn:
        common["alpn_protocols"] = list(alpn)
    if not skip_verify:
        validation: dict[str, Any] = {"trusted_ca": {"filename": ca_file or SYSTEM_ROOTS}}
        if sans:
            validation["match_typed_subject_alt_names"] = [san_matcher(s) for s in sans]
        if crl_file:
            validation["crl"] = {"filename": crl_file}
        common["validation_context"] = validation
    if cert_file and key_file:
        common["tls_certificates"] = [
            {"certificate_chain": {"filename": cert_file}, "private_key": {"filename": key_file}}
        ]
    config: dict[str, Any] = {"common_tls_context": common}
    if sni:
        config["sni"] = sni
    return _socket(_UPSTREAM, config)


def refusing_tls() -> dict[str, Any]:
    """TLS whose server check no certificate passes: for a setting that cannot be honoured
    (never a silent fallback to something weaker)."""
    return file_tls(sni=None, ca_file=None, sans=(REFUSED_SAN,), skip_verify=False)


def raw_buffer() -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.raw_buffer",
        "typed_config": {"@type": _T + "raw_buffer.v3.RawBuffer"},
    }
