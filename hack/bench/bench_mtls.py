"""Benchmark of mutual TLS between two sidecars: what mTLS adds to a request over plaintext
through the same client and server sidecars, and against two hand-written Envoys with the same
mTLS (`handwritten_pair.py`) and the same pair with mizzen's features (`featured_pair.py`), in
the same run.

Builds, in network namespaces (root needed): the CA and the control plane on the bridge, a
meshed client and a meshed server (certificates from the CA, config over ADS), a plain client
and a plain backend. Five paths, measured in interleaved rounds with `wrk` (native; its
percentiles come from an HdrHistogram in microseconds, read through a Lua `done` hook):
- direct: plain client -> plain backend (the floor);
- plaintext: meshed client -> server sidecar -> app, through a second service of the same pods
  whose DestinationRule says `tls: DISABLE`;
- mTLS: the same through the service without one (auto-mTLS);
- hand-written: client pod -> a static Envoy -> mTLS -> a static Envoy -> app (no redirect);
- hand-featured: the same with mizzen's per-request features (metrics, XFCC, the peer header
  and its guard, fault, normalize_path), taken from the mizzen pair's config dumps.
Both mizzen paths are configured before the rounds: no xDS push, no new upstream TLS handshake
lands in a round (switching one service between plaintext and mTLS before each round did both,
only to the mizzen pair). `--pause-mesh` adds `mtls-paused`: mTLS with the agents, control plane
and CA stopped during its rounds (their wake-ups share the 2 cores with the data path).
Each round: 10 keep-alive connections, each pausing 10 ms before every request (~950 req/s in
all). Then the maximum rate of each path (8 connections unpaced, 3 s). Envoy CPU per request is
the user + system time of the path's two Envoy processes (/proc) over the round, divided by its
requests; mesh CPU the agents', control plane's and CA's per second of the round. Prints
p50/p90/p99 (median over rounds), CPU and rate per path, what each path adds over the floor,
and the ratios mizzen mTLS / hand-written (the issue's target: <= 1.1 at p50 and p99), mizzen
mTLS / hand-featured (what the control plane's way costs), hand-featured / hand-written (what
the features cost) and mTLS / plaintext.

    .venv/bin/python hack/bench/bench_mtls.py [--seconds S] [--rounds R] [--pause-mesh]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featured_pair import check_features, start_featured_pair
from handwritten_pair import CLIENT_PORT as FEATURED_PORT
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
from control.telemetry.peer import PEER_ENV

NAMESPACE = "bench"
VIP = "198.19.255.40"  # the demo's VIP range (control/cli/demo/netns.py)
PLAIN_VIP = "198.19.255.41"  # the same pods as a second service, its DestinationRule `DISABLE`
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

    def service(name: str, vip: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"clusterIP": vip, "selector": {"app": "server"},
                     "ports": [{"name": "http", "port": 80, "targetPort": PORT}]},
        }  # fmt: skip

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        service("server", VIP),
        service("server-plain", PLAIN_VIP),
        _plaintext_rule(),
        pod("client", client_ip, {"app": "client", **MESHED}),
        pod("server", server_ip, {"app": "server", **MESHED}),
    ]


def _plaintext_rule() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "server-plain", "namespace": NAMESPACE},
        "spec": {"host": "server-plain", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
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
    # CPU of the mesh's own processes (agents, control plane, CA) per second of the round: what
    # they take from the 2 cores while the path serves (0 for the paths without them).
    mesh_cpu_ms_per_s: float


def _wrk(pod: PodHandle, url: str, script: Path, seconds: int, connections: int,
         envoys: Sequence[NetnsPod], mesh: Sequence[NetnsPod]) -> Round:  # fmt: skip
    """A wrk run inside `pod`; wrk's own percentiles (HdrHistogram, microseconds)."""
    before, mesh_before = _cpu_seconds(envoys, _is_envoy), _cpu_seconds(mesh, _is_mesh)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    out = run_in(pod, argv, timeout=seconds + 60)
    cpu = _cpu_seconds(envoys, _is_envoy) - before
    mesh_cpu = _cpu_seconds(mesh, _is_mesh) - mesh_before
    match = re.search(r"^MZ (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.MULTILINE)
    if match is None:
        raise MeshError(f"wrk to {url}: unexpected output: {out[-300:]}")
    requests, errors, duration_us, p50, p90, p99 = (int(g) for g in match.groups())
    if errors or "Non-2xx" in out or requests == 0:
        raise MeshError(f"wrk to {url}: {errors} errors of {requests} requests: {out[-300:]}")
    return Round(
        p50 / 1000, p90 / 1000, p99 / 1000, requests / (duration_us / 1e6), requests,
        cpu / requests * 1e6, mesh_cpu * 1000 / (duration_us / 1e6),
    )  # fmt: skip


def _is_envoy(argv: Sequence[str]) -> bool:
    return bool(argv) and Path(argv[0]).name == "envoy"


def _is_mesh(argv: Sequence[str]) -> bool:
    """mizzen's agent, control plane or CA (`python -m control.cli agent|control|ca ...`)."""
    return argv[1:3] == ["-m", "control.cli"] and argv[3:4] in (["agent"], ["control"], ["ca"])


def _pids(pod: NetnsPod) -> list[str]:
    listed = subprocess.run(
        ["ip", "netns", "pids", pod.netns], capture_output=True, text=True, check=False
    )
    return listed.stdout.split()


def _processes(pods: Sequence[NetnsPod], wanted: Callable[[Sequence[str]], bool]) -> list[str]:
    """The PIDs of the `wanted` processes (by argv) in these pods' network namespaces."""
    found = []
    for pod in pods:
        for pid in _pids(pod):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
            except OSError:
                continue  # exited in between
            if wanted(argv):
                found.append(pid)
    return found


def _cpu_seconds(pods: Sequence[NetnsPod], wanted: Callable[[Sequence[str]], bool]) -> float:
    """User + system CPU, so far, of the `wanted` processes in these pods' network namespaces."""
    total = 0
    for pid in _processes(pods, wanted):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited in between
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def _signal_mesh(pods: Sequence[NetnsPod], number: int) -> None:
    """Sends signal `number` to mizzen's agents, control plane and CA in these pods."""
    for pid in _processes(pods, _is_mesh):
        with contextlib.suppress(OSError):  # exited in between
            os.kill(int(pid), number)


def _envoy_environment(pod: NetnsPod) -> dict[str, str]:
    """The environment of the pod's Envoy (the `MIZZEN_*` its headers read)."""
    for pid in _processes([pod], _is_envoy):
        try:
            pairs = Path(f"/proc/{pid}/environ").read_text().split("\0")
        except OSError:
            continue
        found = dict(p.split("=", 1) for p in pairs if "=" in p)
        return {k: v for k, v in found.items() if k.startswith("MIZZEN_")}
    raise MeshError(f"no Envoy in {pod.name}")


def _config_dump(pod: PodHandle) -> dict[str, Any]:
    """The pod's Envoy config (admin API on localhost), endpoints included."""
    fetch = (
        "import urllib.request;print(urllib.request.urlopen("
        "'http://127.0.0.1:15000/config_dump?include_eds',timeout=10).read().decode())"
    )
    dump: dict[str, Any] = json.loads(run_in(pod, [sys.executable, "-c", fetch]))
    return dump


def _xfcc(pod: PodHandle, host: str, port: int = 80) -> bool:
    """Whether the server's app saw a client certificate (the request went over mTLS)."""
    url = f"http://{host}:{port}/"
    argv = [sys.executable, "-m", "control.cli.demo.traffic", "count", url, "--count=1"]
    run_in(pod, argv)  # warms the path; the backend's x-seen-xfcc header tells
    probe = (
        "import http.client,sys;c=http.client.HTTPConnection(sys.argv[1],sys.argv[2],timeout=5);"
        "c.request('GET','/');r=c.getresponse();print(bool(r.getheader('x-seen-xfcc')))"
    )
    return run_in(pod, [sys.executable, "-c", probe, host, str(port)]).strip() == "True"


def _check_mode(client: PodHandle, host: str, mtls: bool) -> None:
    """Waits until requests to `host` go over mTLS (or plaintext), as the path's name says. Both
    services are configured before the rounds: no xDS push lands in the middle of one."""
    deadline = time.monotonic() + 30
    while _xfcc(client, host) is not mtls:
        if time.monotonic() > deadline:
            raise MeshError(f"{host}: not {'mTLS' if mtls else 'plaintext'}")
        time.sleep(0.2)


def _wait_serving(pod: PodHandle, url: str, timeout: float = 30) -> None:
    argv = [sys.executable, "-m", "control.cli.demo.traffic", "count", url, "--count=1"]
    deadline = time.monotonic() + timeout
    while json.loads(run_in(pod, argv))["statuses"] != {"200": 1}:
        if time.monotonic() > deadline:
            raise MeshError(f"the hand-written pair in {pod.name} does not serve {url}")
        time.sleep(0.2)


PATHS = ("direct", "plaintext", "mtls", "hand-written", "hand-featured")
PAUSED = "mtls-paused"  # mTLS with mizzen's agents, control plane and CA stopped (--pause-mesh)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=4, help="seconds per round and path")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--pause-mesh", action="store_true",
        help=f"a path more, {PAUSED}: the mTLS path with mizzen's agents, control plane and CA "
        "stopped (SIGSTOP) during its rounds, which tells their wake-ups on the shared cores "
        "from the sidecars' own latency (Envoy serves on with the config it has)",
    )  # fmt: skip
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
            fclient, fserver = network.add_pod("fclient"), network.add_pod("fserver")
            config = Path(tmp) / "config"
            config.mkdir()
            sample.write_documents(config / "workloads.yaml", _documents(client.ip, server.ip))
            ca_dir = Path(tmp) / "ca"
            start_ca(network.host, ca_dir, log)
            start_control_plane(network.host, config, log)
            start_backend(server, "server", PORT)
            start_backend(backend, "backend", PORT)
            start_backend(hserver, "hserver", PORT)
            start_backend(fserver, "fserver", PORT)
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
            _check_mode(client, VIP, mtls=True)
            _check_mode(client, PLAIN_VIP, mtls=False)
            featured = Path(tmp) / "featured"
            featured.mkdir()
            featured_url = start_featured_pair(
                fclient, fserver, featured, PORT, log, (_config_dump(client), _config_dump(server)),
                _envoy_environment(client), f"server.{NAMESPACE}.svc.cluster.local",
            )  # fmt: skip
            mesh = [network.host, client, server]
            paths = {  # path: (client pod, URL, the Envoys it crosses, the mesh's processes)
                "direct": (plain, f"http://{backend.ip}:{PORT}/", [], []),
                "plaintext": (client, f"http://{PLAIN_VIP}/", [client, server], mesh),
                "mtls": (client, url, [client, server], mesh),
                PAUSED: (client, url, [client, server], mesh),
                "hand-written": (hclient, hand_url, [hclient, hserver], []),
                "hand-featured": (fclient, featured_url, [fclient, fserver], []),
            }
            _wait_serving(hclient, hand_url)
            _wait_serving(fclient, featured_url)
            if not _xfcc(fclient, "127.0.0.1", FEATURED_PORT):
                raise MeshError("the featured pair's app saw no XFCC header")
            check_features(
                fclient, fserver, *(_envoy_environment(p)[PEER_ENV] for p in (client, server))
            )
            _wrk(plain, paths["direct"][1], paced, 1, 10, [], [])  # warm-up

            def measure(name: str, script: Path, seconds: int, connections: int) -> Round:
                pod, target, envoys, processes = paths[name]
                if name != PAUSED:
                    return _wrk(pod, target, script, seconds, connections, envoys, processes)
                _signal_mesh(mesh, signal.SIGSTOP)
                try:
                    return _wrk(pod, target, script, seconds, connections, envoys, processes)
                finally:
                    _signal_mesh(mesh, signal.SIGCONT)

            names = (*PATHS, PAUSED) if args.pause_mesh else PATHS

            paced_rounds: dict[str, list[Round]] = {name: [] for name in names}
            for _ in range(args.rounds):  # interleaved, so drift hits every path alike
                for name in names:
                    paced_rounds[name].append(measure(name, paced, args.seconds, 10))
            busy = {name: measure(name, unpaced, 3, 8) for name in names}
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    report(paced_rounds, busy)
    return 0


