"""Runs the app's original probes for the kubelet (which now asks the agent on :15020).

The injector rewrote each httpGet/tcpSocket/grpc probe into an httpGet on
`/app-health/<container>/<kind>` and passed the original along in the environment. The agent
probes the app at the pod's IP, as the kubelet would have, from 127.0.0.6: the redirect returns
traffic from that address untouched, so the probe reaches the app directly instead of looping
through Envoy's inbound listener (which policy could deny). gRPC probes cannot choose their
source address (grpcio has no such option), nor can IPv6 ones (no local ::6), so they take the
inbound path like other traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass
from typing import Final

import grpc
import httpx

from control.agent.settings import AppProbe, GrpcAction, HttpGetAction, TcpSocketAction

INBOUND_PASSTHROUGH_SOURCE: Final = "127.0.0.6"
_GRPC_HEALTH_CHECK: Final = "/grpc.health.v1.Health/Check"
_GRPC_SERVING: Final = 1


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    status: int  # what the agent answers the kubelet with
    detail: str


def _source_for(host: str, pod_ip: str) -> str | None:
    """127.0.0.6 towards the pod's own IPv4 address. IPv6 has no such loopback range (Istio's
    ::6 is not a local address), so IPv6 probes take the inbound path, as gRPC probes do."""
    if host != pod_ip or ipaddress.ip_address(pod_ip).version != 4:
        return None
    return INBOUND_PASSTHROUGH_SOURCE


def _host_literal(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _http_get(action: HttpGetAction, pod_ip: str, timeout: float) -> ProbeResult:
    host = action.host or pod_ip
    path = action.path if action.path.startswith("/") else "/" + action.path
    url = f"{action.scheme.lower()}://{_host_literal(host)}:{action.port}{path}"
    # Like the kubelet: HTTPS probes do not verify the app's certificate.
    transport = httpx.AsyncHTTPTransport(local_address=_source_for(host, pod_ip), verify=False)
    headers = {h.name: h.value for h in action.http_headers}
    headers.setdefault("User-Agent", "mizzen-agent-probe")
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        try:
            response = await client.get(url, headers=headers)
        except httpx.HTTPError as error:
            return ProbeResult(False, 500, f"GET {url}: {type(error).__name__}")
    ok = 200 <= response.status_code < 400
    return ProbeResult(
        ok, 200 if ok else response.status_code, f"GET {url}: {response.status_code}"
    )


async def _tcp_socket(action: TcpSocketAction, pod_ip: str, timeout: float) -> ProbeResult:
    host = action.host or pod_ip
    source = _source_for(host, pod_ip)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, action.port, local_addr=(source, 0) if source else None),
            timeout=timeout,
        )
    except (OSError, TimeoutError) as error:
        return ProbeResult(False, 500, f"tcp {host}:{action.port}: {type(error).__name__}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, 200, f"tcp {host}:{action.port}: connected")


def _health_request(service: str | None) -> bytes:
    """grpc.health.v1.HealthCheckRequest, encoded by hand: field 1 (string service)."""
    data = (service or "").encode()
    if not data:
        return b""
    length, prefix = len(data), bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        prefix.append(byte | (0x80 if length else 0))
        if not length:
            break
    return b"\x0a" + bytes(prefix) + data


def _health_status(response: bytes) -> int:
    """HealthCheckResponse's field 1 (enum status); 0 (UNKNOWN) when absent."""
    if len(response) >= 2 and response[0] == 0x08:
        return response[1]
    return 0


async def _grpc(action: GrpcAction, pod_ip: str, timeout: float) -> ProbeResult:
    target = f"{_host_literal(pod_ip)}:{action.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        check: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            _GRPC_HEALTH_CHECK
        )
        try:
            reply = await check(_health_request(action.service), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            return ProbeResult(False, 500, f"grpc {target}: {error.code().name}")
    status = _health_status(reply if isinstance(reply, bytes) else b"")
    ok = status == _GRPC_SERVING
    return ProbeResult(ok, 200 if ok else 500, f"grpc {target}: status {status}")


async def run_probe(probe: AppProbe, pod_ip: str) -> ProbeResult:
    if probe.http_get is not None:
        return await _http_get(probe.http_get, pod_ip, probe.timeout_seconds)
    if probe.tcp_socket is not None:
        return await _tcp_socket(probe.tcp_socket, pod_ip, probe.timeout_seconds)
    if probe.grpc is not None:
        return await _grpc(probe.grpc, pod_ip, probe.timeout_seconds)
    return ProbeResult(False, 500, "probe has no action")
