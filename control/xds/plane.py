"""`ControlPlane`: the config source, the debouncer, the snapshot cache, the ADS gRPC server and
the debug HTTP server, run together in one asyncio loop.

    async with ControlPlane(ControlSettings(config_dir=path, xds_port=0, debug_port=0)) as plane:
        ...  # plane.xds_port and plane.debug_port are the bound ports
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import grpc
import uvicorn
from envoy.service.discovery.v3 import ads_pb2_grpc
from pydantic import BaseModel, ConfigDict, Field

from control.model.mesh_config import MeshConfig
from control.model.state import MeshState
from control.sources.base import ConfigSource
from control.sources.file import FileSource
from control.sources.jwks import JwksSource
from control.xds.ads import AdsService
from control.xds.cache import SnapshotCache, Translator
from control.xds.debounce import Debouncer
from control.xds.debug import build_app
from control.xds.metrics import Metrics
from control.xds.status import SyncRegistry
from control.xds.throttle import SendLimiter
from control.xds.translate.sidecar import translate
from control.xds.versions import Sequence

log = logging.getLogger(__name__)


class ControlSettings(BaseModel):
    """Parsed once at the edge (the CLI, or a test) and passed down."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The `file` source's directory; None when the caller passes its own source (`--kube`).
    config_dir: Path | None = None
    xds_port: int = Field(default=15010, ge=0, le=65535)
    debug_port: int = Field(default=15014, ge=0, le=65535)
    mesh: MeshConfig = Field(default_factory=MeshConfig)
    poll_interval: float = Field(default=0.1, gt=0)
    debounce_quiet: float = Field(default=0.1, ge=0)
    debounce_max: float = Field(default=10.0, gt=0)
    # Push scoping and shared translation; off: every proxy translated alone and pushed on
    # every change (the baseline the scale benchmark compares against).
    scoping: bool = True
    max_concurrent_pushes: int = Field(default=100, ge=1)
    # A proxy that has not taken a response after this long gives its push slot back.
    send_timeout: float = Field(default=1.0, gt=0)


def bind_all(port: int) -> socket.socket:
    """A listening TCP socket on every address: dual-stack, or IPv4 where IPv6 is off."""
    try:
        sock = _bind(socket.AF_INET6, ("::", port))
    except OSError:
        sock = _bind(socket.AF_INET, ("0.0.0.0", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _bind(family: socket.AddressFamily, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _add_port(server: grpc.aio.Server, port: int) -> int:
    """All addresses: `[::]` (dual-stack), or `0.0.0.0` where IPv6 is off. 0 on failure."""
    for address in (f"[::]:{port}", f"0.0.0.0:{port}"):
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            continue
        if bound:
            return bound
    return 0


class _EmbeddedUvicorn(uvicorn.Server):
    """Uvicorn inside our loop: signals belong to the process's owner, not to uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ControlPlane:
    def __init__(
        self,
        settings: ControlSettings,
        *,
        source: ConfigSource | None = None,
        translator: Translator = translate,
    ) -> None:
        self.settings = settings
        if source is None:
            if settings.config_dir is None:
                raise ValueError("the control plane needs a config_dir or a config source")
            source = FileSource(settings.config_dir, settings.mesh, settings.poll_interval)
        # RequestAuthentication keys behind jwksUri, fetched here and passed on as data.
        self.source: ConfigSource = JwksSource(source)
        self.metrics = Metrics()
        self.sync = SyncRegistry()
        self.cache = SnapshotCache(
            MeshState(mesh=settings.mesh), self.metrics, translator, scoping=settings.scoping
        )
        self.debouncer = Debouncer(self._apply, settings.debounce_quiet, settings.debounce_max)
        self.xds_port = 0
        self.debug_port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._grpc: grpc.aio.Server | None = None
        self._http: _EmbeddedUvicorn | None = None
        self._started = False

    async def _apply(self, changed_at: float) -> None:
        state = self.source.current()
        self.metrics.config_updates.inc()
        self.metrics.invalid_documents.set(sum(p.severity == "error" for p in state.problems))
        try:
            push = await self.cache.apply_state(state, changed_at)
        except Exception:  # a bug must not stop every later push: the next change retries
            log.exception("applying the mesh state failed; proxies keep their snapshots")
            return
        log.info("push %s: %d of %d proxies changed, %d translations (%d reused), %.1f ms",
                 push.version, push.pushed, push.proxies, push.translations, push.reused,
                 push.millis)  # fmt: skip

    def _on_source_change(self, _: MeshState) -> None:
        self.debouncer.trigger()

    async def start(self) -> None:
        state = await asyncio.to_thread(self.source.load)
        self.cache.set_state(state)
        self.metrics.invalid_documents.set(sum(p.severity == "error" for p in state.problems))

        limiter = SendLimiter(
            self.metrics, self.settings.max_concurrent_pushes, self.settings.send_timeout
        )
        server = grpc.aio.server(options=[("grpc.keepalive_time_ms", 30_000)])
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
            AdsService(self.cache, self.sync, self.metrics, Sequence(), limiter), server
        )
        self.xds_port = _add_port(server, self.settings.xds_port)
        if self.xds_port == 0:
            raise OSError(f"cannot listen for xDS on port {self.settings.xds_port}")
        await server.start()
        self._grpc = server

        sock = bind_all(self.settings.debug_port)
        self.debug_port = sock.getsockname()[1]
        app = build_app(self.cache, self.sync, self.metrics, lambda: self._started)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._http = _EmbeddedUvicorn(config)
        self._tasks = [
            asyncio.create_task(self._http.serve(sockets=[sock]), name="debug-http"),
            asyncio.create_task(self.source.run(self._on_source_change), name="config-source"),
            asyncio.create_task(self.debouncer.run(), name="debounce"),
        ]
        self._started = True
        source_name = self.settings.config_dir or type(self.source).__name__
        log.info("control plane serving: xds=%d debug=%d config=%s",
                 self.xds_port, self.debug_port, source_name)  # fmt: skip

    async def stop(self) -> None:
        self._started = False
        if self._http is not None:
            self._http.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace=0.5)
        for task in self._tasks:
            if task.get_name() != "debug-http":
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
