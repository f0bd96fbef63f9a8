"""Soak: `mizzen control` with the CA and the webhook embedded, under mixed hostile and normal
load for a while; memory and file descriptors must stay bounded and no answer may be wrong.

    .venv/bin/python hack/soak.py [--seconds 600] [--max-rss-mib 1024] [--json FILE]

Normal load (what must keep working, checked on every answer):
- `--proxies` well-behaved SotW proxies on the plaintext xDS port: every clusters response must
  hold the mesh's clusters (a response without one is a wrong answer: the "empty mesh" class),
  and a Service added every 10 s must reach all of them within `--converge-seconds`.
- admission reviews at ~20/s to the embedded webhook: each must be `allowed` with a patch that
  adds the sidecar (503 "overloaded" is counted as shed, anything else is wrong).
- `/ready` on the debug port every second: 200.

Hostile load, in turns of a few seconds each: idle-connection floods on the xDS and webhook
ports (beyond their caps), stalled TLS handshakes, a SotW stream that floods requests without
reading, NACKs with forged log lines repeating one nonce, a header bomb, a config file that
flips between valid and unparseable, and a FIFO named `*.yaml` in the config directory.

Exit status 0 when every check held; 1 with the failed checks otherwise. The summary is printed
(and written as JSON with `--json`). `tests/test_soak.py` runs it for a short while in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from injector.contract import PROXY_CONTAINER_NAME

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
SERVICES = 6  # the stable mesh; the churning Service comes and goes beside it
STABLE_FILE, FLIPPING_FILE, CHURN_FILE = "mesh.yaml", "flipping.yaml", "churn.yaml"
ATTACKS = frozenset({
    "idle connections to xDS", "idle connections to the webhook", "stalled TLS handshakes",
    "a stream that never reads", "NACKs forging log lines", "a header bomb",
    "a config file flipping", "a FIFO named *.yaml",
})  # fmt: skip


def _service(name: str, namespace: str, ip: str) -> str:
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 9080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}-0, namespace: {namespace}, labels: {{app: {name}}}}}
spec:
  containers: [{{name: app, image: {name}, ports: [{{containerPort: 9080}}]}}]
status:
  podIP: {ip}
  conditions: [{{type: Ready, status: "True"}}]
"""


def _cluster(name: str, namespace: str) -> str:
    return f"outbound|9080||{name}.{namespace}.svc.cluster.local"


def write_mesh(config: Path) -> None:
    """The stable mesh, and the Service of the file that will flip."""
    namespace = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: soak}\n"
    services = (_service(f"svc{i}", "soak", f"198.18.1.{i + 1}") for i in range(SERVICES))
    (config / STABLE_FILE).write_text(namespace + "".join(services))
    (config / FLIPPING_FILE).write_text(_service("flipper", "soak", "198.18.2.1"))


def expected_clusters() -> set[str]:
    """What every clusters response must hold: the stable mesh and the flipping file's Service
    (an unparseable turn of that file keeps its last good content)."""
    names = {_cluster(f"svc{i}", "soak") for i in range(SERVICES)}
    return names | {_cluster("flipper", "soak")}


