"""A workload's identity for Istio's standard metrics, as one compact string.

The same string travels three ways: in EDS endpoint metadata (the client learns its
destination), in the `x-mizzen-peer` header the client sidecar puts on requests to mesh services
(the server learns its source), and in Envoy's environment (`MIZZEN_PEER`, which that header is
made from). Eight fields joined by `;` (Istio's `istio.workload` endpoint metadata does the same
with five): workload, namespace, app, version, canonical service, canonical revision, cluster,
service account. The service account is no label: it lets a server check a claimed peer
against the principal of the peer certificate (`spiffe://<td>/ns/<namespace>/sa/<account>`),
as Istio's peer metadata carries the workload's identity. Kubernetes names and label values
cannot hold `;`, so splitting is unambiguous; a value that does not split into eight is not a
peer and reads as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# The contract between translation (which writes them into Envoy's config) and the agent
# (which sets the environment and reads the series).
PEER_HEADER: Final = "x-mizzen-peer"  # the client sidecar's identity, on requests to mesh services
PEER_ENV: Final = "MIZZEN_PEER"  # Envoy's environment: this proxy's own compact identity
OTEL_ENV: Final = "OTEL_RESOURCE_ATTRIBUTES"  # Envoy's environment: the tracer's resource
METADATA_NAMESPACE: Final = "mizzen"  # endpoint, cluster and dynamic metadata
PEER_KEY: Final = "peer"
SERVICE_KEY: Final = "service"
STAT_PREFIX: Final = "istio"  # the stats logger's scope: Envoy exports `envoy_istio_*`

UNKNOWN: Final = "unknown"
LATEST: Final = "latest"
PEER_FIELDS: Final = 8
CLUSTER_ID: Final = "Kubernetes"
CANONICAL_NAME_LABEL: Final = "service.istio.io/canonical-name"
CANONICAL_REVISION_LABEL: Final = "service.istio.io/canonical-revision"
# Longest field kept: a label value is at most 63 characters, a workload name 253.
_MAX_FIELD: Final = 253
# Longest compact identity: eight longest fields and their seven separators.
MAX_PEER_LENGTH: Final = PEER_FIELDS * (_MAX_FIELD + 1) - 1
# The characters a compact identity is made of (fields and separators), as a regex class.
PEER_ALPHABET: Final = "-A-Za-z0-9_.;"
_FIELD_RE: Final = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class Peer:
    """One workload as the standard metrics name it; `unknown` where nothing is known."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = LATEST  # Istio's value when the revision is not known
    cluster: str = UNKNOWN
    account: str = UNKNOWN  # the service account: checked against a certificate, never a label

    def encode(self) -> str:
        return ";".join(
            (self.workload, self.namespace, self.app, self.version,
             self.canonical_service, self.canonical_revision, self.cluster, self.account)
        )  # fmt: skip

    @classmethod
    def decode(cls, text: str) -> Peer:
        """The peer a compact string names; anything malformed is the unknown peer."""
        if not text or len(text) > MAX_PEER_LENGTH:
            return UNKNOWN_PEER
        fields = text.split(";")
        if len(fields) != PEER_FIELDS or not all(_FIELD_RE.fullmatch(f) for f in fields):
            return UNKNOWN_PEER
        return cls(*fields)


UNKNOWN_PEER: Final = Peer()


def _value(text: str | None) -> str | None:
    """A usable field: a label-like value (no `;`, no spaces), else None."""
    if not text or len(text) > _MAX_FIELD or not _FIELD_RE.fullmatch(text):
        return None
    return text


def workload_peer(
    workload: str,
    namespace: str,
    labels: Mapping[str, str],
    cluster: str = CLUSTER_ID,
    account: str = "",
) -> Peer:
    """Istio's rules: app and version from the `app`/`version` labels (else the recommended
    `app.kubernetes.io/*` ones); the canonical service from its label, else the app, else the
    workload; the canonical revision from its label, else the version, else `latest`."""
    app = _value(labels.get("app")) or _value(labels.get("app.kubernetes.io/name"))
    version = _value(labels.get("version")) or _value(labels.get("app.kubernetes.io/version"))
    name = _value(workload)
    canonical = _value(labels.get(CANONICAL_NAME_LABEL)) or app or name
    revision = _value(labels.get(CANONICAL_REVISION_LABEL)) or version or LATEST
    return Peer(
        workload=name or UNKNOWN,
        namespace=_value(namespace) or UNKNOWN,
        app=app or UNKNOWN,
        version=version or UNKNOWN,
        canonical_service=canonical or UNKNOWN,
        canonical_revision=revision,
        cluster=_value(cluster) or UNKNOWN,
        account=_value(account) or UNKNOWN,
    )


def spiffe_workload(principal: str) -> tuple[str, str] | None:
    """(namespace, service account) of `spiffe://<trust domain>/ns/<namespace>/sa/<account>`,
    else None (any trust domain: aliases name the same workloads)."""
    parts = principal.split("/")
    if len(parts) == 7 and parts[0] == "spiffe:" and parts[3] == "ns" and parts[5] == "sa":
        namespace, account = _value(parts[4]), _value(parts[6])
        if namespace and account:
            return namespace, account
    return None


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """A destination service as Istio's labels name it: its host (FQDN), name and namespace.
    Travels in cluster metadata as `host;name;namespace`."""

    host: str = UNKNOWN
    name: str = UNKNOWN
    namespace: str = UNKNOWN

    def encode(self) -> str:
        return f"{self.host};{self.name};{self.namespace}"

    @classmethod
    def decode(cls, text: str) -> ServiceRef:
        fields = text.split(";") if text and len(text) <= 3 * (_MAX_FIELD + 1) else []
        if len(fields) != 3 or not all(_FIELD_RE.fullmatch(f) for f in fields):
            return UNKNOWN_SERVICE
        return cls(*fields)


UNKNOWN_SERVICE: Final = ServiceRef()
