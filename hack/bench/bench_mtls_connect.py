"""Benchmark: N simulated proxies connecting to `mizzen control` over mutual TLS (the secure
port, each proxy with its own certificate from the CA) beside the floor of the same proxies on
the plaintext port, in the same run, alternating.

Set-up (not timed in the comparison, reported apart): `mizzen control --ca-dir` in its own
process on the demo's sample config; N workload certificates from its CA port (CreateCertificate
over TLS with local tokens, 50 at once), as N agents would get them; namespace `bench`, 20
service accounts.

A round, per mode: W worker processes (simulated agents, grpc.aio, one connection per proxy)
open all their proxies at once on "go": connect (TLS handshake with the client certificate, or
plaintext), open ADS (State of the World, wait-for-ready), ask for clusters, then listeners, as
Envoy does; a proxy is "served" when both answers arrived. Measured: time from "go" to every
proxy served, p50/p99 of the per-proxy time to served, failures, and the control plane's CPU
seconds for the round (from /proc). Streams stay open until every proxy of the round is served
(all N connected at once), then close. Ratio: mTLS / plaintext (time to all served, CPU).

    .venv/bin/python hack/bench/bench_mtls_connect.py [--proxies 2000] [--workers 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from scale_procs import ControlProcess, cpu_seconds

from control.agent.csr_client import GrpcCertificateSigner
from control.cli.demo import sample
from control.identity.keys import KeySpec, build_csr, generate_key, private_key_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.local_tokens import issue_token, load_or_create_token_key

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
NAMESPACE = "bench"
ACCOUNTS = 20
CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.use_local_subchannel_pool", 1),  # one connection per proxy, as each Envoy has
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


# --- the worker (a fleet of simulated agents) ---------------------------------------------------


class _Requests:
    """The request stream: a plain async iterator over a queue (grpc closes an async generator
    from another task when the call ends, which fails while the generator waits)."""

    def __init__(self, queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None]) -> None:
        self.queue = queue

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> discovery_pb2.DiscoveryRequest:
        request = await self.queue.get()
        if request is None:
            raise StopAsyncIteration
        return request


class _Proxy:
    def __init__(self, spec: dict[str, Any], target: str, roots: bytes | None) -> None:
        self.spec = spec
        if roots is None:
            self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(
                roots, spec["key"].encode(), spec["chain"].encode()
            )
            self.channel = grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
        self.queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self.call: Any = None
        self.retries: list[str] = []

    async def serve(self, attempts: int = 5) -> float:
        """Until clusters and listeners are answered; the monotonic time then. A stream that
        breaks is opened again after a short backoff, as Envoy does (counted in `retries`)."""
        for attempt in range(attempts):
            try:
                return await self._attempt()
            except (grpc.aio.AioRpcError, RuntimeError) as error:
                self.retries.append(f"{type(error).__name__}: {error}"[:200])
                if attempt == attempts - 1:
                    raise
                self.call.cancel()
                self.queue = asyncio.Queue()
                await asyncio.sleep(0.1 + random.random() * 0.2)
        raise AssertionError("unreachable")

    async def _attempt(self) -> float:
        metadata = struct_pb2.Struct()
        metadata.update({"NAMESPACE": NAMESPACE, "SERVICE_ACCOUNT": self.spec["sa"],
                         "NAME": self.spec["pod"]})  # fmt: skip
        node = base_pb2.Node(id=self.spec["node"], metadata=metadata)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.call = stub.StreamAggregatedResources(_Requests(self.queue), wait_for_ready=True)
        self.queue.put_nowait(discovery_pb2.DiscoveryRequest(node=node, type_url=CLUSTER))
        clusters = await self.call.read()
        if clusters is grpc.aio.EOF:
            raise RuntimeError("stream ended before the clusters")
        self.queue.put_nowait(discovery_pb2.DiscoveryRequest(type_url=LISTENER))
        while True:
            response = await self.call.read()
            if response is grpc.aio.EOF:
                raise RuntimeError("stream ended before the listeners")
            if response.type_url == LISTENER:
                return time.monotonic()

    async def close(self) -> None:
        self.queue.put_nowait(None)
        if self.call is not None:
            self.call.cancel()
        await self.channel.close()


async def _worker(specs: list[dict[str, Any]], target: str, roots: bytes | None) -> None:
    proxies = [_Proxy(spec, target, roots) for spec in specs]
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "go"
    results = await asyncio.gather(
        *(asyncio.wait_for(p.serve(), 300) for p in proxies), return_exceptions=True
    )
    served = [r for r in results if isinstance(r, float)]
    errors = [f"{type(r).__name__}: {r}"[:200] for r in results if isinstance(r, BaseException)]
    retries = [text for p in proxies for text in p.retries]
    print(json.dumps({"served": served, "failed": len(errors), "first_error": errors[:1],
                      "retries": len(retries), "first_retry": retries[:1]}),
          flush=True)  # fmt: skip
    await loop.run_in_executor(None, sys.stdin.readline)  # "exit"
    await asyncio.gather(*(p.close() for p in proxies), return_exceptions=True)


# --- the benchmark ------------------------------------------------------------------------------


def _specs(count: int) -> list[dict[str, Any]]:
    return [
        {"pod": f"p{i}", "sa": f"sa-{i % ACCOUNTS}",
         "node": f"sidecar~10.{2 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}~p{i}.{NAMESPACE}"
                 f"~{NAMESPACE}.svc.cluster.local"}
        for i in range(count)
    ]  # fmt: skip


async def _certificates(specs: list[dict[str, Any]], ca_dir: Path, port: int, tmp: Path) -> float:
    """Every proxy's key and chain from the CA port, 50 requests at once; the seconds taken."""
    key = load_or_create_token_key(ca_dir)
    now = datetime.now(UTC)
    signers = []
    for account in range(ACCOUNTS):
        token = tmp / f"token-{account}"
        identity = SpiffeId("cluster.local", NAMESPACE, f"sa-{account}")
        token.write_text(issue_token(key, identity, "mizzen-ca", timedelta(hours=1), now))
        signers.append(
            GrpcCertificateSigner(f"127.0.0.1:{port}", token, ca_dir / "root-cert.pem", 60.0)
        )
    gate = asyncio.Semaphore(50)

    async def one(index: int, spec: dict[str, Any]) -> None:
        workload_key = generate_key(KeySpec())
        uri = SpiffeId("cluster.local", NAMESPACE, spec["sa"]).uri
        async with gate:
            chain = await signers[index % ACCOUNTS].create_certificate(
                build_csr(workload_key, uri).decode(), 3600
            )
        spec["key"] = private_key_pem(workload_key).decode()
        spec["chain"] = "".join(chain)

    started = time.monotonic()
    await asyncio.gather(*(one(i, s) for i, s in enumerate(specs)))
    return time.monotonic() - started


