"""What every accepted connection of an HTTP listener goes through before HTTP sees it.

- **A cap on open connections.** Over `max_connections`, a new connection is closed at once (its
  file descriptor freed), so idle clients cannot take the process to its fd limit and starve
  the listeners and files that matter (a neighbour holding the agent's probe port open must
  not make the pod unready).
- **TLS with a deadline.** The handshake is done here (`loop.start_tls`), not by the listening
  server, so that it has a deadline (`handshake_timeout` from the accept; asyncio's default is
  60 s, and each stalled handshake holds ~300 KB) and a cap of its own: at most
  `max_handshakes` in progress, the others wait their turn (a paused socket costs next to
  nothing) within the same deadline, so a burst of honest clients is served, not refused.
- **A cap per client address** (`max_connections_per_client`), where one client must not be
  able to take every slot from the others (the agent's probe ports: a neighbour pod must not
  lock out the kubelet).
- **Refusals logged once per burst**, with a count, never once per attempt.

A connection counts from its accept to its close, handshake included; the HTTP protocol gives its
slot back through `on_lost`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

from control.serving.deadline import DeadlineH11Protocol
from control.serving.fastparser import DeadlineHttpToolsProtocol
from control.serving.limits import ListenerLimits

log = logging.getLogger("mizzen.serving")
# A refusal is logged at most this often per listener, with the count since the last one.
_WARN_EVERY = 10.0
# What an admitted connection is handed to: either HTTP protocol, with its request deadline.
HttpProtocol = DeadlineHttpToolsProtocol | DeadlineH11Protocol


class ConnectionGuard:
    """One listener's admission: counts open connections and handshakes, refuses beyond."""

    def __init__(
        self,
        name: str,
        limits: ListenerLimits,
        make_protocol: Callable[[], HttpProtocol],
        tls: ssl.SSLContext | None,
    ) -> None:
        self.name = name
        self.limits = limits
        self.make_protocol = make_protocol
        self.tls = tls
        self.open = 0
        self.per_client: dict[str, int] = {}
        self.handshaking = 0  # in progress or waiting for a turn
        self.turns = asyncio.Semaphore(limits.max_handshakes)
        self.refused = 0  # since the listener started
        self._unreported = 0
        self._warned_at = -_WARN_EVERY
        self.handshakes: set[asyncio.Task[None]] = set()

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory for `loop.create_server`: one gate per accepted connection."""
        return _Gate(self)

    def refuse(self, transport: asyncio.BaseTransport, why: str) -> None:
        transport.abort()  # type: ignore[attr-defined]
        self.refused += 1
        self._unreported += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            log.warning("%s: refused %d connection(s): %s", self.name, self._unreported, why)
            self._warned_at = now
            self._unreported = 0

    def cancel_handshakes(self) -> None:
        """On stop: handshakes in progress are given up."""
        for task in list(self.handshakes):
            task.cancel()


class _Gate(asyncio.Protocol):
    """A connection until it is handed to HTTP: admitted or refused, TLS set up, data that came
    with the handshake's last flight kept for the HTTP protocol."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.counted = False
        self.client: str | None = None
        self.early: list[bytes] = []
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard, limits = self.guard, self.guard.limits
        if guard.open >= limits.max_connections:
            guard.refuse(transport, f"{guard.open} open, the limit is {limits.max_connections}")
            return
        per_client = limits.max_connections_per_client
        if per_client is not None:
            peer = transport.get_extra_info("peername")
            client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
            if guard.per_client.get(client, 0) >= per_client:
                guard.refuse(transport, f"{per_client} open from one client, the limit")
                return
            guard.per_client[client] = guard.per_client.get(client, 0) + 1
            self.client = client
        guard.open += 1
        self.counted = True
        assert isinstance(transport, asyncio.Transport)
        if guard.tls is None:
            self._hand_over(transport)
            return
        transport.pause_reading()  # until the TLS layer takes over
        guard.handshaking += 1
        task = asyncio.get_running_loop().create_task(self._handshake(transport, guard.tls))
        guard.handshakes.add(task)
        task.add_done_callback(guard.handshakes.discard)

    async def _handshake(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.guard.limits.handshake_timeout
        try:
            async with asyncio.timeout_at(deadline), self.guard.turns:
                secured = await loop.start_tls(
                    raw, self, context, server_side=True,
                    ssl_handshake_timeout=max(0.01, deadline - loop.time()),
                )  # fmt: skip
        except (Exception, asyncio.CancelledError):  # failed, timed out, or the server stops
            raw.abort()
            self.release()
            return
        finally:
            self.guard.handshaking -= 1
        if secured is None or self.lost:
            self.release()
            return
        self._hand_over(secured)

    def _hand_over(self, transport: asyncio.Transport) -> None:
        protocol = self.guard.make_protocol()
        protocol.on_lost = self.release
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        for data in self.early:
            protocol.data_received(data)
        self.early = []
        if self.eof:
            protocol.eof_received()

    def data_received(self, data: bytes) -> None:
        self.early.append(data)  # decrypted data that came with the handshake's completion

    def eof_received(self) -> bool | None:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.release()

    def release(self) -> None:
        if self.counted:
            self.counted = False
            self.guard.open -= 1
            if self.client is not None:
                left = self.guard.per_client[self.client] - 1
                if left:
                    self.guard.per_client[self.client] = left
                else:
                    del self.guard.per_client[self.client]
