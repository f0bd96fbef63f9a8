"""What a gRPC listener allows its clients, and the server made with it: one function for every
gRPC port of the control plane (plaintext xDS, the secure port), so they all have the same
guards.

    server = grpc_server(GrpcLimits(max_connections=5000))

- **Connections** beyond `max_connections` are closed by gRPC core at accept; a connection that
  has not finished its TLS handshake and sent its HTTP/2 settings within `handshake_timeout` is
  closed (gRPC's default is 120 s).
- **Streams**: `max_concurrent_streams` per connection (an Envoy opens one ADS stream), and
  `max_concurrent_rpcs` in the whole server, beyond which a new call fails RESOURCE_EXHAUSTED.
- **Messages and metadata**: the receive limit, and headers no larger than `max_metadata_bytes`.
- **Receive window**: no bandwidth probing (`grpc.http2.bdp_probe` off), so a stream's window
  stays at HTTP/2's 64 KiB, raised only for the message being read. With probing, gRPC core grew
  the window of a client sending faster than the plane reads, and took in and held what it
  sent: a flood of 1 MiB requests on one stream left the plane 29-91 MiB (147 once, on CI) more
  resident against 11-16 MiB without (`tests/control/test_stream_flood.py`). What clients send
  the plane is small (ACKs, subscriptions); probing speeds up bulk uploads, which it has none of.
- **Keepalive enforcement**: a client pinging more often than every `min_ping_interval` is sent
  GOAWAY after `max_ping_strikes` (a ping flood costs the server a write each).
- **Idle and age**: a connection without calls is closed after `max_connection_idle`; every
  connection is recycled after `max_connection_age` (+ `max_connection_age_grace` for calls in
  flight), as istiod does, so proxies spread over replicas again; 0 turns either off.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GrpcLimits:
    max_connections: int = 10_000
    handshake_timeout: float = 10.0
    max_concurrent_streams: int = 16
    max_concurrent_rpcs: int | None = None  # None: no server-wide cap beyond connections x streams
    max_message_bytes: int = 4 * MiB  # received; responses may be larger
    max_send_message_bytes: int = 256 * MiB
    max_metadata_bytes: int = 16 * 1024
    keepalive_time: float = 30.0  # the server pings an idle connection this often
    keepalive_timeout: float = 10.0  # and closes it when the ping is not answered in time
    min_ping_interval: float = 10.0
    max_ping_strikes: int = 2
    max_connection_idle: float = 300.0
    max_connection_age: float = 1800.0
    max_connection_age_grace: float = 10.0


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def grpc_options(limits: GrpcLimits) -> list[tuple[str, int]]:
    """The channel arguments that apply `limits` (all but `max_concurrent_rpcs`)."""
    options = [
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        ("grpc.server_handshake_timeout_ms", _ms(limits.handshake_timeout)),
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
        ("grpc.max_receive_message_length", limits.max_message_bytes),
        ("grpc.max_send_message_length", limits.max_send_message_bytes),
        ("grpc.max_metadata_size", limits.max_metadata_bytes),
        ("grpc.keepalive_time_ms", _ms(limits.keepalive_time)),
        ("grpc.keepalive_timeout_ms", _ms(limits.keepalive_timeout)),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(limits.min_ping_interval)),
        ("grpc.http2.max_ping_strikes", limits.max_ping_strikes),
        ("grpc.http2.bdp_probe", 0),  # the receive window stays small: see the module's doc
    ]
    if limits.max_connection_idle > 0:
        options.append(("grpc.max_connection_idle_ms", _ms(limits.max_connection_idle)))
    if limits.max_connection_age > 0:
        options.append(("grpc.max_connection_age_ms", _ms(limits.max_connection_age)))
        options.append(("grpc.max_connection_age_grace_ms", _ms(limits.max_connection_age_grace)))
    return options


def grpc_server(limits: GrpcLimits) -> grpc.aio.Server:
    """An asyncio gRPC server with `limits` applied; the caller adds services and ports."""
    return grpc.aio.server(
        options=grpc_options(limits), maximum_concurrent_rpcs=limits.max_concurrent_rpcs
    )
