"""Benchmark of the admission webhook over TLS on loopback.

The webhook runs in its own process (uvicorn, TLS, the real app); this process is the load
generator (asyncio, raw HTTP/1.1 over TLS, keep-alive connections). Measured:

- a typical pod review at concurrency 1, 16 and 64: requests/s, p50, p99; and the same for the
  floor: the same stack (TLS, framing, envelope, routing, metrics) whose injector answers
  `allowed: true` without injecting. Both are measured in alternating slices (the machine is
  shared); ratio = webhook throughput / floor throughput, the median over the slices. Also
  the server's CPU time per review (from /proc), which the machine's other load does not
  inflate, and its ratio floor / webhook: the throughput ratio a dedicated core would see.
- the same against the bare floor: a Starlette app on uvicorn over TLS that parses the review
  and answers `allowed` (no limits, deadlines, metrics or injection), and the CPU per review
  the webhook spends beyond that floor plus the injection function itself (measured alone in
  this process): what mizzen's own stack costs. Two bare floors (issue 16): `bare` on
  uvicorn's asyncio loop and h11 parser with the standard library's json, `bare-fast` with
  uvicorn's fast paths (uvloop, httptools) and orjson.
- with `--baseline DIR`, the webhook of another checkout (the main branch's, say) as `before`,
  in the same alternating slices: before and after in one run.
- p50/p99 at a fixed 100 reviews/s (open loop), webhook and floor in alternating slices; latency
  from the actual send, and from the scheduled send time (no coordinated omission).
- a ~3 MiB pod review, one at a time: p50/p99; and the p99 of typical reviews at 50/s sent while
  two clients keep posting 3 MiB pods, with big bodies worked on in a thread (the default)
  and inline (offload disabled), to show what the thread buys.

Targets (issue 3): p99 <= 10 ms at 100 reviews/s; throughput >= 70% of the floor; 3 MiB pod
p99 < 1 s.

    .venv/bin/python hack/bench/bench_webhook.py [--duration SECONDS] [--only throughput|rate|big]
        [--baseline /work/main] [--no-floor]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

CONCURRENCY = (1, 16, 64)
ROUNDS = 5
T = TypeVar("T")
OWNER = {
    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7c9f8d6b5",
    "uid": "0d9a5f0c-4a39-4a55-8d0a-6c5b1c1f2e3d", "controller": True,
}  # fmt: skip


def typical_pod() -> dict[str, Any]:
    """A Deployment's pod: two containers with probes and ports, a few annotations."""
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "checkout-7c9f8d6b5-",
            "labels": {"app": "checkout", "version": "v3", "pod-template-hash": "7c9f8d6b5"},
            "annotations": {
                "traffic.sidecar.istio.io/excludeOutboundPorts": "5432,6379",
                "sidecar.istio.io/proxyCPU": "200m",
                "prometheus.io/scrape": "true",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "checkout-7c9f8d6b5",
                    "uid": "0d9a5f0c-4a39-4a55-8d0a-6c5b1c1f2e3d",
                    "controller": True,
                },
            ],
        },
        "spec": {
            "serviceAccountName": "checkout",
            "containers": [
                {
                    "name": "checkout",
                    "image": "registry.example/checkout:3.2.1",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [{"name": f"SETTING_{i}", "value": f"value-{i}"} for i in range(10)],
                    "readinessProbe": probe,
                    "livenessProbe": probe,
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                },
                {
                    "name": "metrics",
                    "image": "registry.example/exporter:1.0",
                    "ports": [{"name": "metrics", "containerPort": 9090}],
                },
            ],
        },
    }


def big_pod(target: int = 3 * 1024 * 1024) -> dict[str, Any]:
    """The typical pod grown to ~3 MiB: 1 MiB of managedFields, 4000 env vars, an annotation."""
    pod = typical_pod()
    fields: dict[str, Any] = {f"f:k{i}": {f"f:v{j}": {} for j in range(20)} for i in range(1700)}
    pod["metadata"]["managedFields"] = [
        {"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
    ]
    env = [{"name": f"BIG_{i}", "value": "x" * 60} for i in range(4000)]
    pod["spec"]["containers"][0]["env"] = env
    filler = target - len(json.dumps(pod)) - 64
    pod["metadata"]["annotations"]["example.com/blob"] = "b" * max(filler, 0)
    return pod


def review_body(pod: Mapping[str, Any]) -> bytes:
    document = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5b0c6f0e-bench-4c8e-9f0a-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "dryRun": False,
        },
    }
    return json.dumps(document).encode()


