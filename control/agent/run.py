"""`mizzen agent run`: bootstrap, supervise Envoy, serve health, drain on SIGTERM.

Lifecycle: render the bootstrap → start Envoy (as the proxy uid when we are root) → serve
readiness and status → on SIGTERM or SIGINT: readiness turns 503 at once, Envoy's listeners
drain for the drain duration, Envoy is terminated, the agent exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from control.agent.admin import EnvoyAdmin
from control.agent.envoy_binary import find_envoy
from control.agent.envoy_process import EnvoyLaunch, prepare_launch
from control.agent.node import mizzen_version
from control.agent.settings import AgentSettings
from control.agent.status import ProxyHealth, StatusEndpoints, bind, make_server
from control.agent.supervisor import Supervisor

log = logging.getLogger("mizzen.agent")


@dataclass(frozen=True)
class AgentPorts:
    """The ports actually bound (0 in the settings means "any free port")."""

    readiness: int | None
    status: int | None


async def _serve_health(
    endpoints: StatusEndpoints, settings: AgentSettings
) -> tuple[list[tuple[uvicorn.Server, asyncio.Task[None]]], AgentPorts]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    bound: dict[str, int | None] = {"readiness": None, "status": None}
    wanted = {"readiness": settings.options.readiness_port, "status": settings.status_port}
    for name, port in wanted.items():
        if settings.status_port == 0 and name == "status":
            continue  # "status port 0": the pod asked for no health checking at all
        sock = bind(port)
        bound[name] = sock.getsockname()[1]
        app = endpoints.readiness_app() if name == "readiness" else endpoints.status_app()
        server = make_server(app)
        servers.append((server, asyncio.create_task(server.serve(sockets=[sock]))))
    return servers, AgentPorts(readiness=bound["readiness"], status=bound["status"])


async def run_agent(
    settings: AgentSettings,
    *,
    on_started: Callable[[AgentPorts], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
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
    endpoints = StatusEndpoints(health, settings.instance_ip, settings.app_probes)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    supervising = asyncio.create_task(supervisor.run())
    try:
        servers, ports = await _serve_health(endpoints, settings)
        if on_started is not None:
            on_started(ports)
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
        await _shut_down(supervisor, supervising, servers, admin, launch)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _shut_down(
    supervisor: Supervisor,
    supervising: asyncio.Task[None],
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]],
    admin: EnvoyAdmin,
    launch: EnvoyLaunch,
) -> None:
    await supervisor.terminate()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(supervising, timeout=5)
    await supervisor.terminate()  # an Envoy started while we were stopping
    for server, task in servers:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
    await admin.aclose()
    if launch.owns_config_dir:
        shutil.rmtree(Path(launch.config_dir), ignore_errors=True)
    log.info("agent stopped")