def _median(rounds: Sequence[Round], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in rounds))


def _ratio(a: float, b: float) -> float:
    """a / b; NaN when either is not positive (the floor moved more than the path did)."""
    return a / b if a > 0 and b > 0 else math.nan


_TARGET = ("p50", "p99")  # the target: mTLS adds <= 1.1x the hand-written pair's


def _round_ratios(paced: dict[str, list[Round]], a: str, b: str, field: str) -> list[float]:
    """(a - direct) / (b - direct) in each round (the rounds are interleaved, so round i of
    every path ran within seconds of the others); rounds where either is not positive left
    out."""
    ratios = []
    for floor, x, y in zip(paced["direct"], paced[a], paced[b], strict=True):
        ratio = _ratio(getattr(x, field) - getattr(floor, field),
                       getattr(y, field) - getattr(floor, field))  # fmt: skip
        if not math.isnan(ratio):
            ratios.append(ratio)
    return ratios


def report(paced: dict[str, list[Round]], busy: dict[str, Round]) -> None:
    rate = statistics.median(r.rps for rounds in paced.values() for r in rounds)
    count = len(paced["direct"])
    print(
        f"wrk, 10 keep-alive connections paced at 10 ms (~{rate:,.0f} req/s), {count} "
        "interleaved rounds per path; latency: the median over rounds of wrk's percentiles; "
        "max: 8 connections unpaced, 3 s; mesh CPU: mizzen's agents + control plane + CA"
    )
    print(
        f"  {'path':<14}{'p50':>9}{'p90':>9}{'p99':>9}   {'Envoy CPU/req':>13}  "
        f"{'mesh CPU':>9}   {'max req/s':>10}  {'Envoy CPU/req at max':>20}"
    )
    for name, rounds in paced.items():
        print(
            f"  {name:<14}{_median(rounds, 'p50'):>7.3f}ms{_median(rounds, 'p90'):>7.3f}ms"
            f"{_median(rounds, 'p99'):>7.3f}ms   {_median(rounds, 'envoy_cpu_us'):>11.0f}us  "
            f"{_median(rounds, 'mesh_cpu_ms_per_s'):>5.1f}ms/s   "
            f"{busy[name].rps:>10,.0f}  {busy[name].envoy_cpu_us:>18.0f}us"
        )
    floor = paced["direct"]

    def added(name: str, field: str) -> float:
        return _median(paced[name], field) - _median(floor, field)

    for field in ("p50", "p90", "p99"):
        mtls, hand, featured, plain = (
            added(n, field) for n in ("mtls", "hand-written", "hand-featured", "plaintext")
        )
        print(
            f"  added over direct at {field}: plaintext +{plain:.3f} ms, mTLS +{mtls:.3f} ms, "
            f"hand-written +{hand:.3f} ms, hand-featured +{featured:.3f} ms; "
            f"mizzen mTLS / hand-written x{_ratio(mtls, hand):.2f} (the issue's target), "
            f"/ hand-featured x{_ratio(mtls, featured):.2f} (the control plane's layout), "
            f"hand-featured / hand-written x{_ratio(featured, hand):.2f} (the features); "
            f"mTLS / plaintext x{_ratio(mtls, plain):.2f}"
        )

    spread = {field: _round_ratios(paced, "mtls", "hand-written", field) for field in _TARGET}
    print(
        "  the target's ratio per round (each round's mTLS and hand-written over its own direct "
        "run; how far one run's figure can move on this machine): "
        + "; ".join(
            f"{field} median x{statistics.median(r):.2f}, range x{min(r):.2f}-x{max(r):.2f}"
            for field, r in spread.items()
            if r
        )
    )

    def cpu(a: str, b: str) -> str:
        paced_cpu = _ratio(*(_median(paced[n], "envoy_cpu_us") for n in (a, b)))
        busy_cpu = _ratio(busy[a].envoy_cpu_us, busy[b].envoy_cpu_us)
        return (
            f"{a} / {b}: x{paced_cpu:.2f} paced, x{busy_cpu:.2f} at max; "
            f"max rate x{_ratio(busy[a].rps, busy[b].rps):.2f}"
        )

    print(f"  Envoy CPU per request, {cpu('mtls', 'hand-written')}")
    print(f"  Envoy CPU per request, {cpu('mtls', 'hand-featured')}")
    print(f"  Envoy CPU per request, {cpu('hand-featured', 'hand-written')}")
    if PAUSED in paced:
        print(
            "  with the mesh's processes stopped, added over direct, mizzen mTLS / hand-written: "
            + ", ".join(
                f"x{_ratio(added(PAUSED, f), added('hand-written', f)):.2f} at {f}"
                for f in ("p50", "p90", "p99")
            )
        )
    print("  (the issue's latency target: mTLS adds <= 1.1x the hand-written pair's latency)")
    summary = {
        name: {
            "p50": _median(paced[name], "p50"), "p90": _median(paced[name], "p90"),
            "p99": _median(paced[name], "p99"),
            "envoy_cpu_us": _median(paced[name], "envoy_cpu_us"),
            "mesh_cpu_ms_per_s": _median(paced[name], "mesh_cpu_ms_per_s"),
            "max_rps": busy[name].rps, "envoy_cpu_us_at_max": busy[name].envoy_cpu_us,
        }
        for name in paced
    }  # fmt: skip
    print(json.dumps({**summary, "target_per_round": spread}))


if __name__ == "__main__":
    sys.exit(main())
