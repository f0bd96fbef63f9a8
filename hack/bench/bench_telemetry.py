"""Benchmark of the standard metrics' cost: two sidecar pairs side by side in one run, one
with telemetry (Istio's standard metrics through Envoy's stats access logger) and one
without (MeshConfig `defaultProviders.metrics: []`), each with its own control plane.

Each pair is a client pod (the redirect, the agent and its Envoy) and a server pod (the same,
in front of an Envoy serving a fixed answer on :8080: a native app, so the app is not what is
measured). `hey` (native) sends 1,000 requests/s for `--seconds` from the client pod to the
Service's cluster IP, through both sidecars, in rounds alternating between the pairs; a scraper
fetches both agents' merged `/stats/prometheus` every `--scrape-interval` seconds meanwhile.
Printed per pair: p50/p99 latency (hey's), the CPU per request of the two Envoys and of the two
agents (from /proc), and their ratios. Then, on the telemetry pair, requests with other
response codes give the client sidecar ~1,000 standard series (Prometheus' series: a histogram
is 22 of them per label set, so 15 label sets x 67), then ~17,000 (251 label sets), and a scrape
of the agent's `:15020/stats/prometheus` is timed against one of Envoy's own
`:15090/stats/prometheus` (the floor, holding the same data in Envoy's raw form).

    .venv/bin/python hack/bench/bench_telemetry.py [--seconds 10] [--rounds 3] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from control.agent.envoy_binary import find_envoy
from control.cli.demo.mesh import MeshError, SidecarPod, mizzen, run_in, start_sidecar, wait_ready
from control.cli.demo.netns import NetnsPod, Network, can_run_netns

NAMESPACE = "bench"
SERVICE_IP = "198.19.255.40"  # the demo's VIP range (control/cli/demo/netns.py)
APP_PORT = 8080
CODES = range(201, 451)  # 250 response codes besides 200: a label set each per sidecar
_FETCH = (
    "import sys, time, urllib.request\n"
    "t = time.perf_counter(); body = urllib.request.urlopen(sys.argv[1], timeout=10).read()\n"
    "print((time.perf_counter() - t) * 1000, len(body))\n"
)


def _app_config() -> dict[str, Any]:
    """A static Envoy answering 200 on `/`, and `/code/<n>` with status n."""
    routes = [
        {"match": {"path": f"/code/{code}"}, "direct_response": {"status": code}} for code in CODES
    ]
    routes.append({"match": {"prefix": "/"}, "direct_response": {"status": 200,
                   "body": {"inline_string": "ok\n"}}})  # fmt: skip
    hcm = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 19000}}},
        "static_resources": {"listeners": [{
            "name": "app",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": APP_PORT}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": hcm + "HttpConnectionManager", "stat_prefix": "app",
                    "route_config": {"virtual_hosts": [
                        {"name": "app", "domains": ["*"], "routes": routes}]},
                    "http_filters": [{"name": "envoy.filters.http.router",
                                      "typed_config": {"@type": router}}],
                },
            }]}],
        }]},
    }  # fmt: skip


def _documents(client: str, server: str) -> list[dict[str, Any]]:
    def pod(name: str, ip: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
                "spec": {"serviceAccountName": name, "containers": [{"name": "app", "image": "x"}]},
                "status": {"phase": "Running", "podIP": ip}}  # fmt: skip

    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "server", "namespace": NAMESPACE},
               "spec": {"clusterIP": SERVICE_IP, "selector": {"app": "server"},
                        "ports": [{"name": "http", "port": 80, "targetPort": APP_PORT}]},
               }  # fmt: skip
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    return [namespace, service, pod("client", client), pod("server", server)]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Pair:
    name: str
    client: NetnsPod
    server: NetnsPod
    samples: dict[str, list[float]] = field(default_factory=dict)

    def processes(self) -> dict[str, list[int]]:
        """The sidecars' Envoys and agents of both pods (the app's Envoy left out)."""
        found: dict[str, list[int]] = {"envoy": [], "agent": []}
        for pod in (self.client, self.server):
            listed = subprocess.run(["ip", "netns", "pids", pod.netns], capture_output=True,
                                    text=True, check=False).stdout.split()  # fmt: skip
            for pid in map(int, listed):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                text = b" ".join(argv).decode(errors="replace")
                if (
                    "envoy" in Path(argv[0].decode(errors="replace")).name
                    and "app.json" not in text
                ):
                    found["envoy"].append(pid)
                elif "agent run" in text:
                    found["agent"].append(pid)
        return found

    def add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)


def _start_pair(network: Network, workdir: Path, name: str, metrics: bool, port: int,
                log: Any) -> Pair:  # fmt: skip
    client, server = network.add_pod(f"{name}-client"), network.add_pod(f"{name}-server")
    config = workdir / name
    config.mkdir()
    (config / "mesh.yaml").write_text(yaml.safe_dump_all(_documents(client.ip, server.ip)))
    mesh = workdir / f"{name}-meshconfig.yaml"
    mesh.write_text(yaml.safe_dump({} if metrics else {"defaultProviders": {"metrics": []}}))
    network.host.popen(mizzen("control", "--config-dir", str(config), "--mesh-config", str(mesh),
                              "--xds-address", "::", "--xds-port", str(port),
                              "--debug-port", str(port + 4)),
                       stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    app = workdir / f"{name}-app.json"
    app.write_text(json.dumps(_app_config()))
    envoy = str(find_envoy(None))
    server.popen([envoy, "-c", str(app), "--disable-hot-restart", "--concurrency", "1",
                  "-l", "error"], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    discovery = f"{network.host.ip}:{port}"
    start_sidecar(client, SidecarPod(NAMESPACE, {"app": "client"}, "client"), discovery, log)
    start_sidecar(server, SidecarPod(NAMESPACE, {"app": "server"}, "server"), discovery, log)
    return Pair(name, client, server)


def _hey(pod: NetnsPod, seconds: float, rate: int, path: str = "/") -> dict[str, float]:
    workers = 20
    argv = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(rate / workers),
            f"http://{SERVICE_IP}{path}"]  # fmt: skip
    out = run_in(pod, argv, timeout=seconds + 60)
    found = {m.group(1): float(m.group(2)) * 1000 for m in
             re.finditer(r"(\d+)%% in ([0-9.]+) secs".replace("%%", "%"), out)}  # fmt: skip
    total = re.search(r"\[(\d{3})\]\s+(\d+) responses", out)
    errors = "Error distribution" in out
    if not total or errors or "50" not in found:
        raise MeshError(f"hey failed or saw errors:\n{out[-1500:]}")
    return {"p50": found["50"], "p99": found["99"], "requests": float(total.group(2))}


def _round(pair: Pair, seconds: float, rate: int, scrape_interval: float) -> None:
    pids = pair.processes()
    before = {kind: sum(_cpu_seconds(p) for p in found) for kind, found in pids.items()}
    scraper = pair.client.popen(
        [sys.executable, "-c", "import sys, time, urllib.request\n"
         "end = time.monotonic() + float(sys.argv[1])\n"
         "while time.monotonic() < end:\n"
         "    for url in sys.argv[3:]: urllib.request.urlopen(url, timeout=5).read()\n"
         "    time.sleep(float(sys.argv[2]))\n",
         str(seconds), str(scrape_interval),
         f"http://{pair.client.ip}:15020/stats/prometheus",
         f"http://{pair.server.ip}:15020/stats/prometheus"],
    )  # fmt: skip
    result = _hey(pair.client, seconds, rate)
    scraper.wait(timeout=30)
    after = {kind: sum(_cpu_seconds(p) for p in found) for kind, found in pids.items()}
    pair.add("p50", result["p50"])
    pair.add("p99", result["p99"])
    for kind in ("envoy", "agent"):
        pair.add(f"{kind}_us", (after[kind] - before[kind]) / result["requests"] * 1e6)


def _fill(pair: Pair, codes: range) -> None:
    """One request per response code: a label set each, on both sidecars."""
    script = (
        "import sys, urllib.request as u\n"
        "for url in sys.argv[1:]:\n"
        "    try: u.urlopen(url, timeout=5)\n    except Exception: pass\n"
    )
    run_in(pair.client, [sys.executable, "-c", script,
                         *(f"http://{SERVICE_IP}/code/{code}" for code in codes)])  # fmt: skip
    time.sleep(6)  # Envoy's histogram flush


def _scrape_cost(pair: Pair, scrapes: int) -> dict[str, list[float]]:
    """Scrapes of the client sidecar's merged and raw expositions, timed from the server pod."""
    timings: dict[str, list[float]] = {"agent": [], "envoy": []}
    sizes: dict[str, int] = {}
    for _ in range(scrapes):
        for kind, port in (("agent", 15020), ("envoy", 15090)):
            url = f"http://{pair.client.ip}:{port}/stats/prometheus"
            millis, size = run_in(pair.server, [sys.executable, "-c", _FETCH, url]).split()
            timings[kind].append(float(millis))
            sizes[kind] = int(size)
    body = run_in(pair.server, [sys.executable, "-c", "import sys, urllib.request as u\n"
                                "print(u.urlopen(sys.argv[1]).read().decode())",
                                f"http://{pair.client.ip}:15020/stats/prometheus"])  # fmt: skip
    series = sum(1 for line in body.splitlines() if line.startswith("istio_"))
    label_sets = sum(1 for line in body.splitlines() if line.startswith("istio_requests_total"))
    print(f"  client sidecar: {series} standard series ({label_sets} label sets), exposition "
          f"{sizes['agent'] / 1e6:.1f} MB (Envoy's own {sizes['envoy'] / 1e6:.1f} MB)")  # fmt: skip
    for kind, label in (("agent", "agent :15020 (merged)"), ("envoy", "Envoy :15090 (floor)")):
        values = timings[kind]
        print(f"    scrape {label:<22} median {statistics.median(values):.1f} ms  "
              f"p99 {_p99(values):.1f} ms")  # fmt: skip
    return timings


