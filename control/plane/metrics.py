"""The control plane's Prometheus metrics, in a registry of its own (several control planes
can live in one test process). Where the meaning matches, each is also kept under Istio's name
(`pilot_*`, `citadel_*`), so Istio's control-plane dashboards and alerts work unchanged."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

XDS_TYPES = ("cds", "eds", "lds", "rds")


class IstioCounter(Collector):
    """A counter under Istio's exact name: Istio's exporter writes `pilot_xds_pushes`, not
    `pilot_xds_pushes_total` as prometheus_client's counters would, and Istio's dashboards
    query that name. Exposed untyped (the text format's TYPE line must match the samples)."""

    def __init__(
        self, name: str, documentation: str, labelnames: tuple[str, ...] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:  # fmt: skip
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self._values: dict[tuple[str, ...], float] = {} if labelnames else {(): 0.0}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> _Child:
        with self._lock:
            self._values.setdefault(values, 0.0)
        return _Child(self, values)

    def inc(self, amount: float = 1, key: tuple[str, ...] = ()) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.documentation, "unknown")
        with self._lock:
            for key, value in sorted(self._values.items()):
                metric.add_sample(self.name, dict(zip(self.labelnames, key, strict=True)), value)
        yield metric


class _Child:
    def __init__(self, parent: IstioCounter, key: tuple[str, ...]) -> None:
        self.parent = parent
        self.key = key

    def inc(self, amount: float = 1) -> None:
        self.parent.inc(amount, self.key)


class Twin:
    """One measurement under two names (mizzen's and Istio's): every update goes to both."""

    def __init__(self, *metrics: Any) -> None:
        self.metrics = metrics
        # The children by label values, as the metrics themselves hold them (as many): a
        # push counts every response, and making the two children each time was a visible
        # part of a connect storm.
        self._children: dict[tuple[str, ...], Twin] = {}

    def labels(self, *values: str) -> Twin:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = Twin(*(m.labels(*values) for m in self.metrics))
        return child

    def inc(self, amount: float = 1) -> None:
        for metric in self.metrics:
            metric.inc(amount)

    def dec(self, amount: float = 1) -> None:
        for metric in self.metrics:
            metric.dec(amount)

    def set(self, value: float) -> None:
        for metric in self.metrics:
            metric.set(value)

    def observe(self, value: float) -> None:
        for metric in self.metrics:
            metric.observe(value)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pushes = Twin(
            Counter("mizzen_xds_pushes", "xDS responses sent", ["type"], registry=r),
            IstioCounter("pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds "
                         "and eds.", ("type",), registry=r),
        )  # fmt: skip
        self.nacks = Twin(
            Counter("mizzen_xds_nacks", "xDS responses a proxy rejected", ["type"], registry=r),
            IstioCounter("pilot_total_xds_rejects", "Total number of XDS responses from pilot "
                         "rejected by proxy.", ("type",), registry=r),
        )  # fmt: skip
        for kind in XDS_TYPES:  # every type's series exists from the start (at 0)
            self.pushes.labels(kind)
            self.nacks.labels(kind)
        self.connected = Twin(
            Gauge("mizzen_xds_connected_proxies", "Open ADS streams", registry=r),
            Gauge("pilot_xds", "Number of endpoints connected to this pilot using XDS",
                  registry=r),
        )  # fmt: skip
        self.convergence = Twin(
            Histogram(
                "mizzen_xds_convergence_seconds",
                "From a config change (or a proxy connecting) to the proxy's ACK of the result",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30),
                registry=r,
            ),
            Histogram(
                "pilot_proxy_convergence_time",
                "Delay in seconds between config change and a proxy receiving all required "
                "configuration.",
                buckets=(0.1, 0.5, 1, 3, 5, 10, 20, 30),
                registry=r,
            ),
        )
        self.inconsistent = Counter(
            "mizzen_xds_inconsistent_snapshots",
            "Translations refused by the consistency check (the previous snapshot was kept)",
            registry=r,
        )
        self.translation_errors = Counter(
            "mizzen_xds_translation_errors", "Translations that raised", registry=r
        )
        self.translations = Counter(
            "mizzen_xds_translations",
            "Translations computed (one per set of proxies sharing inputs, not per proxy)",
            registry=r,
        )
        self.push_proxies = Histogram(
            "mizzen_xds_push_proxies",
            "Proxies given a new snapshot by one push (push scoping keeps this small)",
            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.slow_sends = Counter(
            "mizzen_xds_slow_sends",
            "Responses a proxy did not take within the send timeout (its stream went on alone)",
            registry=r,
        )
        self.refused_streams = Counter(
            "mizzen_xds_refused_streams",
            "ADS streams closed with RESOURCE_EXHAUSTED (too many requests or resource names)",
            registry=r,
        )
        self.identity_refused = Counter(
            "mizzen_xds_identity_refused",
            "ADS streams refused on the secure port: the node claimed another namespace or "
            "service account than its client certificate's SPIFFE id (PERMISSION_DENIED)",
            registry=r,
        )
        self.config_updates = Counter(
            "mizzen_config_updates", "Debounced mesh-state updates applied", registry=r
        )
        self.source_errors = Counter(
            "mizzen_config_source_errors",
            "Config the source could not read (the last good config was kept), by reason",
            ["reason"],
            registry=r,
        )
        self.invalid_documents = Twin(
            Gauge("mizzen_config_invalid_documents", "Documents skipped as invalid", registry=r),
            Gauge("pilot_total_rejected_configs_current", "Configs Pilot currently rejects "
                  "(invalid documents)", registry=r),
        )  # fmt: skip
        # The CA increments these (Istio's Citadel names, `CaMetrics`); without a CA (no
        # --ca-dir) they stay at 0, so the dashboard's certificate panels have their series.
        self.csr_requests = IstioCounter(
            "citadel_server_csr_count", "The number of CSRs received by Citadel server.",
            registry=r,
        )  # fmt: skip
        self.certs_issued = IstioCounter(
            "citadel_server_success_cert_issuance_count",
            "The number of certificates issuances that have succeeded.", registry=r,
        )  # fmt: skip
        self.csr_refused = IstioCounter(
            "citadel_server_csr_sign_err_count", "The number of errors occurred when signing "
            "the CSR.", registry=r,
        )  # fmt: skip
        self.csr_authentication_failures = IstioCounter(
            "citadel_server_authentication_failure_count",
            "The number of authentication failures.", registry=r,
        )  # fmt: skip
