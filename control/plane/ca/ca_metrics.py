"""The CA's metrics, registered in the registry the caller passes (the control plane's), and
optionally mirrored into Istio's Citadel counters (`citadel_server_*`, kept by the control
plane's `Metrics`), so Istio's control-plane dashboard shows the certificates mizzen signs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

from control.plane.ca.refusals import AUTHENTICATION_REASONS, Reason


class Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


@dataclass(frozen=True, slots=True)
class CitadelCounters:
    """Istio's names: `citadel_server_csr_count` (every CSR received),
    `citadel_server_success_cert_issuance_count`, `citadel_server_authentication_failure_count`
    (the caller could not be authenticated) and `citadel_server_csr_sign_err_count` (any other
    refusal)."""

    csr_requests: Incrementable
    issued: Incrementable
    authentication_failures: Incrementable
    sign_errors: Incrementable


class CaMetrics:
    def __init__(self, registry: CollectorRegistry, citadel: CitadelCounters | None = None) -> None:
        self.citadel = citadel
        self.issued = Counter(
            "mizzen_ca_certificates_issued", "Workload certificates signed", registry=registry
        )
        self.refused = Counter(
            "mizzen_ca_requests_refused",
            "CreateCertificate calls refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.signing_seconds = Histogram(
            "mizzen_ca_signing_seconds",
            "Time to check a CSR and sign it (off the event loop, queueing excluded)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "mizzen_ca_request_seconds",
            "CreateCertificate from arrival to answer (authentication and queueing included)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=registry,
        )

    def received(self) -> None:
        if self.citadel is not None:
            self.citadel.csr_requests.inc()

    def count_issued(self) -> None:
        self.issued.inc()
        if self.citadel is not None:
            self.citadel.issued.inc()

    def count_refused(self, reason: Reason) -> None:
        self.refused.labels(reason=reason.value).inc()
        if self.citadel is not None:
            if reason in AUTHENTICATION_REASONS:
                self.citadel.authentication_failures.inc()
            else:
                self.citadel.sign_errors.inc()
