"""Sidecar (networking.istio.io): narrows what a workload's proxy sees and accepts."""

from __future__ import annotations

from typing import Literal

from control.api.models.base import ApiModel, Bool, Str, UInt, WorkloadSelector
from control.api.models.destination_rule import ConnectionPoolSettings
from control.api.models.virtual_service import Destination

CaptureMode = Literal["DEFAULT", "IPTABLES", "NONE"]


class SidecarPort(ApiModel):
    number: UInt | None = None
    protocol: Str | None = None
    name: Str | None = None
    target_port: UInt | None = None


TLSVersion = Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]


class TLSCertificate(ApiModel):
    """One certificate of several a server can present (RSA and ECDSA, say)."""

    server_certificate: Str | None = None
    private_key: Str | None = None
    ca_certificates: Str | None = None


class ServerTLSSettings(ApiModel):
    """Terminates TLS on a port (Istio's ServerTLSSettings: Gateway servers, Sidecar ingress)."""

    https_redirect: Bool | None = None
    mode: Literal["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL",
                  "OPTIONAL_MUTUAL"] | None = None  # fmt: skip
    server_certificate: Str | None = None
    private_key: Str | None = None
    ca_certificates: Str | None = None
    ca_crl: Str | None = None
    credential_name: Str | None = None
    credential_names: tuple[Str, ...] = ()
    ca_cert_credential_name: Str | None = None
    tls_certificates: tuple[TLSCertificate, ...] = ()
    subject_alt_names: tuple[Str, ...] = ()
    verify_certificate_spki: tuple[Str, ...] = ()
    verify_certificate_hash: tuple[Str, ...] = ()
    min_protocol_version: TLSVersion | None = None
    max_protocol_version: TLSVersion | None = None
    cipher_suites: tuple[Str, ...] = ()


class IstioIngressListener(ApiModel):
    port: SidecarPort | None = None
    bind: Str | None = None
    capture_mode: CaptureMode | None = None
    default_endpoint: Str | None = None
    tls: ServerTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None


class IstioEgressListener(ApiModel):
    port: SidecarPort | None = None
    bind: Str | None = None
    capture_mode: CaptureMode | None = None
    hosts: tuple[Str, ...] = ()


class OutboundTrafficPolicy(ApiModel):
    mode: Literal["REGISTRY_ONLY", "ALLOW_ANY"] | None = None
    egress_proxy: Destination | None = None


class Sidecar(ApiModel):
    """The spec of a Sidecar."""

    workload_selector: WorkloadSelector | None = None
    ingress: tuple[IstioIngressListener, ...] = ()
    egress: tuple[IstioEgressListener, ...] = ()
    inbound_connection_pool: ConnectionPoolSettings | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
