"""Fixtures: the app in-process (httpx ASGI transport) and a real uvicorn over real TLS."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from injector import InjectionConfig
from webhook import devcerts
from webhook.app import create_app
from webhook.server import build_server, listen
from webhook.settings import ServerSettings, WebhookSettings
from webhook.tls import CertificateStore, CertificateWatcher

NAMES = ["localhost", *devcerts.service_names("mizzen", "mizzen-system")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app() -> ASGIApp:
    return create_app(WebhookSettings(), InjectionConfig(), readiness=lambda: True)


@pytest.fixture
async def client(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as client:
        yield client


@dataclass
class RunningServer:
    port: int
    certs: devcerts.DevCertificates
    store: CertificateStore
    app: ASGIApp

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.certs.ca_file)

    def connect(self, server_hostname: str | None = "localhost") -> ssl.SSLSocket:
        """A raw TLS socket to the server, for tests that misbehave on purpose."""
        return self.connect_with(self.client_context(), server_hostname)

    def connect_with(
        self, context: ssl.SSLContext, server_hostname: str | None = "localhost"
    ) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        try:
            return context.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise


@dataclass
class ServerOptions:
    app_settings: WebhookSettings = field(default_factory=WebhookSettings)
    request_read_timeout: float = 5.0
    reload_interval: float = 0.2


@pytest.fixture
def server_options() -> ServerOptions:
    return ServerOptions()


def start_server(
    app: ASGIApp, settings: ServerSettings, store: CertificateStore
) -> tuple[uvicorn.Server, threading.Thread, int]:
    listener = listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    server = build_server(app, settings, store)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server died while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    return server, thread, port


@contextlib.contextmanager
def running_server(directory: Path, options: ServerOptions) -> Iterator[RunningServer]:
    """The webhook as `mizzen webhook` serves it, in a thread, on an ephemeral port."""
    certs = devcerts.issue(directory, NAMES)
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        cert_file=certs.cert_file,
        key_file=certs.key_file,
        reload_interval=options.reload_interval,
        request_read_timeout=options.request_read_timeout,
        log_level="warning",
    )
    store = CertificateStore(settings.cert_file, settings.key_file)
    store.load()
    app = create_app(options.app_settings, InjectionConfig(), readiness=store.ready)
    watcher = CertificateWatcher(store, settings.reload_interval)
    watcher.start()
    server, thread, port = start_server(app, settings, store)
    try:
        yield RunningServer(port, certs, store, app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        watcher.stop()
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def tls_server(tmp_path: Path, server_options: ServerOptions) -> Iterator[RunningServer]:
    with running_server(tmp_path / "certs", server_options) as server:
        yield server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for a module's tests that do not change it."""
    with running_server(tmp_path_factory.mktemp("certs"), ServerOptions()) as server:
        yield server


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