def _read_json(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"worker {process.pid} said nothing within {timeout:.0f}s")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _round(
    mode: str, files: list[Path], target: str, roots: Path | None, control_pid: int, tmp: Path
) -> dict[str, Any]:
    workers = []
    for path in files:
        argv = [sys.executable, __file__, "--worker", str(path), "--target", target]
        if roots is not None:
            argv += ["--roots", str(roots)]
        log = (tmp / f"worker-{mode}-{path.stem}.log").open("w")
        workers.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log, text=True))  # fmt: skip
    try:
        for worker in workers:
            _read_json(worker, 120)
        cpu_before = cpu_seconds(control_pid)
        go = time.monotonic()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        answers = [_read_json(worker, 400) for worker in workers]
        cpu = cpu_seconds(control_pid) - cpu_before
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("exit\n")
            worker.stdin.flush()
        for worker in workers:
            worker.wait(60)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    served = sorted(t - go for answer in answers for t in answer["served"])
    failed = sum(answer["failed"] for answer in answers)
    errors = [e for answer in answers for e in answer["first_error"]]
    retried = [e for answer in answers for e in answer["first_retry"]]
    return {
        "mode": mode, "served": len(served), "failed": failed, "first_error": errors[:1],
        "retries": sum(answer["retries"] for answer in answers), "first_retry": retried[:1],
        "all_served_s": served[-1] if served else float("nan"),
        "p50_s": statistics.median(served) if served else float("nan"),
        "p99_s": served[min(len(served) - 1, int(len(served) * 0.99))] if served else float("nan"),
        "control_cpu_s": cpu,
    }  # fmt: skip


