"""Serving the app: uvicorn over TLS, with the certificate watcher running alongside."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import ssl
from collections.abc import Callable, Iterator

import uvicorn
from starlette.types import ASGIApp

from webhook.protocol import deadline_protocol
from webhook.settings import ServerSettings
from webhook.tls import CertificateStore, CertificateWatcher

log = logging.getLogger("mizzen.webhook")


class _EmbeddedServer(uvicorn.Server):
    """Uvicorn inside someone else's event loop: signals belong to the process's owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_server(
    app: ASGIApp,
    settings: ServerSettings,
    store: CertificateStore,
    *,
    embedded: bool = False,
) -> uvicorn.Server:
    """A uvicorn server for `app`, listening with the store's live TLS context."""

    def tls_context(
        config: uvicorn.Config, default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        return store.server_context()

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=deadline_protocol(settings.request_read_timeout),
        ssl_context_factory=tls_context,
        lifespan="off",
        access_log=False,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout,
        log_level=settings.log_level,
    )
    return _EmbeddedServer(config) if embedded else uvicorn.Server(config)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that port 0 (any free port) can be reported.

    Made with the explicit IPPROTO_TCP: asyncio sets TCP_NODELAY only on connections whose
    socket says so, and without it every response (headers and body written separately) waits
    ~40 ms on Nagle's algorithm and the client's delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)  # connections queue from now on; uvicorn accepts them once up
    except OSError:
        listener.close()
        raise
    return listener


def serve(
    app: ASGIApp,
    settings: ServerSettings,
    store: CertificateStore,
    listener: socket.socket | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), reloading the certificate as it changes."""
    listener = listener or listen(settings.host, settings.port)
    host, port = listener.getsockname()[:2]
    log.info("serving the admission webhooks on https://%s:%d", host, port)
    server = build_server(app, settings, store)
    watcher = CertificateWatcher(store, settings.reload_interval)
    watcher.start()
    # Everything built so far lives as long as the process: out of the garbage collector's
    # sight, a full collection no longer walks it (tens of milliseconds added to some review).
    gc.collect()
    gc.freeze()
    try:
        server.run(sockets=[listener])
    finally:
        watcher.stop()
        listener.close()


class EmbeddedWebhook:
    """The webhooks served inside a running event loop, next to other servers (`mizzen control`
    serves xDS and the webhooks from one process, as istiod does)."""

    def __init__(self, app: ASGIApp, settings: ServerSettings, store: CertificateStore) -> None:
        self._server = build_server(app, settings, store, embedded=True)
        self._watcher = CertificateWatcher(store, settings.reload_interval)
        self._listener = listen(settings.host, settings.port)
        self._task: asyncio.Task[None] | None = None
        self.port: int = self._listener.getsockname()[1]

    def start(self) -> None:
        self._watcher.start()
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._listener]), name="webhook-https"
        )
        log.info("serving the admission webhooks on port %d", self.port)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._watcher.stop)
        self._listener.close()
