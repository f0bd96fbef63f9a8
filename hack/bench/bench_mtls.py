"""Benchmark of mutual TLS between two sidecars: what mTLS adds to a request over plaintext
through the same client and server sidecars, and against two hand-written Envoys with the same
mTLS (`handwritten_pair.py`), in the same run.

Builds, in network namespaces (root needed): the CA and the control plane on the bridge, a
meshed client and a meshed server (certificates from the CA, config over ADS), a plain client
and a plain backend. Four paths, measured in interleaved rounds with `wrk` (native; its
percentiles come from an HdrHistogram in microseconds, read through a Lua `done` hook):
- direct: plain client -> plain backend (the floor);
- plaintext: meshed client -> server sidecar -> app, a DestinationRule `tls: DISABLE`;
- mTLS: the same, auto-mTLS (the DestinationRule removed);
- hand-written: client pod -> a static Envoy -> mTLS -> a static Envoy -> app (no redirect).
Each round: 10 keep-alive connections, each pausing 10 ms before every request (~950 req/s in
all). Then the maximum rate of each path (8 connections unpaced, 3 s). Envoy CPU per request is
the user + system time of the path's two Envoy processes (/proc) over the round, divided by its
requests. Prints p50/p90/p99 (median over rounds), CPU and rate per path, what each path adds
over the floor, and the ratios mizzen mTLS / hand-written (the issue's target: <= 1.1 at p50 and
p99) and mTLS / plaintext.

    .venv/bin/python hack/bench/bench_mtls.py [--seconds S] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handwritten_pair import start_pair

from control.cli.demo import sample
from control.cli.demo.mesh import (
    MeshError,
    PodHandle,
    run_in,
    start_backend,
    start_control_plane,
    wait_ready,
)
from control.cli.demo.netns import NetnsPod, Network, can_run_netns
from control.cli.demo.standalone_ca import start_ca, start_meshed_sidecar

NAMESPACE = "bench"
VIP = "198.19.255.40"  # the demo's VIP range (control/cli/demo/netns.py)
PORT = 8080
MESHED = {"security.istio.io/tlsMode": "istio"}


def _documents(client_ip: str, server_ip: str) -> list[dict[str, Any]]:
    def pod(name: str, ip: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"serviceAccountName": name, "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "podIP": ip},
        }  # fmt: skip

    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "server", "namespace": NAMESPACE},
        "spec": {"clusterIP": VIP, "selector": {"app": "server"},
                 "ports": [{"name": "http", "port": 80, "targetPort": PORT}]},
    }  # fmt: skip
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        service,
        pod("client", client_ip, {"app": "client", **MESHED}),
        pod("server", server_ip, {"app": "server", **MESHED}),
    ]


def _plaintext_rule() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "server", "namespace": NAMESPACE},
        "spec": {"host": "server", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
    }  # fmt: skip


_PACED = "function delay() return 10 end\n"  # ms before each request, per connection
_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("MZ %d %d %d %d %d %d\\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass
class Round:
    """One wrk run on one path: latency percentiles (ms), rate, and the pair's Envoy CPU."""

    p50: float
    p90: float
    p99: float
    rps: float
    requests: int
    envoy_cpu_us: float  # Envoy CPU (user + system) per request, both sidecars of the path


