"""Benchmark of the mesh CA: signing on one core, and CreateCertificate over gRPC and TLS.

1. Signing, one thread pinned to one core: mizzen's signer (`sign_workload`: parse the PEM CSR,
   check its signature, key and SANs, build and sign the leaf, PEM the chain) beside the floor:
   `cryptography` building and signing the same certificate from an already-parsed public key;
   and beside `floor+csr`: the floor plus what no CA may skip, loading the CSR and verifying its
   signature (proof of possession; an ECDSA P-256 verification costs about three signatures).
   With an ECDSA P-256 CA key and an RSA 2048 CA key (workload keys: ECDSA P-256). Measured in
   alternating slices (the machine is shared); certificates/s, p50, p99 of one signature, and
   the ratios (median over the slices).
2. End to end: the CA's secure server (TLS, local-mode tokens, the real service) in its own
   process; this process runs 50 callers, each with its own TLS channel, calling
   CreateCertificate back to back with a valid token and CSR. Certificates/s, p50, p99. Beside
   it the floor: the same server and channels answering a method that returns a fixed chain
   (gRPC + TLS + framing only), in alternating slices.

Targets (issue 11): >= 1,000 ECDSA certificates/s on one core and >= 0.5 of the floor;
end to end >= 300/s with 50 callers, p99 <= 100 ms.

    .venv/bin/python hack/bench/bench_ca.py [--seconds 2] [--rounds 3] [--callers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from control.identity import certapi
from control.identity.keys import KeySpec, build_csr, generate_key, signature_hash
from control.identity.spiffe import SpiffeId
from control.plane.ca.material import load_issuer, self_signed_root
from control.plane.ca.signer import Issued, Issuer, SigningPolicy, sign_workload

IDENTITY = SpiffeId("cluster.local", "shop", "web")
FLOOR_METHOD = "/mizzen.bench.Floor/Echo"


@dataclass
class Slice:
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _run_slice(operation: Callable[[], object], seconds: float) -> Slice:
    latencies = []
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        before = time.perf_counter()
        operation()
        after = time.perf_counter()
        latencies.append(after - before)
        if after >= deadline:
            return Slice(len(latencies), after - started, latencies)


def _floor_operation(issuer: Issuer, public_key: Any) -> Callable[[], object]:
    """`cryptography` signing the same certificate mizzen signs, nothing else."""
    uri = x509.UniformResourceIdentifier(IDENTITY.uri)
    now = datetime.now(UTC)

    def sign() -> object:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=2))
            .not_valid_after(now + timedelta(hours=24))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(issuer.authority_key_id, critical=False)
            .add_extension(x509.SubjectAlternativeName([uri]), critical=True)
            .sign(issuer.key, signature_hash(issuer.key))
        )

    return sign


def bench_signing(seconds: float, rounds: int) -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux: unpinned
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    key = generate_key(KeySpec())
    csr = build_csr(key, IDENTITY.uri).decode()
    policy = SigningPolicy()
    print("== signing, one core (certificates/s, one signature p50/p99)")
    for label, spec in (("ECDSA P-256 CA", KeySpec()), ("RSA 2048 CA", KeySpec("rsa"))):
        now = datetime.now(UTC)
        issuer = load_issuer(self_signed_root(generate_key(spec), now, "cluster.local"))

        def ours(issuer: Issuer = issuer) -> object:
            result = sign_workload(csr, IDENTITY, None, datetime.now(UTC), issuer, policy)
            assert isinstance(result, Issued)
            return result

        floor = _floor_operation(issuer, key.public_key())

        def floor_with_csr(floor: Callable[[], object] = floor) -> object:
            request = x509.load_pem_x509_csr(csr.encode())
            assert request.is_signature_valid
            return floor()

        ours()
        floor()
        slices: dict[str, list[Slice]] = {"mizzen": [], "floor": [], "floor+csr": []}
        for _ in range(rounds):
            slices["mizzen"].append(_run_slice(ours, seconds))
            slices["floor"].append(_run_slice(floor, seconds))
            slices["floor+csr"].append(_run_slice(floor_with_csr, seconds))
        for what, measured in slices.items():
            _report(label, what, measured)
        for what in ("floor", "floor+csr"):
            ratios = [m.rate / b.rate for m, b in zip(slices["mizzen"], slices[what], strict=True)]
            print(f"  {label:16} ratio mizzen/{what}: {statistics.median(ratios):.2f}")


def _report(label: str, what: str, slices: list[Slice]) -> None:
    latencies = [x for s in slices for x in s.latencies]
    rate = statistics.median(s.rate for s in slices)
    print(
        f"  {label:16} {what:7} {rate:8.0f}/s  p50 {_percentile(latencies, 0.5) * 1e3:6.3f} ms"
        f"  p99 {_percentile(latencies, 0.99) * 1e3:6.3f} ms"
    )


# -- end to end -----------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve(directory: str, connection: multiprocessing.connection.Connection) -> None:
    """The CA's secure server, plus the floor method, until the pipe closes."""
    from prometheus_client import CollectorRegistry

    from control.cli.ca_wiring import build_identity, secure_server
    from control.plane.ca.ca_settings import CaSettings

    async def main() -> None:
        settings = CaSettings(ca_dir=Path(directory), advertise_addresses=("127.0.0.1",))
        parts = build_identity(settings, None, CollectorRegistry())
        fixed = certapi.new_response(["leaf", "root"])

        def floor(server: grpc.aio.Server) -> None:
            async def echo(request: Any, context: Any) -> Any:
                return fixed

            handler = grpc.unary_unary_rpc_method_handler(
                echo,
                request_deserializer=certapi.parse_request,
                response_serializer=certapi.serialize,
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler("mizzen.bench.Floor", {"Echo": handler}),)
            )

        server = secure_server(parts, 0, [floor], host="127.0.0.1")
        port = await server.start()
        connection.send((port, os.getpid()))
        await asyncio.get_running_loop().run_in_executor(None, connection.recv)
        await server.stop()
        parts.close()

    with contextlib.suppress(EOFError):
        asyncio.run(main())