@dataclass
class Tally:
    """Everything the soak counts; `failures()` names the checks that did not hold."""

    clusters_responses: int = 0
    clusters_wrong: int = 0
    convergence_checks: int = 0
    convergence_missed: int = 0
    reviews_ok: int = 0
    reviews_shed: int = 0
    reviews_wrong: int = 0
    ready_ok: int = 0
    ready_wrong: int = 0
    attacks: dict[str, int] = field(default_factory=dict)
    attacking: list[str] = field(default_factory=list)  # the turns under way, per lane
    slowest_convergence: float = 0.0
    peak_rss_mib: float = 0.0
    # RSS after the first 10 s and at the end: growth over the run, beside the peak.
    rss_mib_at_10s: float = 0.0
    last_rss_mib: float = 0.0
    peak_fds: int = 0
    died: bool = False
    wrong_examples: list[str] = field(default_factory=list)

    def wrong(self, what: str) -> None:
        if len(self.wrong_examples) < 20:
            self.wrong_examples.append(what[:300])

    def failures(self, max_rss_mib: float, max_fds: int) -> list[str]:
        checks = {
            "the control plane died": self.died,
            f"clusters responses without the mesh: {self.clusters_wrong}": self.clusters_wrong > 0,
            f"changes that did not converge: {self.convergence_missed}": self.convergence_missed
            > 0,
            f"wrong admission answers: {self.reviews_wrong}": self.reviews_wrong > 0,
            f"/ready not 200: {self.ready_wrong}": self.ready_wrong > 0,
            f"peak RSS {self.peak_rss_mib:.0f} MiB > {max_rss_mib:.0f}": self.peak_rss_mib
            > max_rss_mib,
            f"peak fds {self.peak_fds} > {max_fds}": self.peak_fds > max_fds,
            "no normal traffic was answered": not (self.clusters_responses and self.reviews_ok),
            f"attacks that never ran: {sorted(ATTACKS - set(self.attacks))}": not (
                set(self.attacks) >= ATTACKS
            ),
        }
        return [name for name, failed in checks.items() if failed]


@dataclass
class Plane:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    config: Path
    roots: Path


@contextlib.contextmanager
def start_plane(work: Path) -> Any:
    config, ca, certs = work / "config", work / "ca", work / "webhook-certs"
    config.mkdir()
    write_mesh(config)
    command = [
        sys.executable, "-m", "control.cli", "control", "--config-dir", str(config),
        "--ca-dir", str(ca), "--webhook-cert-dir", str(certs), "--xds-port", "0",
        "--debug-port", "0", "--secure-port", "0", "--ca-port", "0", "--webhook-port", "0",
        "--xds-max-connections", "512", "--log-level", os.environ.get("SOAK_LOG_LEVEL", "warning"),
    ]  # fmt: skip
    log = (work / "control.log").open("wb")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not re.fullmatch(r"mizzen control:( \w+=\d+)+\n", line):
            raise SystemExit(f"soak: mizzen control did not start: {line!r}; see {work}")
        ports = {name: int(port) for name, port in re.findall(r"(\w+)=(\d+)", line)}
        yield Plane(process, ports, config, ca / "root-cert.pem")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


# --- normal load -------------------------------------------------------------------------


def _node(index: int) -> str:
    return f"sidecar~198.18.3.{index + 1}~client-{index}.soak~soak.svc.cluster.local"


class Proxy:
    """A well-behaved SotW proxy asking for clusters and ACKing each answer."""

    def __init__(self, port: int, index: int, tally: Tally, expected: set[str]) -> None:
        self.port, self.index, self.tally, self.expected = port, index, tally, expected
        self.names: set[str] = set()
        self.updated = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._stream(stop)
            await asyncio.sleep(0.2)  # the server closed the stream (age, drain): reconnect

    async def _stream(self, stop: asyncio.Event) -> None:
        # Its own connection, as each Envoy has (gRPC would share one between channels).
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}", options) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            requests: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue(maxsize=4)
            first = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
            first.node.id = _node(self.index)
            await requests.put(first)

            async def outgoing() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
                while True:
                    yield await requests.get()

            call = stub.StreamAggregatedResources(outgoing())
            reading: asyncio.Task[Any] | None = None
            try:
                while not stop.is_set():
                    reading = reading or asyncio.ensure_future(call.read())
                    done, _ = await asyncio.wait({reading}, timeout=10)
                    if not done:
                        if not self.names:  # never answered: open anew, as Envoy would
                            return
                        continue  # a quiet mesh: keep waiting on the same read
                    response, reading = reading.result(), None
                    if response is grpc.aio.EOF:
                        return
                    self._check(response)
                    ack = discovery_pb2.DiscoveryRequest(
                        type_url=CLUSTER, version_info=response.version_info,
                        response_nonce=response.nonce,
                    )  # fmt: skip
                    await requests.put(ack)
            finally:
                call.cancel()
                if reading is not None:
                    reading.cancel()

    def _check(self, response: discovery_pb2.DiscoveryResponse) -> None:
        from envoy.config.cluster.v3 import cluster_pb2

        names = set()
        for resource in response.resources:
            cluster = cluster_pb2.Cluster()
            resource.Unpack(cluster)
            names.add(cluster.name)
        self.tally.clusters_responses += 1
        missing = self.expected - names
        if missing:
            self.tally.clusters_wrong += 1
            self.tally.wrong(f"proxy {self.index}: clusters missing {sorted(missing)[:3]}")
        self.names = names
        self.updated.set()