def _wrk(pod: PodHandle, url: str, script: Path, seconds: int, connections: int,
         envoys: Sequence[NetnsPod]) -> Round:  # fmt: skip
    """A wrk run inside `pod`; wrk's own percentiles (HdrHistogram, microseconds)."""
    before = _envoy_cpu_seconds(envoys)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    out = run_in(pod, argv, timeout=seconds + 60)
    cpu = _envoy_cpu_seconds(envoys) - before
    match = re.search(r"^MZ (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.MULTILINE)
    if match is None:
        raise MeshError(f"wrk to {url}: unexpected output: {out[-300:]}")
    requests, errors, duration_us, p50, p90, p99 = (int(g) for g in match.groups())
    if errors or "Non-2xx" in out or requests == 0:
        raise MeshError(f"wrk to {url}: {errors} errors of {requests} requests: {out[-300:]}")
    return Round(
        p50 / 1000, p90 / 1000, p99 / 1000, requests / (duration_us / 1e6), requests,
        cpu / requests * 1e6,
    )  # fmt: skip


def _envoy_cpu_seconds(pods: Sequence[NetnsPod]) -> float:
    """User + system CPU of the Envoy processes in these pods' network namespaces, so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pod in pods:
        listed = subprocess.run(
            ["ip", "netns", "pids", pod.netns], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in listed:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "envoy":
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited in between
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / tick


def _xfcc(pod: PodHandle, url: str) -> bool:
    """Whether the server's app saw a client certificate (the request went over mTLS)."""
    argv = [sys.executable, "-m", "control.cli.demo.traffic", "count", url, "--count=1"]
    run_in(pod, argv)  # warms the path; the backend's x-seen-xfcc header tells
    probe = (
        "import http.client,sys;c=http.client.HTTPConnection(sys.argv[1],80,timeout=5);"
        "c.request('GET','/');r=c.getresponse();print(bool(r.getheader('x-seen-xfcc')))"
    )
    return run_in(pod, [sys.executable, "-c", probe, VIP]).strip() == "True"


def _switch(config: Path, client: PodHandle, url: str, mtls: bool) -> None:
    path = config / "rules.yaml"
    if mtls:
        path.unlink(missing_ok=True)
    else:
        sample.write_documents(path, [_plaintext_rule()])
    deadline = time.monotonic() + 30
    while _xfcc(client, url) is not mtls:
        if time.monotonic() > deadline:
            raise MeshError(f"the client did not switch to {'mTLS' if mtls else 'plaintext'}")
        time.sleep(0.2)


def _wait_serving(pod: PodHandle, url: str, timeout: float = 30) -> None:
    argv = [sys.executable, "-m", "control.cli.demo.traffic", "count", url, "--count=1"]
    deadline = time.monotonic() + timeout
    while json.loads(run_in(pod, argv))["statuses"] != {"200": 1}:
        if time.monotonic() > deadline:
            raise MeshError(f"the hand-written pair does not serve {url}")
        time.sleep(0.2)


PATHS = ("direct", "plaintext", "mtls", "hand-written")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=4, help="seconds per round and path")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reason = can_run_netns() or (None if shutil.which("wrk") else "needs `wrk` (Debian: wrk)")
    if reason:
        print(f"bench_mtls: cannot run here: {reason}")
        return 1
    url = f"http://{VIP}/"
    sockets = Path(tempfile.mkdtemp(prefix="mzbench-"))
    sockets.chmod(0o755)
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            Network() as network,
            (Path(tmp) / "mesh.log").open("w") as log,
        ):
            client, server = network.add_pod("client"), network.add_pod("server")
            plain, backend = network.add_pod("plain"), network.add_pod("backend")
            hclient, hserver = network.add_pod("hclient"), network.add_pod("hserver")
            config = Path(tmp) / "config"
            config.mkdir()
            sample.write_documents(config / "workloads.yaml", _documents(client.ip, server.ip))
            ca_dir = Path(tmp) / "ca"
            start_ca(network.host, ca_dir, log)
            start_control_plane(network.host, config, log)
            start_backend(server, "server", PORT)
            start_backend(backend, "backend", PORT)
            start_backend(hserver, "hserver", PORT)
            pki = Path(tmp) / "pki"
            pki.mkdir()
            hand_url = start_pair(hclient, hserver, pki, PORT, log)
            for pod in (client, server):
                labels = {"app": pod.name, **MESHED}
                start_meshed_sidecar(
                    pod, network.host, namespace=NAMESPACE, labels=labels, account=pod.name,
                    ca_dir=ca_dir, sockets=sockets, log=log,
                )  # fmt: skip
            try:
                wait_ready(client, timeout=60)
                wait_ready(server, timeout=60)
            except MeshError as error:
                print(f"bench_mtls: the mesh did not start: {error}")
                return 1
            paced, unpaced = Path(tmp) / "paced.lua", Path(tmp) / "unpaced.lua"
            paced.write_text(_PACED + _REPORT)
            unpaced.write_text(_REPORT)
            paths = {  # path: (client pod, URL, the Envoys it crosses)
                "direct": (plain, f"http://{backend.ip}:{PORT}/", []),
                "plaintext": (client, url, [client, server]),
                "mtls": (client, url, [client, server]),
                "hand-written": (hclient, hand_url, [hclient, hserver]),
            }
            _wait_serving(hclient, hand_url)
            _wrk(plain, paths["direct"][1], paced, 1, 10, [])  # warm-up

            def measure(name: str, script: Path, seconds: int, connections: int) -> Round:
                if name in ("plaintext", "mtls"):
                    _switch(config, client, url, mtls=name == "mtls")
                pod, target, envoys = paths[name]
                return _wrk(pod, target, script, seconds, connections, envoys)

            paced_rounds: dict[str, list[Round]] = {name: [] for name in PATHS}
            for _ in range(args.rounds):  # interleaved, so drift hits every path alike
                for name in PATHS:
                    paced_rounds[name].append(measure(name, paced, args.seconds, 10))
            busy = {name: measure(name, unpaced, 3, 8) for name in PATHS}
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    report(paced_rounds, busy)
    return 0


