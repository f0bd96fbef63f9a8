"""The control plane's Prometheus metrics, in a registry of its own (several control planes
can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pushes = Counter("mizzen_xds_pushes", "xDS responses sent", ["type"], registry=r)
        self.nacks = Counter(
            "mizzen_xds_nacks", "xDS responses a proxy rejected", ["type"], registry=r
        )
        self.connected = Gauge("mizzen_xds_connected_proxies", "Open ADS streams", registry=r)
        self.convergence = Histogram(
            "mizzen_xds_convergence_seconds",
            "From a config change (or a proxy connecting) to the proxy's ACK of the result",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30),
            registry=r,
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
        self.config_updates = Counter(
            "mizzen_config_updates", "Debounced mesh-state updates applied", registry=r
        )
        self.source_errors = Counter(
            "mizzen_config_source_errors",
            "Config the source could not read (the last good config was kept), by reason",
            ["reason"],
            registry=r,
        )
        self.invalid_documents = Gauge(
            "mizzen_config_invalid_documents", "Documents skipped as invalid", registry=r
        )