async def churn(plane: Plane, proxies: list[Proxy], tally: Tally, stop: asyncio.Event,
                converge: float) -> None:  # fmt: skip
    """Every 10 s add or remove a Service; every proxy must see the change within `converge`."""
    present = False
    while not stop.is_set():
        await _sleep(stop, 10)
        if stop.is_set():
            return
        present = not present
        path = plane.config / CHURN_FILE
        if present:
            path.write_text(_service("churn", "soak", "198.18.2.2"))
        else:
            path.unlink()
        wanted = _cluster("churn", "soak")
        started = time.monotonic()
        during = ", ".join(tally.attacking)
        while time.monotonic() - started < 3 * converge:
            if all((wanted in p.names) == present for p in proxies):
                break
            await asyncio.sleep(0.05)
        took = time.monotonic() - started
        tally.convergence_checks += 1
        tally.slowest_convergence = max(tally.slowest_convergence, took)
        if took > converge:
            tally.convergence_missed += 1
            done = sum((wanted in p.names) == present for p in proxies)
            tally.wrong(
                f"churn {'added' if present else 'removed'}: {done}/{len(proxies)} in {took:.1f}s "
                f"(during: {during})"
            )


def _review_body(index: int) -> bytes:
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-", "namespace": "soak", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "web", "ports": [{"containerPort": 80}]}]},
    }  # fmt: skip
    review = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": f"soak-{index}", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "soak", "operation": "CREATE", "object": pod,
        },
    }  # fmt: skip
    return json.dumps(review).encode()


def _client_tls(roots: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(roots))
    context.check_hostname = False  # the certificate names the Service; the chain is checked
    return context


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
                ) -> tuple[int, bytes]:  # fmt: skip
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return status, body


async def reviews(plane: Plane, tally: Tally, stop: asyncio.Event) -> None:
    """~20 reviews a second on one keep-alive connection, reopened when the server closes it."""
    index = 0
    tls = _client_tls(plane.roots)
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", plane.ports["webhook"], ssl=tls
            )
        except OSError:
            tally.reviews_wrong += 1
            tally.wrong("webhook: connection refused")
            await asyncio.sleep(0.5)
            continue
        try:
            while not stop.is_set():
                index += 1
                body = _review_body(index)
                head = (
                    f"POST /inject HTTP/1.1\r\nhost: soak\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\n\r\n"
                ).encode()
                status, answer = await asyncio.wait_for(_http(reader, writer, head + body), 10)
                _judge(status, answer, index, tally)
                await asyncio.sleep(0.05)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            tally.reviews_wrong += 1
            tally.wrong(f"webhook: {type(error).__name__}")
        finally:
            writer.close()


def _judge(status: int, answer: bytes, index: int, tally: Tally) -> None:
    if status == 503:
        tally.reviews_shed += 1
        return
    try:
        response = json.loads(answer)["response"]
        patch = base64.b64decode(response.get("patch", ""))
        good = (status == 200 and response["uid"] == f"soak-{index}" and response["allowed"]
                and PROXY_CONTAINER_NAME.encode() in patch)  # fmt: skip
    except (ValueError, KeyError, TypeError):
        good = False
    if good:
        tally.reviews_ok += 1
    else:
        tally.reviews_wrong += 1
        tally.wrong(f"review {index}: status {status} {answer[:120]!r}")


async def readiness(plane: Plane, tally: Tally, stop: asyncio.Event) -> None:
    request = b"GET /ready HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n"
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", plane.ports["debug"])
            status, _ = await asyncio.wait_for(_http(reader, writer, request), 5)
            writer.close()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            status = 0
        if status == 200:
            tally.ready_ok += 1
        else:
            tally.ready_wrong += 1
            tally.wrong(f"/ready: {status}")
        await _sleep(stop, 1)


