"""What a listener allows its clients, in one place (applied by `HttpServer`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    """What one listener allows its clients (`HttpServer` applies all of it)."""

    backlog: int = 128  # connections the kernel queues before they are accepted
    # Open connections (TLS handshakes included); beyond, a new one is closed at once.
    max_connections: int = 256
    # TLS only: handshakes in progress at once, and how long one may take.
    max_handshakes: int = 64
    handshake_timeout: float = 5.0
    # From a request's first byte (the connection's, for the first) to its last: the
    # connection is closed when a client takes longer (slow headers or body).
    request_timeout: float = 10.0
    # Idle keep-alive connections are closed after this long.
    keep_alive_timeout: float = 5.0
    # On stop: how long requests in flight may take to finish before their connections close.
    graceful_shutdown: float = 1.0
