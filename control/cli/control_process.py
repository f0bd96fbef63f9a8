"""The control plane's process, assembled: the config source, the debouncer, the snapshot cache,
the ADS gRPC server (plaintext, loopback by default: unauthenticated, for tools, tests and
benchmarks), the debug HTTP server and, with a CA, the secure ports (`control_identity`: ADS
over mutual TLS and the CSR API), run together in one asyncio loop. Only here (and
in the rest of `control.cli`) are servers and sources put together.

    async with ControlPlane(ControlSettings(config_dir=path, xds_port=0, debug_port=0)) as plane:
        ...  # plane.xds_port and plane.debug_port are the bound ports
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import grpc
from pydantic import BaseModel, ConfigDict, Field

from control.cli import gc_policy, malloc_policy
from control.cli.control_identity import IdentityConfig, PlaneIdentity
from control.config.mesh_config import MeshConfig
from control.plane.ca.ca_metrics import CitadelCounters
from control.plane.debounce import Debouncer
from control.plane.debug import build_app
from control.plane.metrics import Metrics
from control.plane.model.state import MeshState
from control.plane.sources.base import ConfigSource
from control.plane.sources.file import FileLimits, FileSource
from control.plane.sources.jwks import JwksSource
from control.plane.sync_status import SyncRegistry
from control.plane.xds.ads.drain import StreamDrain
from control.plane.xds.ads.peer_identity import PeerIdentityCheck
from control.plane.xds.ads.service import AdsService, add_to_server
from control.plane.xds.ads.stream import StreamLimits
from control.plane.xds.ads.throttle import DEFAULT_MAX_BYTES, SendLimiter
from control.plane.xds.cache.snapshot_cache import SnapshotCache
from control.plane.xds.cache.versions import VersionSequence
from control.serving import HttpServer, ListenerLimits, bind
from control.serving.grpc_limits import GrpcLimits, grpc_server

log = logging.getLogger(__name__)


class ControlSettings(BaseModel):
    """Parsed once at the edge (the CLI, or a test) and passed down."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The `file` source's directory; None when the caller passes its own source (`--kube`).
    config_dir: Path | None = None
    xds_port: int = Field(default=15010, ge=0, le=65535)
    # The plaintext, unauthenticated xDS port's address: loopback unless asked ("::" = all).
    xds_address: str = "127.0.0.1"
    debug_port: int = Field(default=15014, ge=0, le=65535)
    mesh: MeshConfig = Field(default_factory=MeshConfig)
    poll_interval: float = Field(default=0.1, gt=0)
    # What one config file may hold (`FileLimits`); beyond, the file is refused whole.
    config_max_file_bytes: int = Field(default=FileLimits().max_bytes, ge=1)
    config_max_documents: int = Field(default=FileLimits().max_documents, ge=1)
    debounce_quiet: float = Field(default=0.1, ge=0)
    debounce_max: float = Field(default=10.0, gt=0)
    max_concurrent_pushes: int = Field(default=100, ge=1)
    # A proxy that has not taken a response after this long gives its push slot back.
    send_timeout: float = Field(default=1.0, gt=0)
    # Bytes of responses being written at once, over all streams (`SendLimiter`): a push to
    # thousands of proxies holds at most this much (and as much again for slow readers).
    xds_max_bytes_in_flight: int = Field(default=DEFAULT_MAX_BYTES, ge=1)
    # What one ADS stream may send (`StreamLimits`); beyond, it is closed (RESOURCE_EXHAUSTED).
    xds_max_message_bytes: int = Field(default=StreamLimits().max_message_bytes, ge=1024)
    xds_max_names: int = Field(default=StreamLimits().max_names, ge=1)
    xds_max_requests_per_second: float = Field(default=StreamLimits().requests_per_second, gt=0)
    # On stop, the ADS streams are closed spread over this many seconds (`StreamDrain`), so the
    # proxies move to another replica a few at a time. `mizzen control` defaults to 5 s.
    drain_duration: float = Field(default=0.0, ge=0)
    # What the xDS listener allows (`GrpcLimits`): connections, handshake deadline, recycling.
    xds_max_connections: int = Field(default=GrpcLimits().max_connections, ge=1)
    xds_handshake_timeout: float = Field(default=GrpcLimits().handshake_timeout, gt=0)
    xds_max_connection_age: float = Field(default=GrpcLimits().max_connection_age, ge=0)
    # What the debug listener allows (`ListenerLimits`): probes, scrapes and operators only.
    debug_max_connections: int = Field(default=64, ge=1)
    # The bearer token that opens `/debug/*` to a non-loopback client (None: loopback only).
    debug_token: str | None = Field(default=None, min_length=16, repr=False)
    # The process's memory policies (`gc_policy`, `malloc_policy`: process-wide, so only the
    # process's own entry point, `mizzen control`, turns them on; a plane inside another
    # process does not).
    manage_memory: bool = False