def _median(rounds: Sequence[Round], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in rounds))


def report(paced: dict[str, list[Round]], busy: dict[str, Round]) -> None:
    rate = statistics.median(r.rps for rounds in paced.values() for r in rounds)
    count = len(paced["direct"])
    print(
        f"wrk, 10 keep-alive connections paced at 10 ms (~{rate:,.0f} req/s), {count} "
        "interleaved rounds per path; latency: the median over rounds of wrk's percentiles; "
        "max: 8 connections unpaced, 3 s"
    )
    print(
        f"  {'path':<13}{'p50':>9}{'p90':>9}{'p99':>9}   {'Envoy CPU/req':>13}   "
        f"{'max req/s':>10}  {'Envoy CPU/req at max':>20}"
    )
    for name in PATHS:
        rounds = paced[name]
        print(
            f"  {name:<13}{_median(rounds, 'p50'):>7.3f}ms{_median(rounds, 'p90'):>7.3f}ms"
            f"{_median(rounds, 'p99'):>7.3f}ms   {_median(rounds, 'envoy_cpu_us'):>11.0f}us   "
            f"{busy[name].rps:>10,.0f}  {busy[name].envoy_cpu_us:>18.0f}us"
        )
    floor = paced["direct"]

    def added(name: str, field: str) -> float:
        return _median(paced[name], field) - _median(floor, field)

    def ratio(a: float, b: float) -> float:
        """a / b; NaN when either is not positive (the floor moved more than the path did)."""
        return a / b if a > 0 and b > 0 else math.nan

    for field in ("p50", "p90", "p99"):
        mtls, hand, plain = (added(n, field) for n in ("mtls", "hand-written", "plaintext"))
        print(
            f"  added over direct at {field}: plaintext +{plain:.3f} ms, mTLS +{mtls:.3f} ms, "
            f"hand-written +{hand:.3f} ms; mizzen mTLS / hand-written x{ratio(mtls, hand):.2f}; "
            f"mTLS / plaintext x{ratio(mtls, plain):.2f}"
        )
    paced_cpu = ratio(*(_median(paced[n], "envoy_cpu_us") for n in ("mtls", "hand-written")))
    busy_cpu = ratio(busy["mtls"].envoy_cpu_us, busy["hand-written"].envoy_cpu_us)
    print(
        f"  Envoy CPU per request, mizzen mTLS / hand-written: x{paced_cpu:.2f} paced, "
        f"x{busy_cpu:.2f} at max; max rate x{ratio(busy['mtls'].rps, busy['hand-written'].rps):.2f}"
        " (the issue's latency target: added latency <= 1.1x the hand-written pair's)"
    )
    summary = {
        name: {
            "p50": _median(paced[name], "p50"), "p90": _median(paced[name], "p90"),
            "p99": _median(paced[name], "p99"),
            "envoy_cpu_us": _median(paced[name], "envoy_cpu_us"),
            "max_rps": busy[name].rps, "envoy_cpu_us_at_max": busy[name].envoy_cpu_us,
        }
        for name in PATHS
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
