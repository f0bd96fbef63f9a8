"""A client's TLS to each outbound cluster, as Istio decides it:

- a DestinationRule's `tls` (top level, port level, subset and its port level; the most specific
  one wins): ISTIO_MUTUAL (the workload certificate over SDS, SNI `outbound_.<port>_.<subset>_.
  <host>`, the server's SPIFFE ids checked: the destination's service accounts, or the rule's
  `subjectAltNames`), SIMPLE / MUTUAL (files mounted in the proxy), DISABLE (plaintext);
- no `tls` and auto-mTLS on (MeshConfig `enableAutoMtls`, default true): per endpoint, mTLS to
  the endpoints whose pod carries `security.istio.io/tlsMode: istio` and whose PeerAuthentication
  is not DISABLE, plaintext to the others (Envoy's `transport_socket_matches` on the endpoint
  metadata `envoy.transport_socket_match`). Not for ORIGINAL_DST or DNS clusters.

SIMPLE / MUTUAL with `credentialName` take the certificate and roots from a Secret over SDS on
the ADS stream (`credential_tls`), when the rule has a `workloadSelector` and the Secret was
read and is valid. A setting that cannot be honoured (`credentialName` otherwise, MUTUAL without
its files, ISTIO_MUTUAL from a proxy without a workload certificate) fails closed: TLS no server
passes (`refusing_tls`), and the DestinationRule's warning says why. Never a silent fallback
to plaintext.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from control.api.models.destination_rule import ClientTLSSettings, DestinationRule
from control.api.registry import MeshResource
from control.plane.model.credentials import Credential
from control.plane.xds.translate.credential_tls import credential_tls
from control.plane.xds.translate.peer_authn import MtlsMode, PeerAuthnIndex
from control.plane.xds.translate.port_protocol import Protocol
from control.plane.xds.translate.service_registry import (
    HostEndpoint,
    HostPort,
    Resolution,
    ServiceHost,
)
from control.plane.xds.translate.tls_sockets import (
    CLIENT_ALPN_HTTP1,
    CLIENT_ALPN_HTTP2,
    CLIENT_ALPN_TCP,
    file_tls,
    istio_mutual,
    raw_buffer,
    refusing_tls,
)

TLS_MODE_LABEL: Final = "security.istio.io/tlsMode"  # set by the injector (Istio's label)
MATCH_NAMESPACE: Final = "envoy.transport_socket_match"
ISTIO_MATCH: Final = {"tlsMode": "istio"}


def sni(port: int, subset: str, hostname: str) -> str:
    """Istio's SNI for mesh mTLS (the DNS SRV form of the cluster name)."""
    return f"outbound_.{port}_.{subset}_.{hostname}"