# --- hostile load ------------------------------------------------------------------------


async def _open_many(port: int, count: int, first: bytes = b"") -> list[asyncio.StreamWriter]:
    """`count` connections opened 100 at a time, each sending `first` (if any); those the
    server refuses or closes at accept are simply not in the list."""

    async def one() -> asyncio.StreamWriter | None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
        except (OSError, TimeoutError):
            return None
        if first:
            writer.write(first)
        return writer

    writers: list[asyncio.StreamWriter] = []
    for start in range(0, count, 100):
        batch = await asyncio.gather(*(one() for _ in range(min(100, count - start))))
        writers += [w for w in batch if w is not None]
    return writers


async def _hold_and_close(writers: list[asyncio.StreamWriter], hold: float) -> None:
    await asyncio.sleep(hold)
    for writer in writers:
        writer.close()


async def idle_flood(port: int, count: int, hold: float) -> None:
    """Open `count` connections that never speak, hold them, let go."""
    await _hold_and_close(await _open_many(port, count), hold)


async def stalled_handshakes(port: int, count: int, hold: float) -> None:
    """Connections that send the first bytes of a TLS ClientHello and stop."""
    partial = bytes.fromhex("160301020001000200")  # a record header and a hello's first bytes
    await _hold_and_close(await _open_many(port, count, partial), hold)


async def unread_flood(port: int, seconds: float) -> None:
    """A SotW stream sending 64 KiB requests as fast as it can, never reading."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        deadline = time.monotonic() + seconds

        async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
            sent = 0
            while time.monotonic() < deadline:
                request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER, version_info="v" * 65536)
                request.node.id = "sidecar~198.18.4.1~flood.soak~soak.svc.cluster.local"
                sent += 1
                yield request
                if sent % 16 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(seconds)

        call = stub.StreamAggregatedResources(requests())
        with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError):
            await asyncio.wait_for(call.code(), seconds + 2)
        call.cancel()


async def forged_nacks(port: int, seconds: float) -> None:
    """NACKs repeating one nonce, their message full of newlines and escape sequences."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        queue: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue(maxsize=8)
        first = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
        first.node.id = "sidecar~198.18.4.2~nack.soak~soak.svc.cluster.local"
        await queue.put(first)

        async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
            while True:
                yield await queue.get()

        call = stub.StreamAggregatedResources(requests())
        deadline = time.monotonic() + seconds
        with contextlib.suppress(grpc.aio.AioRpcError, TimeoutError):
            response = await asyncio.wait_for(call.read(), 5)
            forged = "bad\n2026-12-04 INFO mizzen: all good\x1b[2J" * 100
            while time.monotonic() < deadline:
                nack = discovery_pb2.DiscoveryRequest(
                    type_url=CLUSTER, response_nonce=response.nonce,
                    error_detail=status_pb2.Status(code=3, message=forged),
                )  # fmt: skip
                with contextlib.suppress(asyncio.QueueFull):  # the server stopped reading
                    queue.put_nowait(nack)
                await asyncio.sleep(0.005)
        call.cancel()