def _print(results: list[dict[str, Any]], proxies: int) -> None:
    print(f"{'mode':<10} {'served':>7} {'failed':>6} {'retries':>7} {'all served':>10} {'p50':>7} "
          f"{'p99':>7} {'cp cpu':>7} {'cpu/proxy':>10}")  # fmt: skip
    for r in results:
        per = 1000 * r["control_cpu_s"] / max(1, r["served"])
        print(f"{r['mode']:<10} {r['served']:>7} {r['failed']:>6} {r['retries']:>7} "
              f"{r['all_served_s']:>9.2f}s "
              f"{r['p50_s']:>6.2f}s {r['p99_s']:>6.2f}s {r['control_cpu_s']:>6.2f}s "
              f"{per:>8.2f}ms")  # fmt: skip
        if r["first_error"]:
            print(f"  first error: {' '.join(r['first_error'][0].split())}")
        elif r["first_retry"]:
            print(f"  first retried: {' '.join(r['first_retry'][0].split())}")
    by_mode: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_mode.setdefault(r["mode"], []).append(r)

    def median(mode: str, key: str) -> float:
        return float(statistics.median(float(r[key]) for r in by_mode[mode]))

    plain_all, tls_all = median("plaintext", "all_served_s"), median("mtls", "all_served_s")
    plain_cpu, tls_cpu = median("plaintext", "control_cpu_s"), median("mtls", "control_cpu_s")
    print(
        f"\n{proxies} proxies; medians over the rounds: all served in {tls_all:.2f}s over "
        f"mTLS vs {plain_all:.2f}s plaintext (ratio {tls_all / plain_all:.2f}); control-plane "
        f"CPU {tls_cpu:.2f}s vs {plain_cpu:.2f}s (ratio {tls_cpu / max(plain_cpu, 1e-9):.2f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", type=int, default=2000)
    # 250 proxies a process: at 500 TLS channels in one Python gRPC client, some of its calls end
    # CANCELLED on the client's side (the server logs nothing), which would measure the simulator.
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--log-level", default="warning", help="the control plane's")
    parser.add_argument("--keep-log", type=Path, help="copy the control plane's log here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--roots", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        roots = args.roots.read_bytes() if args.roots else None
        asyncio.run(_worker(json.loads(args.worker.read_text()), args.target, roots))
        return 0
    if args.proxies < 1 or args.workers < 1 or args.rounds < 1:
        parser.error("--proxies, --workers and --rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-mtls-") as name:
        tmp = Path(name)
        config, ca_dir = tmp / "config", tmp / "ca"
        sample.write_config(config, "10.1.0.2", "10.1.0.3", "10.1.0.4", sample.Routing())
        extra = ["--ca-dir", str(ca_dir), "--secure-port", "0", "--ca-port", "0",
                 "--advertise-address", "127.0.0.1", "--log-level", args.log_level]  # fmt: skip
        control = ControlProcess(config, 0, extra, tmp / "control.log")
        try:
            control.wait_ready(60)
            specs = _specs(args.proxies)
            seconds = asyncio.run(_certificates(specs, ca_dir, control.ports["ca"], tmp))
            print(f"set-up: {args.proxies} certificates from the CA port in {seconds:.2f}s "
                  f"({args.proxies / seconds:.0f}/s, 50 at once)")  # fmt: skip
            files = []
            for index in range(args.workers):
                path = tmp / f"specs-{index}.json"
                path.write_text(json.dumps(specs[index :: args.workers]))
                files.append(path)
            results = []
            for _ in range(args.rounds):
                for mode in ("plaintext", "mtls"):
                    port = control.ports["xds" if mode == "plaintext" else "secure"]
                    roots = ca_dir / "root-cert.pem" if mode == "mtls" else None
                    results.append(_round(mode, files, f"127.0.0.1:{port}", roots,
                                          control.pid, tmp))  # fmt: skip
                    time.sleep(args.pause)  # the server closes the round's streams
            _print(results, args.proxies)
            if any(r["failed"] for r in results):
                lines = (tmp / "control.log").read_text(errors="replace").splitlines()
                odd = [line for line in lines if " INFO " not in line and "connected" not in line]
                print("control plane log (last 15 lines not INFO):\n  " + "\n  ".join(odd[-15:]))
        finally:
            control.stop()
            if args.keep_log is not None:
                shutil.copyfile(tmp / "control.log", args.keep_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
