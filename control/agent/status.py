"""The agent's HTTP endpoints: readiness (:15021) and status (:15020).

- `GET /healthz/ready` on both: 200 once Envoy is LIVE with its first clusters and listeners from
  the control plane, 503 with the reason otherwise, and 503 from the moment the agent drains.
- `GET /app-health/<container>/<livez|readyz|startupz>` on the status port: the app's original
  probe, run by the agent (`probes`); `GET /app-lifecycle/<container>/<poststartz|prestopz>`: the
  app's original httpGet/tcpSocket lifecycle hook, run the same way (the kubelet calls it).
- `GET /stats/prometheus` on the status port: Istio's standard metrics, Envoy's own and the
  app's, merged (`telemetry.merge`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from control import serving
from control.agent.admin import EnvoyAdmin, Readiness
from control.agent.probes import run_probe
from control.agent.settings import AppProbe
from control.agent.telemetry.merge import MetricsMerger
from injector import contract

_PROMETHEUS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class ProxyHealth:
    """What readiness depends on: the admin API of the current Envoy, and whether it runs."""

    admin: EnvoyAdmin
    envoy_running: Callable[[], bool]
    draining: bool = False

    async def readiness(self) -> Readiness:
        if self.draining:
            return Readiness(False, "draining: the pod is shutting down")
        if not self.envoy_running():
            return Readiness(False, "Envoy is not running")
        return await self.admin.readiness()


@dataclass
class StatusEndpoints:
    health: ProxyHealth
    pod_ip: str
    probes: Mapping[str, AppProbe] = field(default_factory=dict)
    metrics: MetricsMerger | None = None  # the merged exposition; None: Envoy's as it is

    async def ready(self, request: Request) -> Response:
        result = await self.health.readiness()
        return PlainTextResponse(result.reason + "\n", status_code=200 if result.ready else 503)

    async def app_health(self, request: Request) -> Response:
        probe = self.probes.get(request.url.path)
        if probe is None:
            return PlainTextResponse(f"no probe registered for {request.url.path}\n", 404)
        result = await run_probe(probe, self.pod_ip)
        return PlainTextResponse(result.detail + "\n", status_code=result.status)

    async def prometheus(self, request: Request) -> Response:
        try:
            if self.metrics is not None:
                status, body = await self.metrics.render()
                return Response(body, status, media_type=_PROMETHEUS_TYPE)
            upstream = await self.health.admin.prometheus()
        except httpx.HTTPError as error:
            return PlainTextResponse(f"Envoy admin unreachable ({type(error).__name__})\n", 503)
        return Response(upstream.content, upstream.status_code, media_type=_PROMETHEUS_TYPE)

    def readiness_app(self) -> Starlette:
        return Starlette(routes=[Route(contract.READINESS_PATH, self.ready)])

    def status_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(contract.READINESS_PATH, self.ready),
                Route(contract.APP_HEALTH_PREFIX + "{container}/{kind}", self.app_health),
                Route(contract.APP_LIFECYCLE_PREFIX + "{container}/{kind}", self.app_health),
                Route("/stats/prometheus", self.prometheus),
            ]
        )


def bind(port: int, *, ipv6: bool = False) -> socket.socket:
    """A health port's listening socket, bound before serving (a taken port fails the agent at
    once). An IPv6 pod's kubelet probes its IPv6 address, so such a pod listens on `::` (and on
    IPv4 too where the kernel allows both on one socket)."""
    return serving.bind("::" if ipv6 else "0.0.0.0", port)
