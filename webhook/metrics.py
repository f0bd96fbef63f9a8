"""The webhook's Prometheus metrics, in a registry of its own (one per app, so tests and a
process serving several apps never share counters)."""

from __future__ import annotations

from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

# Starting at 1 ms: the webhook answers in milliseconds, and must be seen doing so.
LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# Request outcomes.
ALLOWED: Final = "allowed"
DENIED: Final = "denied"
REJECTED: Final = "rejected"  # not a usable AdmissionReview: answered with an HTTP 4xx
ERROR: Final = "error"  # a bug: answered allowed: false


class WebhookMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "mizzen_webhook_requests",
            "Admission reviews received, by route and outcome.",
            ["route", "outcome"],
            registry=self.registry,
        )
        self._decisions = Counter(
            "mizzen_webhook_injection_decisions",
            "Sidecar injection decisions: injected, a skip reason, invalid, error.",
            ["decision"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "mizzen_webhook_request_duration_seconds",
            "Time to answer an admission review, from its arrival to its answer.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The labelled children, looked up once: `labels()` validates and locks on every call,
        # which was a fifth of what a review's bookkeeping cost. The label values are the
        # program's own (two routes, four outcomes, the decisions), so these stay small.
        self._request_children: dict[tuple[str, str], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        self._decision_children: dict[str, Counter] = {}

    def observe(self, route: str, outcome: str, seconds: float, decision: str = "") -> None:
        requests = self._request_children.get((route, outcome))
        if requests is None:
            requests = self._requests.labels(route=route, outcome=outcome)
            self._request_children[route, outcome] = requests
        requests.inc()
        latency = self._latency_children.get(route)
        if latency is None:
            latency = self._latency_children[route] = self._latency.labels(route=route)
        latency.observe(seconds)
        if decision:
            decisions = self._decision_children.get(decision)
            if decisions is None:
                decisions = self._decision_children[decision] = self._decisions.labels(decision)
            decisions.inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
