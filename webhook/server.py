"""Serving the app: uvicorn over TLS (the shared `control.serving` server), with the certificate
watcher running alongside."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from typing import Any

from starlette.types import ASGIApp

from control.serving import HttpServer, ListenerLimits, bind
from webhook.settings import ServerSettings
from webhook.tls import CertificateStore, CertificateWatcher

log = logging.getLogger("mizzen.webhook")
# Connections queue from the moment the socket listens; the API server opens many at once.
_BACKLOG = 2048


def _limits(settings: ServerSettings) -> ListenerLimits:
    return ListenerLimits(
        backlog=_BACKLOG,
        max_connections=settings.max_connections,
        max_handshakes=settings.max_handshakes,
        handshake_timeout=settings.handshake_timeout,
        request_timeout=settings.request_read_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
    )


def build_server(app: ASGIApp, settings: ServerSettings, store: CertificateStore) -> HttpServer:
    """The server for `app`, with the store's live TLS context and the listener's limits."""
    return HttpServer(
        app,
        name="webhook-https",
        limits=_limits(settings),
        tls=store.server_context,
        log_level=settings.log_level,
    )


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that port 0 (any free port) can be reported."""
    return bind(host, port, ListenerLimits(backlog=_BACKLOG))


def serve(
    app: ASGIApp,
    settings: ServerSettings,
    store: CertificateStore,
    listener: socket.socket | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (then stop gracefully), reloading the certificate as it
    changes."""
    listener = listener or listen(settings.host, settings.port)
    host, port = listener.getsockname()[:2]
    log.info("serving the admission webhooks on https://%s:%d", host, port)
    server = build_server(app, settings, store)
    watcher = CertificateWatcher(store, settings.reload_interval)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        server.start(listener)
        assert server.task is not None
        stopping = asyncio.ensure_future(stop.wait())
        waiting: set[asyncio.Future[Any]] = {stopping, server.task}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)  # or it failed
        stopping.cancel()
        await server.stop()

    watcher.start()
    # Everything built so far lives as long as the process: out of the garbage collector's
    # sight, a full collection no longer walks it (tens of milliseconds added to some review).
    gc.collect()
    gc.freeze()
    try:
        asyncio.run(until_signalled())
    finally:
        watcher.stop()
        listener.close()


class EmbeddedWebhook:
    """The webhooks served inside a running event loop, next to other servers (`mizzen control`
    serves xDS and the webhooks from one process, as istiod does)."""

    def __init__(self, app: ASGIApp, settings: ServerSettings, store: CertificateStore) -> None:
        self._server = build_server(app, settings, store)
        self._watcher = CertificateWatcher(store, settings.reload_interval)
        self._listener = listen(settings.host, settings.port)
        self.port: int = self._listener.getsockname()[1]

    def start(self) -> None:
        self._watcher.start()
        self._server.start(self._listener)
        log.info("serving the admission webhooks on port %d", self.port)

    async def stop(self) -> None:
        await self._server.stop()
        await asyncio.to_thread(self._watcher.stop)