def client_alpn(protocol: Protocol) -> tuple[str, ...]:
    if protocol.is_http2:
        return CLIENT_ALPN_HTTP2
    return CLIENT_ALPN_HTTP1 if protocol.is_http else CLIENT_ALPN_TCP


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a client's TLS depends on besides the rule: whether it holds a workload certificate,
    the mesh's auto-mTLS switch and trust domain, the destinations' PeerAuthentications."""

    sds: bool = False
    auto_mtls: bool = True
    trust_domain: str = "cluster.local"
    peers: PeerAuthnIndex | None = None
    # (namespace, Secret name) -> the valid credentials (DestinationRule credentialName)
    credentials: Mapping[tuple[str, str], Credential] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def endpoint_accepts_mtls(self, endpoint: HostEndpoint, namespace: str) -> bool:
        """The pod is meshed (the injector's label) and its port is not DISABLE."""
        if endpoint.labels.get(TLS_MODE_LABEL) != "istio":
            return False
        if self.peers is None:
            return True
        peer = self.peers.resolve(endpoint.namespace or namespace, endpoint.labels)
        return peer.for_port(endpoint.port) is not MtlsMode.DISABLE

    def spiffe_ids(self, endpoints: Iterable[HostEndpoint], namespace: str) -> tuple[str, ...]:
        accounts = {(e.namespace or namespace, e.service_account) for e in endpoints}
        return tuple(
            sorted(f"spiffe://{self.trust_domain}/ns/{ns}/sa/{sa}" for ns, sa in accounts if sa)
        )

    def cluster_fields(
        self,
        tls: ClientTLSSettings | None,
        host: ServiceHost,
        port: HostPort,
        subset: str,
        rule: MeshResource[DestinationRule] | None = None,
    ) -> dict[str, Any]:
        """The cluster's `transport_socket` or `transport_socket_matches` ({}: plaintext);
        `rule`: the DestinationRule `tls` comes from."""
        mode = tls.mode if tls is not None else None
        if tls is None or mode is None:
            return self._auto(host, port, subset)
        if mode == "DISABLE":
            return {}
        if mode == "ISTIO_MUTUAL":
            if not self.sds:
                return {"transport_socket": refusing_tls()}
            sans = tls.subject_alt_names or self.spiffe_ids(port.endpoints, host.namespace)
            server_name = tls.sni or sni(port.number, subset, host.hostname)
            return {"transport_socket": istio_mutual(server_name, sans, client_alpn(port.protocol))}
        if tls.credential_name:
            return {"transport_socket": self._credential_tls(tls, host, port, rule)}
        return {"transport_socket": _file_tls(tls, host, port)}

    def _credential_tls(
        self,
        tls: ClientTLSSettings,
        host: ServiceHost,
        port: HostPort,
        rule: MeshResource[DestinationRule] | None,
    ) -> dict[str, Any]:
        """From the Secret in the rule's namespace, only for a rule with a workloadSelector
        (it then applies only to the proxies of its namespace it selects); else, or without a
        valid Secret, refused (the config problems say why)."""
        assert tls.credential_name is not None
        if rule is None or rule.spec.workload_selector is None:
            return refusing_tls()
        credential = self.credentials.get((rule.namespace or "default", tls.credential_name))
        mutual = tls.mode == "MUTUAL"
        if credential is None or (mutual and not credential.key_pair):
            return refusing_tls()
        hostname = None if host.hostname.startswith("*") else host.hostname
        return credential_tls(
            credential,
            mutual=mutual,
            sni=tls.sni or hostname,
            sans=tls.subject_alt_names,
            skip_verify=bool(tls.insecure_skip_verify),
            alpn=("h2",) if port.protocol.is_http2 else (),
        )

    def _auto(self, host: ServiceHost, port: HostPort, subset: str) -> dict[str, Any]:
        if not (self.sds and self.auto_mtls) or host.resolution is not Resolution.EDS:
            return {}
        if not any(self.endpoint_accepts_mtls(e, host.namespace) for e in port.endpoints):
            return {}
        sans = self.spiffe_ids(port.endpoints, host.namespace)
        mtls = istio_mutual(
            sni(port.number, subset, host.hostname), sans, client_alpn(port.protocol)
        )
        return {
            "transport_socket_matches": [
                {"name": "tlsMode-istio", "match": dict(ISTIO_MATCH), "transport_socket": mtls},
                {"name": "tlsMode-disabled", "match": {}, "transport_socket": raw_buffer()},
            ]
        }


def _file_tls(tls: ClientTLSSettings, host: ServiceHost, port: HostPort) -> dict[str, Any]:
    mutual = tls.mode == "MUTUAL"
    if mutual and not (tls.client_certificate and tls.private_key):
        return refusing_tls()
    hostname = None if host.hostname.startswith("*") else host.hostname
    return file_tls(
        sni=tls.sni or hostname,
        ca_file=tls.ca_certificates,
        sans=tls.subject_alt_names,
        skip_verify=bool(tls.insecure_skip_verify),
        cert_file=tls.client_certificate if mutual else None,
        key_file=tls.private_key if mutual else None,
        crl_file=tls.ca_crl,
        alpn=("h2",) if port.protocol.is_http2 else (),
    )


def endpoint_tls_metadata(accepts: bool) -> dict[str, Any] | None:
    """EDS metadata `transport_socket_matches` select on."""
    return {"filter_metadata": {MATCH_NAMESPACE: dict(ISTIO_MATCH)}} if accepts else None