async def _callers(
    port: int, roots: bytes, method: str, requests: list[Any], tokens: list[str], seconds: float
) -> Slice:
    credentials = grpc.ssl_channel_credentials(roots)
    channels = [
        grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) for _ in range(len(tokens))
    ]
    latencies: list[float] = []
    failures = 0

    async def caller(index: int, deadline: float) -> None:
        nonlocal failures
        call = channels[index].unary_unary(
            method, request_serializer=certapi.serialize,
            response_deserializer=certapi.parse_response,
        )  # fmt: skip
        metadata = [("authorization", f"Bearer {tokens[index]}")]
        n = index
        while time.perf_counter() < deadline:
            before = time.perf_counter()
            try:
                await call(requests[n % len(requests)], metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError:
                failures += 1
            latencies.append(time.perf_counter() - before)
            n += 1

    for channel in channels:  # connect (TLS handshakes) before measuring
        await channel.channel_ready()
    started = time.perf_counter()
    await asyncio.gather(*(caller(i, started + seconds) for i in range(len(channels))))
    elapsed = time.perf_counter() - started
    for channel in channels:
        await channel.close()
    if failures:
        raise RuntimeError(f"{failures} calls failed")
    return Slice(len(latencies), elapsed, latencies)


def bench_end_to_end(seconds: float, rounds: int, callers: int) -> None:
    from control.plane.ca.local_tokens import issue_token, load_or_create_token_key

    with tempfile.TemporaryDirectory() as directory:
        parent, child = multiprocessing.get_context("spawn").Pipe()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(directory, child), daemon=True
        )
        server.start()
        port, pid = parent.recv()
        roots = (Path(directory) / "root-cert.pem").read_bytes()
        token_key = load_or_create_token_key(Path(directory))
        tokens = [
            issue_token(token_key, IDENTITY, "mizzen-ca", timedelta(hours=1), datetime.now(UTC))
            for _ in range(callers)
        ]
        requests = [
            certapi.new_request(build_csr(generate_key(KeySpec()), IDENTITY.uri).decode(), 3600)
            for _ in range(200)
        ]
        print(f"== CreateCertificate over gRPC+TLS, {callers} callers (own channels)")

        cpu: dict[str, list[float]] = {"mizzen": [], "floor": []}

        async def measured(method: str, what: str) -> Slice:
            before = _cpu_seconds(pid)
            result = await _callers(port, roots, method, requests, tokens, seconds)
            cpu[what].append((_cpu_seconds(pid) - before) / result.count)
            return result

        async def measure() -> tuple[list[Slice], list[Slice]]:
            await _callers(port, roots, certapi.METHOD_PATH, requests, tokens, 1.0)  # warm
            mine, base = [], []
            for _ in range(rounds):
                mine.append(await measured(certapi.METHOD_PATH, "mizzen"))
                base.append(await measured(FLOOR_METHOD, "floor"))
            return mine, base

        mine, base = asyncio.run(measure())
        parent.send("stop")
        server.join(10)
        _report("end to end", "mizzen", mine)
        _report("end to end", "floor", base)
        ratios = [m.rate / b.rate for m, b in zip(mine, base, strict=True)]
        print(f"  {'end to end':16} ratio mizzen/floor: {statistics.median(ratios):.2f}")
        for what, values in cpu.items():
            per_call = statistics.median(values) * 1e3
            print(f"  {'server CPU':16} {what:7} {per_call:.3f} ms per call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per slice")
    parser.add_argument("--rounds", type=int, default=3, help="alternating slices per variant")
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--only", choices=("signing", "end-to-end"))
    args = parser.parse_args()
    if args.only in (None, "end-to-end"):
        bench_end_to_end(args.seconds, args.rounds, args.callers)
    if args.only in (None, "signing"):
        bench_signing(args.seconds, args.rounds)


if __name__ == "__main__":
    main()
