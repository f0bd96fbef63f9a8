"""One way to serve HTTP: every listener of every process (the control plane's debug port, the
admission webhooks, the agent's readiness and status ports) binds its socket with `bind` and
serves an ASGI app with `HttpServer`, an uvicorn server embedded in the caller's event loop.

- **Bound first.** The socket is bound before serving, so a taken port fails the process at
  once and port 0 (any free port) can be reported; `IPPROTO_TCP` is given explicitly, since
  asyncio sets TCP_NODELAY only on such sockets (without it, a response written in two parts
  waits ~40 ms for Nagle's algorithm and the peer's delayed ACK).
- **Signals belong to the caller.** uvicorn installs SIGINT/SIGTERM handlers of its own; here it
  never does, since what a signal means is the process's decision (the agent drains on SIGTERM,
  `mizzen control` stops every server together).
- **Graceful stop.** `stop()` stops accepting, lets requests in flight finish within the
  listener's graceful-shutdown time, then closes the rest.
- **Limits in one place.** `ListenerLimits` is what a listener allows its clients: a cap on
  open connections and on TLS handshakes in progress, a handshake deadline (`guard.py`), a
  deadline for each request to arrive whole, a 16 KiB cap on its head and framing, a bound on
  pipelined requests (`fastparser.py`) and
  the idle keep-alive timeout. Every listener has them, with defaults fit for a small port
  (probes, debug).
- **httptools, asyncio's loop.** Requests are parsed by httptools (llhttp, in C: about half
  of h11's cost per small request); the loop is asyncio's own, pinned, since uvicorn's "auto"
  takes uvloop when it is installed and the guard's handshakes (`loop.start_tls` on a
  transport handed over) did not complete under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from control.serving.deadline import DeadlineH11Protocol, deadline_protocol
from control.serving.fastparser import DeadlineHttpToolsProtocol
from control.serving.guard import ConnectionGuard, HttpProtocol
from control.serving.limits import ListenerLimits

__all__ = ["HttpServer", "ListenerLimits", "TlsContext", "bind"]

TlsContext = Callable[[], ssl.SSLContext]


def bind(host: str, port: int, limits: ListenerLimits | None = None) -> socket.socket:
    """A listening TCP socket. `host` "::" listens on every address, IPv6 and IPv4 on one
    socket where the kernel allows it, else on every IPv4 address; "0.0.0.0" only on IPv4."""
    backlog = (limits or ListenerLimits()).backlog
    if host == "::":
        try:
            return _bind(socket.AF_INET6, ("::", port), backlog, dual_stack=True)
        except OSError:
            host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return _bind(family, (host, port), backlog, dual_stack=False)


def _bind(
    family: socket.AddressFamily, address: tuple[str, int], backlog: int, *, dual_stack: bool
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _protocol(
    parser: Literal["httptools", "h11"], request_timeout: float
) -> type[asyncio.Protocol]:
    """The HTTP protocol class uvicorn instantiates per connection, with the deadline set."""
    if parser == "h11":
        return deadline_protocol(request_timeout)
    attributes = {"request_timeout": request_timeout}
    return type("DeadlineHttpToolsProtocol", (DeadlineHttpToolsProtocol,), attributes)


class HttpServer(uvicorn.Server):
    """An ASGI app served by uvicorn inside the caller's event loop, on a socket the caller
    bound (`bind`). uvicorn's own signal handlers are never installed. Connections are
    admitted by a `ConnectionGuard` (caps, TLS with a deadline) and served by uvicorn's
    httptools protocol with a request deadline and a cap on request heads (`fastparser.py`;
    `parser="h11"`: uvicorn's h11 protocol, with the same deadline, `deadline.py`).

        server = HttpServer(app, name="debug-http")
        server.start(bind("::", 0))   # serving from now on (a task of the caller's loop)
        ...
        await server.stop()           # graceful, then the socket is closed
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str = "http",
        limits: ListenerLimits | None = None,
        tls: TlsContext | None = None,
        log_level: str | None = "warning",
        parser: Literal["httptools", "h11"] = "httptools",
    ) -> None:
        self.limits = limits or ListenerLimits()
        self.name = name
        self.tls = tls
        self.guard: ConnectionGuard | None = None
        config = uvicorn.Config(
            app,
            http=_protocol(parser, self.limits.request_timeout),
            # asyncio's own loop, never uvloop (uvicorn's "auto" takes it when installed): the
            # guard's TLS handshakes (`loop.start_tls` on a transport handed over) need it.
            loop="asyncio",
            lifespan="off",
            # No listener serves WebSocket: with a WebSocket package installed, "auto" would
            # hand an upgraded connection to a protocol outside the request deadline.
            ws="none",
            access_log=False,
            server_header=False,
            timeout_keep_alive=max(1, round(self.limits.keep_alive_timeout)),
            timeout_graceful_shutdown=max(1, round(self.limits.graceful_shutdown)),
            log_level=log_level,
            log_config=None,  # logging is the process's: uvicorn's loggers go to its root
        )
        super().__init__(config)
        self.socket: socket.socket | None = None
        self.task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # what a signal means is the caller's to decide

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup for given sockets, with every connection admitted by the guard
        (which also does TLS) instead of going straight to HTTP."""
        assert sockets, "HttpServer serves the sockets it is given"
        config = self.config
        protocol_class = config.http_protocol_class
        assert issubclass(protocol_class, (DeadlineHttpToolsProtocol, DeadlineH11Protocol))

        def make_protocol() -> HttpProtocol:
            protocol: HttpProtocol = protocol_class(
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )
            return protocol

        tls = self.tls() if self.tls is not None else None
        self.guard = ConnectionGuard(self.name, self.limits, make_protocol, tls)
        loop = asyncio.get_running_loop()
        self.servers = [
            await loop.create_server(self.guard.protocol, sock=sock, backlog=self.limits.backlog)
            for sock in sockets
        ]
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.guard is not None:
            self.guard.cancel_handshakes()
        await super().shutdown(sockets)

    @property
    def port(self) -> int:
        assert self.socket is not None, "not started"
        port: int = self.socket.getsockname()[1]
        return port

    def start(self, sock: socket.socket) -> None:
        """Serve on `sock` from now on, in a task of the running loop."""
        self.socket = sock
        self.task = asyncio.create_task(self.serve(sockets=[sock]), name=self.name)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (`ListenerLimits.graceful_shutdown`),
        close the socket."""
        self.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.socket is not None:
            self.socket.close()
