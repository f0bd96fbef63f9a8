"""uvicorn's h11 protocol with a request deadline and coalesced writes (the httptools one,
`fastparser.py`, builds on the same pieces and is what listeners use by default).

uvicorn times out idle keep-alive connections, but not a client that sends its headers or body
slowly: such a client would hold its connection (and, for a body, a request task) for as long
as it likes. Here a request must arrive whole within `request_timeout` of its first byte (or of
the connection, for the first request), or the connection is closed. An app's own, shorter body
deadline (the webhook's) answers a trickled body with a 408 first; this is the backstop, and
also bounds how long the rest of a refused (413) body is drained after its answer. It builds on
uvicorn's internal `H11Protocol`; the tests over real sockets pin the behaviour.

Writes made in one turn of the event loop go out together (`Coalescing`): uvicorn writes a
response's headers and its body separately, which over TLS is two records and two `send` calls
on a socket with TCP_NODELAY; together they are one of each, the larger part of the cost of a
small response on the server's side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from control.logsafe import LogThrottle

# The peer has sent its whole request: waiting is now on our side.
_RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)
# uvicorn's warnings about a client's request, each let through once per this many seconds.
WARN_EVERY = 10.0
_WARNINGS = LogThrottle(WARN_EVERY, max_keys=64)


def nothing() -> None:
    pass


class ThrottledWarnings(logging.LoggerAdapter):  # type: ignore[type-arg]
    """uvicorn's logger for one connection, whose warnings are let through once per
    `WARN_EVERY` per message, with the count held back. uvicorn warns once per malformed
    request ("Invalid HTTP request received.", "Unsupported upgrade request."), for any client:
    one client sending garbage in a loop wrote a line per connection. Everything else (errors
    of the app, debug) is the logger's as it was."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        held = _WARNINGS.admit(msg if isinstance(msg, str) else type(msg))
        if held is None:
            return
        if held:
            msg = f"{msg} ({held} more in the last {WARN_EVERY:g} s)"
        self.logger.warning(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)


class Coalescing:
    """A transport whose writes within one turn of the loop are joined into one write at the
    end of the turn; closing writes what is pending first. Everything else is the transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RequestDeadline:
    """One connection's request deadline, shared by both protocols: armed when a request starts
    to arrive (or at connect), disarmed once it has arrived whole; when it fires, the connection
    is closed unless the request arrived in between (`arrived`: then waiting is on our side)."""

    def __init__(self, timeout: float, arrived: Callable[[], bool], logger: logging.Logger) -> None:
        self._timeout = timeout
        self._arrived = arrived
        self._logger = logger
        self._handle: asyncio.TimerHandle | None = None

    @property
    def armed(self) -> bool:
        return self._handle is not None

    def arm(self, loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport) -> None:
        self._handle = loop.call_later(self._timeout, self._expire, transport)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        self._handle = None
        if self._arrived():
            return
        if not transport.is_closing():
            self._logger.debug("closing a connection whose request did not arrive in time")
            transport.close()


class DeadlineH11Protocol(H11Protocol):
    request_timeout: float = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = cast(logging.Logger, ThrottledWarnings(self.logger))  # duck-typed
        self._deadline = RequestDeadline(
            self.request_timeout, lambda: self.conn.their_state in _RECEIVED, self.logger
        )
        # Called once the connection is gone: gives its slot back to the listener's guard.
        self.on_lost: Callable[[], None] = nothing

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = Coalescing(transport, asyncio.get_running_loop())
        super().connection_made(coalescing)
        self._deadline.arm(self.loop, self.transport)

    def data_received(self, data: bytes) -> None:
        if not self._deadline.armed:
            self._deadline.arm(self.loop, self.transport)
        super().data_received(data)
        if self.conn.their_state in _RECEIVED:
            self._deadline.disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.disarm()
        try:
            super().connection_lost(exc)
        finally:
            self.on_lost()


def deadline_protocol(request_timeout: float) -> type[DeadlineH11Protocol]:
    """The h11 protocol class uvicorn instantiates per connection, with the deadline set."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"request_timeout": request_timeout})
