"""`mizzen agent run`: bootstrap, supervise Envoy, serve health, drain on SIGTERM.

Lifecycle: render the bootstrap → start Envoy (as the proxy uid when we are root) → serve
readiness and status → on SIGTERM or SIGINT: readiness turns 503 at once, Envoy's listeners
drain for the drain duration, Envoy is terminated, the agent exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
import signal
from pathlib import Path

from control.agent.admin import EnvoyAdmin
from control.agent.envoy_binary import find_envoy
from control.agent.envoy_process import EnvoyLaunch, prepare_launch, proxy_identity
from control.agent.identity import IdentityRuntime
from control.agent.node import mizzen_version
from control.agent.settings import AgentSettings
from control.agent.status import ProxyHealth, StatusEndpoints, bind
from control.agent.supervisor import Supervisor
from control.agent.telemetry.identity import metrics_merger
from control.agent.telemetry.merge import MetricsMerger
from control.serving import HttpServer, ListenerLimits

log = logging.getLogger("mizzen.agent")
# The readiness and status ports: the kubelet probes from the node's address, one connection
# per probe; a neighbour pod holding connections open is capped on its own address first.
_LIMITS = ListenerLimits(max_connections=256, max_connections_per_client=32)


async def _serve_health(endpoints: StatusEndpoints, settings: AgentSettings) -> list[HttpServer]:
    """Readiness always; the status server unless the pod set its port to 0 (no health
    checking at all, as `status.sidecar.istio.io/port: 0` means in Istio)."""
    apps = [(settings.options.readiness_port, endpoints.readiness_app())]
    if settings.status_port:
        apps.append((settings.status_port, endpoints.status_app()))
    ipv6 = ipaddress.ip_address(settings.instance_ip).version == 6
    servers = []
    for port, app in apps:
        server = HttpServer(app, name=f"agent-{port}", limits=_LIMITS, log_level=None)
        server.start(bind(port, ipv6=ipv6))
        servers.append(server)
    return servers


async def run_agent(settings: AgentSettings, *, stop: asyncio.Event | None = None) -> int:
    """Runs until SIGTERM/SIGINT (or `stop`, for callers that embed the agent); returns the
    exit status."""
    binary = find_envoy(settings.options.envoy_path)
    launch = prepare_launch(settings, binary, mizzen_version())
    log.info("envoy %s, bootstrap %s, as %s", binary, launch.config_dir, launch.run_as or "self")
    supervisor = Supervisor(
        launch,
        backoff_initial=settings.options.restart_backoff_initial,
        backoff_max=settings.options.restart_backoff_max,
    )
    admin = EnvoyAdmin(settings.options.admin_port)
    health = ProxyHealth(admin, lambda: supervisor.running)
    merger = metrics_merger(settings, admin)
    endpoints = StatusEndpoints(health, settings.instance_ip, settings.app_probes, merger)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    servers: list[HttpServer] = []
    supervising: asyncio.Task[None] | None = None
    identity = None
    if settings.identity is not None:
        identity = IdentityRuntime(settings.identity, proxy_identity(settings.options))
    try:
        if identity is not None:
            await identity.start()  # SDS listens before Envoy looks for it
        servers = await _serve_health(endpoints, settings)  # a taken port fails before Envoy
        supervising = asyncio.create_task(supervisor.run())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({supervising, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if supervising.done():
            supervising.result()  # Envoy could not be executed: raise OSError
        health.draining = True
        log.info("stopping: draining envoy for %.1fs", settings.options.drain_duration)
        await supervisor.drain(admin, settings.options.drain_duration)
        return 0
    finally:
        await _shut_down(supervisor, supervising, servers, admin, launch, merger)
        if identity is not None:
            await identity.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _shut_down(
    supervisor: Supervisor,
    supervising: asyncio.Task[None] | None,
    servers: list[HttpServer],
    admin: EnvoyAdmin,
    launch: EnvoyLaunch,
    merger: MetricsMerger | None = None,
) -> None:
    await supervisor.terminate()
    if supervising is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(supervising, timeout=5)
        await supervisor.terminate()  # an Envoy started while we were stopping
    for server in servers:
        await server.stop()
    await admin.aclose()
    if merger is not None:
        await merger.aclose()
    if launch.owns_config_dir:
        shutil.rmtree(Path(launch.config_dir), ignore_errors=True)
    log.info("agent stopped")
