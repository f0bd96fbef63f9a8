"""The CA's metrics, registered in the registry the caller passes (the control plane's)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class CaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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