async def header_bomb(port: int, roots: Path) -> None:
    """One request with a megabyte of headers: refused, the listener serves on."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_client_tls(roots))
        bomb = b"POST /inject HTTP/1.1\r\nhost: x\r\n" + b"x-pad: " + b"a" * (1 << 20) + b"\r\n\r\n"
        writer.write(bomb)
        with contextlib.suppress(OSError):
            await asyncio.wait_for(writer.drain(), 5)
        await asyncio.wait_for(reader.read(), 5)
        writer.close()


async def flip_file(config: Path, seconds: float) -> None:
    """The flipping file turns unparseable and back, every half second."""
    path = config / FLIPPING_FILE
    good = path.read_text()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        path.write_text("kind: Service\nmetadata: {name: [unclosed\n")
        await asyncio.sleep(0.5)
        path.write_text(good)
        await asyncio.sleep(0.5)


async def fifo(config: Path, seconds: float) -> None:
    """A FIFO named like a config file, present for a while (reading it would block forever)."""
    path = config / "trap.yaml"
    os.mkfifo(path)
    try:
        await asyncio.sleep(seconds)
    finally:
        path.unlink()


async def attacks(plane: Plane, tally: Tally, stop: asyncio.Event, scale: int) -> None:
    """The hostile turns until stopped, in two lanes at once: the network and the files."""
    ports = plane.ports
    network: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("idle connections to xDS", lambda: idle_flood(ports["xds"], 600 * scale, 2)),
        ("idle connections to the webhook", lambda: idle_flood(ports["webhook"], 1200 * scale, 2)),
        ("stalled TLS handshakes", lambda: stalled_handshakes(ports["webhook"], 300 * scale, 6)),
        ("a stream that never reads", lambda: unread_flood(ports["xds"], 4)),
        ("NACKs forging log lines", lambda: forged_nacks(ports["xds"], 3)),
        ("a header bomb", lambda: header_bomb(ports["webhook"], plane.roots)),
    ]
    files: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("a config file flipping", lambda: flip_file(plane.config, 4)),
        ("a FIFO named *.yaml", lambda: fifo(plane.config, 3)),
    ]

    async def lane(turns: list[tuple[str, Callable[[], Awaitable[None]]]]) -> None:
        while not stop.is_set():
            for name, attack in turns:
                if stop.is_set():
                    return
                tally.attacks[name] = tally.attacks.get(name, 0) + 1
                tally.attacking.append(name)
                try:  # no turn may stall its lane (a server that stops reading, say)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(attack(), 30)
                finally:
                    tally.attacking.remove(name)
                await _sleep(stop, 0.5)

    await asyncio.gather(lane(network), lane(files))


# --- monitoring --------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def monitor(plane: Plane, tally: Tally, stop: asyncio.Event) -> None:
    pid = plane.process.pid
    started = time.monotonic()
    while not stop.is_set():
        if plane.process.poll() is not None:
            tally.died = True
            stop.set()
            return
        with contextlib.suppress(OSError):
            rss = _rss_mib(pid)
            tally.peak_rss_mib = max(tally.peak_rss_mib, rss)
            tally.last_rss_mib = rss
            if not tally.rss_mib_at_10s and time.monotonic() - started >= 10:
                tally.rss_mib_at_10s = rss
            tally.peak_fds = max(tally.peak_fds, len(os.listdir(f"/proc/{pid}/fd")))
        await _sleep(stop, 0.5)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def soak(plane: Plane, args: argparse.Namespace) -> Tally:
    tally = Tally()
    stop = asyncio.Event()
    expected = expected_clusters()
    proxies = [Proxy(plane.ports["xds"], i, tally, expected) for i in range(args.proxies)]
    tasks = [asyncio.create_task(p.run(stop)) for p in proxies]
    tasks += [
        asyncio.create_task(churn(plane, proxies, tally, stop, args.converge_seconds)),
        asyncio.create_task(reviews(plane, tally, stop)),
        asyncio.create_task(readiness(plane, tally, stop)),
        asyncio.create_task(attacks(plane, tally, stop, args.scale)),
        asyncio.create_task(monitor(plane, tally, stop)),
    ]
    await _sleep(stop, args.seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--proxies", type=int, default=20)
    parser.add_argument("--scale", type=int, default=1, help="multiplies the flood sizes")
    parser.add_argument("--converge-seconds", type=float, default=5.0)
    parser.add_argument("--max-rss-mib", type=float, default=1024.0)
    parser.add_argument("--max-fds", type=int, default=4096)
    parser.add_argument("--json", type=Path, help="write the summary here too")
    parser.add_argument("--keep", type=Path, help="work in this new directory and keep it (logs)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            work = args.keep
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mizzen-soak-")))
        plane = stack.enter_context(start_plane(work))
        tally = asyncio.run(soak(plane, args))
        log = (work / "control.log").read_text(errors="replace")
    failures = tally.failures(args.max_rss_mib, args.max_fds)
    if "Traceback" in log:
        failures.append("a traceback in the control plane's log")
    summary = {**asdict(tally), "seconds": args.seconds, "failures": failures,
               "log_bytes": len(log)}  # fmt: skip
    print(json.dumps(summary, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
