"""What a listener allows its clients, in one place (applied by `HttpServer`)."""

from __future__ import annotations

import resource
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    """What one listener allows its clients (`HttpServer` applies all of it)."""

    backlog: int = 128  # connections the kernel queues before they are accepted
    # Open connections (TLS handshakes included); beyond, a new one is closed at once.
    max_connections: int = 256
    # Open connections from one client address (None: no cap of its own), so that one client
    # cannot take every slot from the others (a neighbour pod from the kubelet's probes).
    max_connections_per_client: int | None = None
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


def raise_fd_limit(needed: int) -> tuple[int, bool]:
    """Raise this process's soft limit of open files to its hard limit (Python and most
    runtimes leave it lower), so the listeners' caps, not the fd limit, decide who is refused.
    Returns the limit now in force and whether it covers `needed` (the caps plus headroom
    for config files, API watches and the proxies already served)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft, soft >= needed
