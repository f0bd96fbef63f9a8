"""Benchmark of the control plane's per-proxy work on a push: translation of the mesh state for
one sidecar, the consistency check and the packing of the snapshot.

The mesh is synthetic: N Services in 10 namespaces, two pods each, a VirtualService (90/10 split)
and a DestinationRule (two subsets) per Service. Each sample translates for a different proxy,
as a push to many proxies does. Prints the median and p99 of each step and the ratio of the whole
to a floor measured in the same run: serializing the resulting resources to protobuf, which any
control plane pays to send them at all.

    .venv/bin/python hack/bench/bench_xds.py [--services N] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from control.config.loader import parse_text
from control.plane.model.build import build_state
from control.plane.model.state import MeshState
from control.plane.xds.cache.snapshot import build_snapshot
from control.plane.xds.translate import consistency
from control.plane.xds.translate.proxy import Proxy, parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import PUSH_ORDER, Resources

_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: svc{i}, namespace: ns{ns}}}
spec:
  clusterIP: 10.96.{hi}.{lo}
  selector: {{app: svc{i}}}
  ports: [{{name: http, port: {port}}}, {{name: grpc, port: 9090}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: svc{i}-a, namespace: ns{ns}, labels: {{app: svc{i}, version: v1}}}}
status: {{podIP: 10.244.{hi}.{lo}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: svc{i}-b, namespace: ns{ns}, labels: {{app: svc{i}, version: v2}}}}
status: {{podIP: 10.245.{hi}.{lo}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc{i}, namespace: ns{ns}}}
spec:
  hosts: [svc{i}]
  http:
  - route:
    - {{destination: {{host: svc{i}, subset: v1}}, weight: 90}}
    - {{destination: {{host: svc{i}, subset: v2}}, weight: 10}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc{i}, namespace: ns{ns}}}
spec:
  host: svc{i}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
"""


def synthetic_mesh(services: int) -> MeshState:
    text = "---\n".join(
        _SERVICE.format(i=i, ns=i % 10, hi=i // 250, lo=i % 250 + 1, port=8000 + i % 20)
        for i in range(services)
    )
    documents, problems = parse_text(text, "synthetic.yaml")
    state = build_state(documents)
    if problems or state.problems:
        raise SystemExit(f"synthetic mesh is invalid: {problems or state.problems}")
    return state


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _row(name: str, samples: list[float], floor: float | None = None) -> str:
    median = statistics.median(samples)
    ratio = f"{median / floor:7.1f}" if floor else " " * 7
    return f"{name:<22} {median * 1e3:9.2f}ms {_p99(samples) * 1e3:9.2f}ms {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    state = synthetic_mesh(args.services)
    proxies: list[Proxy] = [
        parse_node(
            f"sidecar~10.244.0.{i % 250 + 1}~svc{i}-a.ns{i % 10}~ns{i % 10}.svc.cluster.local"
        )
        for i in range(args.rounds)
    ]
    translate(state, proxies[0])  # warm-up (and the memo of parsed resources)

    steps: dict[str, list[float]] = {
        "translate": [],
        "consistency": [],
        "snapshot": [],
        "total": [],
    }
    floors: list[float] = []
    for proxy in proxies:
        started = time.perf_counter()
        resources = translate(state, proxy)
        translated = time.perf_counter()
        problems = consistency.problems(resources)
        checked = time.perf_counter()
        build_snapshot(resources, None, "v1", 0.0)
        packed = time.perf_counter()
        if problems:
            raise SystemExit(f"inconsistent: {problems[:3]}")
        steps["translate"].append(translated - started)
        steps["consistency"].append(checked - translated)
        steps["snapshot"].append(packed - checked)
        steps["total"].append(packed - started)
        floors.append(_serialize_time(resources))

    counts = {t.rsplit(".", 1)[-1]: len(resources.of(t)) for t in PUSH_ORDER}
    print(f"mesh: {args.services} services; per proxy: {counts}; {args.rounds} proxies")
    print(f"{'step':<22} {'median':>11} {'p99':>11} {'ratio':>7}")
    floor = statistics.median(floors)
    for name, samples in steps.items():
        print(_row(name, samples, floor if name == "total" else None))
    print(_row("floor (serialize)", floors))


def _serialize_time(resources: Resources) -> float:
    messages = [m for t in PUSH_ORDER for m in resources.of(t).values()]
    started = time.perf_counter()
    for message in messages:
        message.SerializeToString()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