def http_request(body: bytes) -> bytes:
    head = (
        "POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# --- the server process --------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    cert_file: Path
    key_file: Path
    floor: bool = False
    offload: bool = True
    bare: bool = False  # not mizzen's stack at all: `_serve_bare`
    # The bare floor with uvicorn's fast paths (uvloop, httptools) and orjson.
    fast: bool = False
    # Another checkout's code (its root directory) instead of this one: "before" beside "after".
    source: str | None = None


def _serve_bare(spec: ServerSpec, report: multiprocessing.connection.Connection) -> None:
    """The bare floor: the least a webhook can do on the same framework, in the same venv. A
    Starlette app on uvicorn over TLS that parses the review and answers `allowed` for its uid;
    no limits, no deadlines, no metrics, no injection. Plain: uvicorn's asyncio loop and h11
    parser (pinned: its "auto" picks uvloop and httptools when they are installed), the
    standard library's json; fast: uvloop, httptools and orjson."""
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def dumps(answer: dict[str, Any]) -> bytes:
        return json.dumps(answer, separators=(",", ":")).encode()

    loads, encode = (orjson.loads, orjson.dumps) if spec.fast else (json.loads, dumps)

    async def review(request: Request) -> Response:
        uid = loads(await request.body())["request"]["uid"]
        answer = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "response": {"uid": uid, "allowed": True}}  # fmt: skip
        return Response(encode(answer), media_type="application/json")

    app = Starlette(routes=[Route("/inject", review, methods=["POST"])])
    from webhook.server import listen

    listener = listen("127.0.0.1", 0)
    report.send(listener.getsockname()[1])
    config = uvicorn.Config(
        app, ssl_certfile=str(spec.cert_file), ssl_keyfile=str(spec.key_file),
        log_level="warning", access_log=False,
        loop="uvloop" if spec.fast else "asyncio", http="httptools" if spec.fast else "h11",
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[listener])  # a TCP socket: asyncio sets TCP_NODELAY


def _serve(spec: ServerSpec, report: multiprocessing.connection.Connection) -> None:
    """Runs in the server process: the real app, or the floor, over TLS on a free port."""
    if spec.bare:
        _serve_bare(spec, report)
        return
    if spec.source is not None:
        import sys

        sys.path.insert(0, spec.source)
        # uvicorn's "auto" loop would take uvloop, which that code may not have been made for.
        sys.modules["uvloop"] = None  # type: ignore[assignment]
    from collections.abc import Mapping as _Mapping

    from injector import InjectionConfig, InjectionContext, InjectionResult
    from webhook.app import create_app
    from webhook.server import listen, serve
    from webhook.settings import ServerSettings, WebhookSettings
    from webhook.tls import CertificateStore

    def answer_allowed(
        pod: _Mapping[str, Any], context: InjectionContext, config: InjectionConfig
    ) -> InjectionResult:
        return InjectionResult(pod=dict(pod), patch=[])

    store = CertificateStore(spec.cert_file, spec.key_file)
    store.load()
    app_settings = (
        WebhookSettings() if spec.offload else WebhookSettings(offload_threshold_bytes=1 << 40)
    )
    if spec.floor:
        app = create_app(
            app_settings, InjectionConfig(), readiness=store.ready, injector=answer_allowed
        )
    else:
        app = create_app(app_settings, InjectionConfig(), readiness=store.ready)
    settings = ServerSettings(
        host="127.0.0.1", port=0, cert_file=spec.cert_file, key_file=spec.key_file,
        log_level="warning",
    )  # fmt: skip
    listener = listen(settings.host, settings.port)
    report.send(listener.getsockname()[1])
    serve(app, settings, store, listener)


@dataclass(frozen=True)
class Running:
    port: int
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used: unlike wall time, not
        inflated by whatever else runs on the machine."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(spec: ServerSpec) -> Iterator[Running]:
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(spec, sending), daemon=True)
    process.start()
    try:
        if not receiving.poll(30):
            raise RuntimeError("the webhook process did not start")
        port: int = receiving.recv()
        assert process.pid is not None
        yield Running(port, process.pid)
    finally:
        process.terminate()
        process.join(10)


# --- the load generator --------------------------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost", limit=1 << 20
        )
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> bytes:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = await self.reader.readexactly(length)
        if status != b"200" or b'"allowed":true' not in answer:
            raise RuntimeError(f"unexpected answer {status!r}: {answer[:200]!r}")
        return answer

    def close(self) -> None:
        self.writer.close()


@dataclass
class Result:
    latencies: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def describe(self) -> str:
        p50 = statistics.median(self.latencies) * 1e3
        return (
            f"{self.rate:8.0f} req/s   p50 {p50:7.2f} ms   p99 {self.quantile(0.99) * 1e3:7.2f} ms"
        )


async def closed_loop(
    port: int, context: ssl.SSLContext, request: bytes, concurrency: int, duration: float
) -> Result:
    """`concurrency` clients, each sending its next review as soon as the last is answered."""
    connections = [await Connection.open(port, context) for _ in range(concurrency)]
    for connection in connections:
        await connection.exchange(request)  # warm: handshake done, first answer checked
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration

    async def client(connection: Connection) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await connection.exchange(request)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return Result(latencies, elapsed)


