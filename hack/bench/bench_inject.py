"""Benchmark of `injector.inject`: a typical pod and a ~3 MiB pod with 1 MiB of managedFields.

Prints, per pod, the median and p99 of one injection (the webhook's work: `inject` and the JSON of
its patch) and the ratio to the floor measured in the same run: `json.loads` + `json.dumps` of the
same pod, which any webhook pays to read the request and write a response at all.
A "no patch" row times `inject(..., with_patch=False)` in the same run, so the diff's share shows.
Targets (issue 2): typical pod <= 1 ms, 3 MiB pod <= 100 ms; (issue 3) typical pod <= 0.2 ms.

    .venv/bin/python hack/bench/bench_inject.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from injector import InjectionConfig, InjectionContext, inject


def typical_pod() -> dict[str, Any]:
    """Two containers with probes, ten annotations: a pod as the API server sends it."""
    annotations = {
        "traffic.sidecar.istio.io/excludeOutboundPorts": "5432, 6379",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "169.254.169.254/32",
        "traffic.sidecar.istio.io/includeInboundPorts": "8080,9090",
        "sidecar.istio.io/proxyCPU": "200m",
        "sidecar.istio.io/proxyMemory": "256Mi",
        "sidecar.istio.io/proxyCPULimit": "1",
        "sidecar.istio.io/proxyMemoryLimit": "512Mi",
        "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
    }
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "checkout-7c9f8d6b5-",
            "namespace": "shop",
            "labels": {"app": "checkout", "version": "v3", "pod-template-hash": "7c9f8d6b5"},
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "checkout-7c9f8d6b5",
                    "uid": "0d9a5f0c-4a39-4a55-8d0a-6c5b1c1f2e3d",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "serviceAccountName": "checkout",
            "containers": [
                {
                    "name": "checkout",
                    "image": "shop/checkout:3.1.4",
                    "ports": [
                        {"name": "http", "containerPort": 8080},
                        {"name": "metrics", "containerPort": 9090},
                    ],
                    "env": [{"name": f"SETTING_{i}", "value": str(i)} for i in range(10)],
                    "livenessProbe": probe,
                    "readinessProbe": {**probe, "httpGet": {"path": "/ready", "port": 8080}},
                    "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                },
                {
                    "name": "log-tailer",
                    "image": "busybox:1.36",
                    "args": ["tail", "-F", "/var/log/app.log"],
                    "readinessProbe": {"exec": {"command": ["true"]}},
                },
            ],
        },
    }


def _managed_fields(size: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    total = 0
    while total < size:
        index = len(entries)
        fields: dict[str, Any] = {
            f"f:{kind}-{index}-{i}": {".": {}, "f:value": {}} for i, kind in enumerate("ab" * 100)
        }
        entry = {
            "manager": f"controller-{index}",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-11-25T20:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": fields}},
        }
        total += len(json.dumps(entry))
        entries.append(entry)
    return entries


def big_pod() -> dict[str, Any]:
    """~3 MiB: 1 MiB of managedFields, a large last-applied annotation, long env lists."""
    pod = typical_pod()
    pod["metadata"]["managedFields"] = _managed_fields(1 << 20)
    pod["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
        {"data": "x" * (600 << 10)}
    )
    for container in pod["spec"]["containers"]:
        container["env"] = [
            {"name": f"VARIABLE_NUMBER_{i}", "value": f"value-{i}-" + "v" * 80} for i in range(6000)
        ]
    pod["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled"}]}
    return pod


def _time(function: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=0, help="samples per pod (0: automatic)")
    args = parser.parse_args()
    config = InjectionConfig()
    context = InjectionContext(namespace="shop", namespace_labels={"istio-injection": "enabled"})
    print(f"{'pod':<10} {'size':>9} {'median':>10} {'p99':>10} {'floor':>10} {'ratio':>7}  target")
    for name, pod, target, default_rounds in (
        ("typical", typical_pod(), 1e-3, 2000),
        ("3MiB", big_pod(), 100e-3, 40),
    ):
        rounds = args.rounds or default_rounds
        text = json.dumps(pod)
        result = inject(pod, context, config)
        if not result.injected or not result.patch:
            raise SystemExit(f"the {name} pod was not injected: {result.skip_reason}")

        def injection(pod: dict[str, Any] = pod) -> None:
            json.dumps(inject(pod, context, config).patch)

        def floor(text: str = text) -> None:
            json.dumps(json.loads(text))

        def unpatched(pod: dict[str, Any] = pod) -> None:
            inject(pod, context, config, with_patch=False)

        _time(injection, max(3, rounds // 20))  # warm-up
        injected = _time(injection, rounds)
        floors = _time(floor, rounds)
        without_patch = _time(unpatched, rounds)
        median, floor_median = statistics.median(injected), statistics.median(floors)
        verdict = "ok" if median <= target else "MISSED"
        print(
            f"{name:<10} {len(text) / 1024:>7.0f}Ki {median * 1e3:>8.3f}ms "
            f"{_p99(injected) * 1e3:>8.3f}ms {floor_median * 1e3:>8.3f}ms "
            f"{median / floor_median:>7.2f}  <= {target * 1e3:g} ms {verdict}"
        )
        print(
            f"{'  no patch':<10} {'':>9} {statistics.median(without_patch) * 1e3:>8.3f}ms "
            f"{_p99(without_patch) * 1e3:>8.3f}ms  (inject(..., with_patch=False): the diff's "
            "share is the difference)"
        )


if __name__ == "__main__":
    main()