def _add_port(server: grpc.aio.Server, host: str, port: int) -> int:
    """`host` "::" or "": all addresses (`[::]`, dual-stack, or `0.0.0.0` where IPv6 is off);
    else that address. 0 on failure."""
    if host in ("", "::", "[::]"):
        addresses = [f"[::]:{port}", f"0.0.0.0:{port}"]
    else:
        addresses = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    for address in addresses:
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:
            continue
        if bound:
            return bound
    return 0


def _citadel(metrics: Metrics) -> CitadelCounters:
    return CitadelCounters(
        csr_requests=metrics.csr_requests,
        issued=metrics.certs_issued,
        authentication_failures=metrics.csr_authentication_failures,
        sign_errors=metrics.csr_refused,
    )


class ControlPlane:
    def __init__(
        self,
        settings: ControlSettings,
        *,
        source: ConfigSource | None = None,
        metrics: Metrics | None = None,
        cache: SnapshotCache | None = None,
        identity: IdentityConfig | None = None,
    ) -> None:
        """`source`: the file source of `settings.config_dir` unless given. `cache` (made with
        `metrics`): a `SnapshotCache` of the mesh config's empty state unless given (a test's
        own translation, the benchmark's baseline). `identity`: the mesh CA and its ports
        (`control_identity`); the plane is ready only once the CA is loaded."""
        self.settings = settings
        self.metrics = metrics or Metrics()
        if source is None:
            if settings.config_dir is None:
                raise ValueError("the control plane needs a config_dir or a config source")
            source = FileSource(
                settings.config_dir, settings.mesh, settings.poll_interval,
                limits=FileLimits(settings.config_max_file_bytes, settings.config_max_documents),
                count_error=lambda reason: self.metrics.source_errors.labels(reason).inc(),
            )  # fmt: skip
        # RequestAuthentication keys behind jwksUri, fetched here and passed on as data.
        self.source: ConfigSource = JwksSource(source)
        self.sync = SyncRegistry()
        self.cache = cache or SnapshotCache(MeshState(mesh=settings.mesh), self.metrics)
        self.debouncer = Debouncer(self._apply, settings.debounce_quiet, settings.debounce_max)
        self.identity = (
            PlaneIdentity(identity, self.metrics.registry, _citadel(self.metrics))
            if identity is not None
            else None
        )
        self.xds_port = 0
        self.debug_port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._grpc: grpc.aio.Server | None = None
        self._drain = StreamDrain()  # the streams of every ADS port
        self._http: HttpServer | None = None
        self._started = False
        self._conditions: list[Callable[[], bool]] = []

    def require_for_readiness(self, condition: Callable[[], bool]) -> None:
        """`/ready` answers 200 only while `condition()` holds too (the webhooks' serving
        certificate: a replica the Service routes admission reviews to must be able to answer
        them). Add before `start`, so there is no moment ready without it."""
        self._conditions.append(condition)

    def ready(self) -> bool:
        """Started (the first full state built, the CA loaded) and every added condition."""
        return self._started and all(condition() for condition in self._conditions)

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
        if self.settings.manage_memory:
            gc_policy.install()  # what start-up imported frozen; the states are not
            malloc_policy.install()  # buffers reused in the heap, not mapped again per push
        state = await asyncio.to_thread(self.source.load)
        self.cache.set_state(state)
        self.metrics.invalid_documents.set(sum(p.severity == "error" for p in state.problems))

        limiter = SendLimiter(
            self.metrics,
            self.settings.max_concurrent_pushes,
            self.settings.send_timeout,
            self.settings.xds_max_bytes_in_flight,
        )
        limits = StreamLimits(
            max_message_bytes=self.settings.xds_max_message_bytes,
            max_names=self.settings.xds_max_names,
            requests_per_second=self.settings.xds_max_requests_per_second,
            request_burst=max(1, round(2 * self.settings.xds_max_requests_per_second)),
        )
        grpc_limits = GrpcLimits(
            max_connections=self.settings.xds_max_connections,
            handshake_timeout=self.settings.xds_handshake_timeout,
            max_message_bytes=limits.max_message_bytes,
            max_connection_age=self.settings.xds_max_connection_age,
        )
        server = grpc_server(grpc_limits)
        nonces = VersionSequence()
        ads = AdsService(
            self.cache, self.sync, self.metrics, nonces, limiter, limits, drain=self._drain
        )
        add_to_server(ads, server)
        self.xds_port = _add_port(server, self.settings.xds_address, self.settings.xds_port)
        if self.xds_port == 0:
            where = f"{self.settings.xds_address} port {self.settings.xds_port}"
            raise OSError(f"cannot listen for xDS on {where}")
        await server.start()
        self._grpc = server

        app = build_app(
            self.cache, self.sync, self.metrics, self.ready, self.source.problems,
            token=self.settings.debug_token,
        )  # fmt: skip
        debug_limits = ListenerLimits(max_connections=self.settings.debug_max_connections)
        self._http = HttpServer(app, name="debug-http", limits=debug_limits)
        self._http.start(bind("::", self.settings.debug_port))
        self.debug_port = self._http.port
        if self.identity is not None:  # not ready (the debug server says so) until loaded
            secure_ads = AdsService(
                self.cache,
                self.sync,
                self.metrics,
                nonces,
                limiter,
                limits,
                PeerIdentityCheck(),
                self._drain,
            )
            await self.identity.start(
                lambda s: add_to_server(secure_ads, s),
                grpc_limits,
            )
        self._tasks = [
            asyncio.create_task(self.source.run(self._on_source_change), name="config-source"),
            asyncio.create_task(self.debouncer.run(), name="debounce"),
        ]
        self._started = True
        source_name = self.settings.config_dir or type(self.source).__name__
        log.info("control plane serving: %s config=%s", self.ports_line(), source_name)

    def ports_line(self) -> str:
        """`xds=P debug=P [secure=P ca=P]`: the ports bound (as `mizzen control` prints them)."""
        line = f"xds={self.xds_port} debug={self.debug_port}"
        if self.identity is not None and self.identity.loaded:
            line += f" secure={self.identity.secure_port} ca={self.identity.ca_port}"
        return line

    async def stop(self) -> None:
        self._started = False  # not ready: the Service sends new proxies elsewhere
        # Both ports' streams (plaintext and mutual TLS), a few at a time, before any port closes.
        closed = await self._drain.drain(self.settings.drain_duration)
        if closed:
            log.info("drained %d ADS streams over %gs", closed, self.settings.drain_duration)
        if self.identity is not None:
            await self.identity.stop()
        if self._grpc is not None:
            await self._grpc.stop(grace=0.5)
        if self._http is not None:
            await self._http.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.settings.manage_memory:
            gc_policy.uninstall()

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
