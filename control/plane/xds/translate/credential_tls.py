"""DestinationRule `credentialName` (SIMPLE / MUTUAL to a server outside the mesh): the
client's certificate and the server's roots come from a Kubernetes Secret, which the control
plane reads and sends to the proxy as SDS resources over its ADS stream (never files in the
proxy), named as Istio names them: `kubernetes://<name>` (certificate and key) and
`kubernetes://<name>-cacert` (the roots).

Which proxies get a Secret is decided by who may use it, as Istio does for sidecars: only a
DestinationRule with a `workloadSelector` applies a `credentialName` to a sidecar, such a rule
applies only to the workloads it selects in its own namespace, and the Secret is read from
that namespace. So a proxy only ever receives Secrets of its own namespace.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any, Final

from control.plane.model.credentials import CA_SUFFIX, Credential
from control.plane.xds.translate.tls_sockets import SYSTEM_ROOTS, TLS_SOCKET, san_matcher

SDS_PREFIX: Final = "kubernetes://"
_UPSTREAM: Final = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
)
# The proxy's ADS stream carries the Secrets: no other connection, no file in the proxy.
ADS_SDS: Final = {"ads": {}, "resource_api_version": "V3"}


def cert_resource(name: str) -> str:
    return f"{SDS_PREFIX}{name}"


def ca_resource(name: str) -> str:
    return f"{SDS_PREFIX}{name}{CA_SUFFIX}"


def credential_tls(
    credential: Credential,
    *,
    mutual: bool,
    sni: str | None,
    sans: tuple[str, ...],
    skip_verify: bool,
    alpn: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The upstream TLS socket: MUTUAL presents the Secret's certificate; the server is checked
    against the Secret's roots (the system roots when it has none, as without
    `caCertificates`) and the rule's `subjectAltNames`, unless `insecureSkipVerify`."""
    common: dict[str, Any] = {}
    if alpn:
        common["alpn_protocols"] = list(alpn)
    if mutual:
        common["tls_certificate_sds_secret_configs"] = [
            {"name": cert_resource(credential.name), "sds_config": dict(ADS_SDS)}
        ]
    if not skip_verify:
        default: dict[str, Any] = {}
        if sans:
            default["match_typed_subject_alt_names"] = [san_matcher(s) for s in sans]
        if credential.ca is not None:
            common["combined_validation_context"] = {
                "default_validation_context": default,
                "validation_context_sds_secret_config": {
                    "name": ca_resource(credential.name),
                    "sds_config": dict(ADS_SDS),
                },
            }
        else:
            common["validation_context"] = {"trusted_ca": {"filename": SYSTEM_ROOTS}, **default}
    config: dict[str, Any] = {"@type": _UPSTREAM, "common_tls_context": common}
    if sni:
        config["sni"] = sni
    return {"name": TLS_SOCKET, "typed_config": config}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret_resources(
    certs: Iterable[str],
    cas: Iterable[str],
    credentials: Mapping[tuple[str, str], Credential],
    namespace: str,
) -> list[dict[str, Any]]:
    """The Secret resources for the credential names whose certificate (`certs`) and roots
    (`cas`) the clusters ask for, from the credentials of `namespace` only: another namespace's
    Secret cannot be produced here."""
    out: list[dict[str, Any]] = []
    for name in sorted(set(certs)):
        credential = credentials.get((namespace, name))
        if credential is not None and credential.cert is not None and credential.key is not None:
            out.append({
                "name": cert_resource(name),
                "tls_certificate": {
                    "certificate_chain": {"inline_bytes": _b64(credential.cert)},
                    "private_key": {"inline_bytes": _b64(credential.key)},
                },
            })  # fmt: skip
    for name in sorted(set(cas)):
        credential = credentials.get((namespace, name))
        if credential is not None and credential.ca is not None:
            out.append({
                "name": ca_resource(name),
                "validation_context": {"trusted_ca": {"inline_bytes": _b64(credential.ca)}},
            })  # fmt: skip
    return out


def requested(clusters: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(credential names whose certificate, whose roots) the clusters' TLS sockets ask the
    ADS stream for."""
    certs: set[str] = set()
    cas: set[str] = set()
    for cluster in clusters:
        socket = cluster.get("transport_socket") or {}
        common = (socket.get("typed_config") or {}).get("common_tls_context") or {}
        for config in common.get("tls_certificate_sds_secret_configs", ()):
            if config.get("sds_config") == ADS_SDS:
                certs.add(config["name"].removeprefix(SDS_PREFIX))
        combined = common.get("combined_validation_context") or {}
        validation = combined.get("validation_context_sds_secret_config") or {}
        if validation.get("sds_config") == ADS_SDS:
            cas.add(validation["name"].removeprefix(SDS_PREFIX).removesuffix(CA_SUFFIX))
    return certs, cas