def _report(on: Pair, off: Pair) -> None:
    medians = {p.name: {k: statistics.median(v) for k, v in p.samples.items()} for p in (on, off)}
    for name, m in medians.items():
        print(
            f"  telemetry {name:<3}  p50 {m['p50']:.2f} ms  p99 {m['p99']:.2f} ms  "
            f"Envoys {m['envoy_us']:.1f} us/request  agents {m['agent_us']:.1f} us/request"
        )
    a, b = medians["on"], medians["off"]
    print(
        f"  on / off: p50 x{a['p50'] / b['p50']:.2f}, p99 x{a['p99'] / b['p99']:.2f}; "
        f"Envoy CPU +{a['envoy_us'] - b['envoy_us']:.1f} us/request "
        f"(x{a['envoy_us'] / b['envoy_us']:.2f})"
    )
    share = {name: 100 * m["agent_us"] / m["envoy_us"] for name, m in medians.items()}
    print(
        f"  agents' CPU (scrapes, probes) = {share['on']:.1f}% of the Envoys' with telemetry, "
        f"{share['off']:.1f}% without"
    )


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--scrape-interval", type=float, default=1.0)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    reason = can_run_netns() or (None if shutil.which("hey") else "`hey` is not installed")
    if reason:
        print(f"bench_telemetry: cannot run here: {reason}")
        return 1
    with tempfile.TemporaryDirectory() as tmp, Network() as network, \
            (Path(tmp) / "mesh.log").open("w") as log:  # fmt: skip
        workdir = Path(tmp)
        on = _start_pair(network, workdir, "on", True, 15010, log)
        off = _start_pair(network, workdir, "off", False, 15110, log)
        try:
            for pod in (on.client, on.server, off.client, off.server):
                wait_ready(pod)
        except MeshError as error:
            print(f"bench_telemetry: the mesh did not start: {error}")
            return 1
        for pair in (on, off):  # warm-up: connections, caches, the first stats
            _hey(pair.client, 2, args.rate)
        for _ in range(args.rounds):
            for pair in (on, off):
                _round(pair, args.seconds, args.rate, args.scrape_interval)
        print(f"{args.rounds} rounds of {args.seconds:.0f} s at {args.rate} requests/s through "
              "a sidecar pair (hey, 20 keep-alive connections); agents scraped every "
              f"{args.scrape_interval:g} s")  # fmt: skip
        _report(on, off)
        _fill(on, CODES[:14])  # with the 200s: 15 label sets, ~1,000 series (Prometheus')
        _scrape_cost(on, args.scrapes)
        _fill(on, CODES)
        _scrape_cost(on, args.scrapes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