async def open_loop(
    port: int, context: ssl.SSLContext, request: bytes, rate: float, duration: float
) -> tuple[Result, Result]:
    """Reviews sent on a fixed schedule. Returns the latencies counted from the actual send
    (what the API server sees) and from the scheduled time (which also holds the load
    generator's own lateness, and any wait for a free connection: no coordinated omission)."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(8):
        connection = await Connection.open(port, context)
        await connection.exchange(request)
        pool.put_nowait(connection)
    from_send: list[float] = []
    from_schedule: list[float] = []
    count = int(rate * duration)
    start = time.perf_counter() + 0.05

    async def one(scheduled: float) -> None:
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        connection = await pool.get()
        sent = time.perf_counter()
        try:
            await connection.exchange(request)
        finally:
            pool.put_nowait(connection)
        done = time.perf_counter()
        from_send.append(done - sent)
        from_schedule.append(done - scheduled)

    await asyncio.gather(*(one(start + i / rate) for i in range(count)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return Result(from_send, elapsed), Result(from_schedule, elapsed)


async def under_big_pods(
    port: int, context: ssl.SSLContext, small: bytes, big: bytes, duration: float
) -> tuple[Result, Result]:
    """Typical reviews at 50/s while two clients post 3 MiB pods back to back."""
    stop_at = time.perf_counter() + duration
    big_latencies: list[float] = []

    async def big_client() -> None:
        connection = await Connection.open(port, context)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await connection.exchange(big)
            big_latencies.append(time.perf_counter() - started)
        connection.close()

    started = time.perf_counter()
    (small_result, _), *_ = await asyncio.gather(
        open_loop(port, context, small, 50, duration), big_client(), big_client()
    )
    return small_result, Result(big_latencies, time.perf_counter() - started)


def run(measurement: Awaitable[T]) -> T:
    async def main() -> T:
        return await measurement

    return asyncio.run(main())


def compare(
    servers: dict[str, Running],
    context: ssl.SSLContext,
    request: bytes,
    concurrency: int,
    duration: float,
) -> None:
    """Webhook and floor measured in alternating slices, so that the load of anything else on
    the machine falls on both alike; the ratio is the median of the slices' ratios. The server
    CPU time per review is also shown: it does not depend on that load."""
    slices: dict[str, list[Result]] = {name: [] for name in servers}
    cpu: dict[str, float] = dict.fromkeys(servers, 0.0)
    for _ in range(ROUNDS):
        for name, running in servers.items():
            before = running.cpu_seconds()
            result = run(
                closed_loop(running.port, context, request, concurrency, duration / ROUNDS)
            )
            cpu[name] += running.cpu_seconds() - before
            slices[name].append(result)
    per_review: dict[str, float] = {}
    for name, results in slices.items():
        merged = merge(results)
        per_review[name] = cpu[name] / len(merged.latencies)
        print(f"{name:9s} c={concurrency:<3d} {merged.describe()}   "
              f"server CPU {per_review[name] * 1e3:.3f} ms/review")  # fmt: skip
    for floor in (name for name in servers if name != "webhook"):
        ratios = [w.rate / f.rate for w, f in zip(slices["webhook"], slices[floor], strict=True)]
        spread = f"(slices {min(ratios):.2f}-{max(ratios):.2f})"
        cpu_ratio = per_review[floor] / per_review["webhook"]
        print(f"          c={concurrency:<3d} ratio webhook/{floor}: throughput "
              f"{statistics.median(ratios):.2f} {spread}, "
              f"CPU per review {cpu_ratio:.2f}")  # fmt: skip
    for bare in (name for name in servers if name.startswith("bare")):
        beyond = per_review["webhook"] - per_review[bare] - INJECTION_SECONDS[0]
        print(f"          c={concurrency:<3d} webhook CPU beyond {bare} + injection: "
              f"{beyond * 1e3:.3f} ms/review (target <= 0.05)")  # fmt: skip


INJECTION_SECONDS = [0.0]  # the injection function alone, per typical pod (set by main)


def injection_cost(pod: Mapping[str, Any], runs: int = 2000) -> float:
    """Median seconds of `inject` on a fresh copy of `pod` (as the webhook gets one, parsed from
    each review), in this process: the work no floor does."""
    from injector import InjectionConfig, InjectionContext, inject

    config, context = InjectionConfig(), InjectionContext(namespace="shop")
    text = json.dumps(pod)
    timings = []
    for _ in range(runs):
        fresh = json.loads(text)
        started = time.perf_counter()
        inject(fresh, context, config)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def compare_at_rate(
    servers: dict[str, Running], context: ssl.SSLContext, request: bytes, duration: float
) -> None:
    """Both servers at a fixed 100 reviews/s, in alternating slices: the floor's tail shows how
    much of the webhook's is the machine (scheduling, other load) rather than the webhook."""
    from_send: dict[str, list[Result]] = {name: [] for name in servers}
    from_schedule: dict[str, list[Result]] = {name: [] for name in servers}
    cpu: dict[str, float] = dict.fromkeys(servers, 0.0)
    for _ in range(ROUNDS):
        for name, running in servers.items():
            before = running.cpu_seconds()
            sent, scheduled = run(open_loop(running.port, context, request, 100, duration / ROUNDS))
            cpu[name] += running.cpu_seconds() - before
            from_send[name].append(sent)
            from_schedule[name].append(scheduled)
    p99: dict[str, float] = {}
    for name in servers:
        sent = merge(from_send[name])
        scheduled = merge(from_schedule[name])
        p99[name] = sent.quantile(0.99)
        print(f"{name:9s} at 100 reviews/s {sent.describe()}   "
              f"server CPU {cpu[name] / len(sent.latencies) * 1e3:.3f} ms/review")  # fmt: skip
        print(f"{'':9s}   from the schedule {scheduled.describe()}")
    for floor in (name for name in servers if name != "webhook"):
        print(f"          p99 webhook/{floor} at 100 reviews/s: "
              f"{p99['webhook'] / p99[floor]:.2f}")  # fmt: skip


