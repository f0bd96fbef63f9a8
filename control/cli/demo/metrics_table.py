"""`mizzen demo`'s last words: Istio's `istio_requests_total` as the sidecars counted it,
scraped from each one's merged `:15020/stats/prometheus`, as a small table."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families

from control.cli.demo.mesh import PodHandle, run_in

_FETCH = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
)
Row = tuple[str, str, str, str]  # reporter, source, destination, code


def requests_by_peer(expositions: Iterable[str]) -> Counter[Row]:
    counts: Counter[Row] = Counter()
    for text in expositions:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name != "istio_requests_total":
                    continue
                names = ("reporter", "source_workload", "destination_workload", "response_code")
                reporter, source, destination, code = (sample.labels.get(n, "?") for n in names)
                counts[(reporter, source, destination, code)] += int(sample.value)
    return counts


def format_table(counts: Counter[Row]) -> str:
    header: Row = ("reporter", "source", "destination", "code")
    rows = [(*row, str(n)) for row, n in sorted(counts.items())]
    table = [(*header, "requests"), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    return "\n".join("    " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in table)  # fmt: skip


def scrape_table(host: PodHandle, pods: Iterable[PodHandle]) -> str:
    """From the bridge's namespace (which reaches every pod), each sidecar's exposition."""
    texts = [
        run_in(host, [sys.executable, "-c", _FETCH, f"http://{pod.ip}:15020/stats/prometheus"])
        for pod in pods
    ]
    return format_table(requests_by_peer(texts))
