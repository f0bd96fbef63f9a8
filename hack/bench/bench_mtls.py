"""Benchmark of mutual TLS between two sidecars: what mTLS adds to a request over plaintext
through the same client and server sidecars, and against two hand-written Envoys with the same
mTLS (`handwritten_pair.py`), in the same run.

Builds, in network namespaces (root needed): the CA and the control plane on the bridge, a
meshed client and a meshed server (certificates from the CA, config over ADS), a plain client
and a plain backend. Three paths, measured in interleaved rounds with `hey` (a native load
generator; its CSV has 0.1 ms resolution) at a fixed rate over one keep-alive connection:
- direct: plain client -> plain backend (the floor);
- plaintext: meshed client -> server sidecar -> app, a DestinationRule `tls: DISABLE`;
- mTLS: the same, auto-mTLS (the DestinationRule removed);
- hand-written: client pod -> a static Envoy -> mTLS -> a static Envoy -> app (no redirect).
Then the maximum rate of each path (8 connections, 3 s). Prints median, p99 and rate per path,
the mTLS / plaintext and mizzen / hand-written ratios (the issue's target: mizzen's pair within
1.1x of the hand-written pair) and what each adds over the floor.

    .venv/bin/python hack/bench/bench_mtls.py [--requests N] [--rounds R] [--rate QPS]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
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
from control.cli.demo.netns import Network, can_run_netns
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


def _hey(pod: PodHandle, url: str, count: int, rate: int) -> list[float]:
    """Milliseconds per request (hey's CSV), one worker, keep-alive."""
    out = run_in(pod, ["hey", "-n", str(count), "-c", "1", "-q", str(rate), "-o", "csv", url])
    samples = []
    for line in out.splitlines()[1:]:
        fields = line.split(",")
        if len(fields) >= 7 and fields[6] == "200":
            samples.append(float(fields[0]) * 1000)
    if len(samples) < count * 0.99:
        raise MeshError(f"hey to {url}: {count - len(samples)} of {count} requests failed")
    return samples


def _max_rate(pod: PodHandle, url: str, seconds: int = 3, workers: int = 8) -> float:
    """Requests/s with `workers` connections as fast as they go (hey's summary)."""
    out = run_in(pod, ["hey", "-z", f"{seconds}s", "-c", str(workers), url], timeout=seconds + 60)
    for line in out.splitlines():
        if line.strip().startswith("Requests/sec:"):
            return float(line.split(":", 1)[1])
    raise MeshError(f"hey to {url}: no Requests/sec in its summary")


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


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="requests/s (hey -q)")
    args = parser.parse_args()
    reason = can_run_netns() or (None if shutil.which("hey") else "needs `hey` (Debian: hey)")
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
            direct_url = f"http://{backend.ip}:{PORT}/"
            results: dict[str, list[float]] = {
                "direct": [], "plaintext": [], "mtls": [], "hand-written": []
            }  # fmt: skip
            _hey(plain, direct_url, 200, args.rate)  # warm-up
            _wait_serving(hclient, hand_url)
            for _ in range(args.rounds):  # interleaved, so drift hits every path alike
                results["direct"] += _hey(plain, direct_url, args.requests, args.rate)
                _switch(config, client, url, mtls=False)
                results["plaintext"] += _hey(client, url, args.requests, args.rate)
                _switch(config, client, url, mtls=True)
                results["mtls"] += _hey(client, url, args.requests, args.rate)
                results["hand-written"] += _hey(hclient, hand_url, args.requests, args.rate)
            rates = {"direct": _max_rate(plain, direct_url)}
            _switch(config, client, url, mtls=False)
            rates["plaintext"] = _max_rate(client, url)
            _switch(config, client, url, mtls=True)
            rates["mtls"] = _max_rate(client, url)
            rates["hand-written"] = _max_rate(hclient, hand_url)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    report(results, args.rate, rates)
    return 0


def report(results: dict[str, list[float]], rate: int, rates: dict[str, float]) -> None:
    floor, plain, mtls = results["direct"], results["plaintext"], results["mtls"]
    hand = results["hand-written"]
    print(f"{len(floor)} requests per path, hey -c 1 -q {rate}, one keep-alive connection")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(
            f"  {name:<12} median {median:.3f} ms  p99 {_p99(samples):.3f} ms  "
            f"max {rates[name]:,.0f} req/s (hey -c 8)"
        )
    m_ratio = statistics.median(mtls) / statistics.median(plain)
    p_ratio = _p99(mtls) / _p99(plain)
    print(f"  mTLS / plaintext (two sidecars): median x{m_ratio:.2f}, p99 x{p_ratio:.2f}")
    for name, samples in (("plaintext", plain), ("mtls", mtls), ("hand-written", hand)):
        added_median = statistics.median(samples) - statistics.median(floor)
        added_p99 = _p99(samples) - _p99(floor)
        print(f"  {name} adds over direct: median +{added_median:.3f} ms, p99 +{added_p99:.3f} ms")
    added = [
        (statistics.median(mtls) - statistics.median(floor))
        / max(statistics.median(hand) - statistics.median(floor), 1e-9),
        (_p99(mtls) - _p99(floor)) / max(_p99(hand) - _p99(floor), 1e-9),
    ]
    print(
        f"  mizzen's mTLS pair / the hand-written pair, added latency: median x{added[0]:.2f}, "
        f"p99 x{added[1]:.2f} (the issue's target: <= 1.1)"
    )
    summary = {
        k: {"median": statistics.median(v), "p99": _p99(v), "max_rps": rates[k]}
        for k, v in results.items()
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