def merge(results: list[Result]) -> Result:
    return Result([x for r in results for x in r.latencies], sum(r.seconds for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument(
        "--only", choices=["throughput", "rate", "big"], help="run one part of the benchmark"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also serve another checkout's webhook (e.g. the main branch's) as 'before'",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="leave out the stack's own floor (fewer slices)"
    )
    args = parser.parse_args()
    duration: float = args.duration
    parts = {args.only} if args.only else {"throughput", "rate", "big"}

    from webhook import devcerts

    directory = Path(tempfile.mkdtemp(prefix="mizzen-bench-"))
    certs = devcerts.issue(directory, ["localhost"])
    context = ssl.create_default_context(cafile=certs.ca_file)
    small = http_request(review_body(typical_pod()))
    big = http_request(review_body(big_pod()))
    print(f"typical review {len(small)} bytes, big review {len(big) / 2**20:.2f} MiB; "
          f"{duration:g} s per point; server and load generator in separate processes; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip

    webhook = ServerSpec(certs.cert_file, certs.key_file)
    specs = {
        "webhook": webhook,
        "floor": ServerSpec(certs.cert_file, certs.key_file, floor=True),
        "bare": ServerSpec(certs.cert_file, certs.key_file, bare=True),
        "bare-fast": ServerSpec(certs.cert_file, certs.key_file, bare=True, fast=True),
    }
    if args.no_floor:
        del specs["floor"]
    if args.baseline:
        baseline = str(Path(args.baseline).resolve())
        specs["before"] = ServerSpec(certs.cert_file, certs.key_file, source=baseline)
    INJECTION_SECONDS[0] = injection_cost(typical_pod())
    print(f"the injection function alone: {INJECTION_SECONDS[0] * 1e3:.3f} ms per typical pod")
    if parts & {"throughput", "rate"}:
        with contextlib.ExitStack() as stack:
            servers = {name: stack.enter_context(server(spec)) for name, spec in specs.items()}
            for running in servers.values():
                run(closed_loop(running.port, context, small, 4, 1.0))  # warm-up
            if "throughput" in parts:
                for concurrency in CONCURRENCY:
                    compare(servers, context, small, concurrency, duration)
            if "rate" in parts:
                compare_at_rate(servers, context, small, max(duration * 2, 10.0))
                print("         (target: webhook p99 <= 10 ms at 100 reviews/s)")
    if "big" not in parts:
        return
    with server(webhook) as running:
        port = running.port
        single = run(closed_loop(port, context, big, 1, duration))
        print(f"3 MiB pod, one at a time:        {single.describe()}  (target p99 < 1 s)")
        loaded, bigs = run(under_big_pods(port, context, small, big, duration))
        print(f"typical at 50/s beside 2 clients of 3 MiB pods (thread): {loaded.describe()}")
        print(f"   ... the 3 MiB pods meanwhile:                        {bigs.describe()}")
    with server(ServerSpec(certs.cert_file, certs.key_file, offload=False)) as running:
        port = running.port
        loaded, bigs = run(under_big_pods(port, context, small, big, duration))
        print(f"typical at 50/s beside 2 clients of 3 MiB pods (inline): {loaded.describe()}")
        print(f"   ... the 3 MiB pods meanwhile:                        {bigs.describe()}")


if __name__ == "__main__":
    main()
