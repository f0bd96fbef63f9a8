"""The agent's `:15020/stats/prometheus` (the shell): Envoy's metrics and the app's, fetched
concurrently and merged (`exposition`), as Istio's agent does when the injector pointed the
pod's `prometheus.io/*` annotations at it.

The app is fetched from 127.0.0.1 at the port and path its own annotations named (kept by the
injector in `MIZZEN_PROMETHEUS_ANNOTATIONS`), within `app_timeout` seconds and `app_max_bytes`;
a slow, huge or failing app leaves its part out (`mizzen_agent_app_metrics_up 0`) and never
delays or breaks the mesh's metrics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import httpx

from control.agent.telemetry.exposition import StandardSeries, merge
from control.telemetry.peer import Peer

APP_TIMEOUT: Final = 3.0
APP_MAX_BYTES: Final = 8 * 1024 * 1024
_ACCEPT: Final = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"


@dataclass(frozen=True, slots=True)
class AppMetrics:
    """Where the app serves its metrics (from its own `prometheus.io/*` annotations)."""

    port: int
    path: str = "/metrics"

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, str]) -> AppMetrics | None:
        """Istio's reading: scrape unless `scrape` is false, at `port` (required), `path`."""
        if annotations.get("scrape", "true").strip().lower() == "false":
            return None
        port = annotations.get("port", "").strip()
        if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
            return None
        path = annotations.get("path", "").strip() or "/metrics"
        return cls(int(port), path if path.startswith("/") else "/" + path)

    @classmethod
    def from_env_value(cls, text: str) -> AppMetrics | None:
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return cls.from_annotations({str(k): str(v) for k, v in data.items()})


class EnvoyStats(Protocol):
    """Where Envoy's own exposition comes from (its admin API; a stand-in in tests)."""

    async def prometheus(self) -> httpx.Response: ...


class AppTooLargeError(Exception):
    pass


class MetricsMerger:
    """Serves the merged exposition; `own` is this proxy's workload (None: the standard series
    are left out, as with metrics turned off)."""

    def __init__(
        self,
        admin: EnvoyStats,
        own: Peer | None,
        app: AppMetrics | None = None,
        *,
        app_timeout: float = APP_TIMEOUT,
        app_max_bytes: int = APP_MAX_BYTES,
    ) -> None:
        self.admin = admin
        self.series = StandardSeries(own) if own is not None else None
        self.app = app
        self.app_timeout = app_timeout
        self.app_max_bytes = app_max_bytes
        self._client = httpx.AsyncClient(timeout=app_timeout, trust_env=False)
        self._rendering: asyncio.Future[tuple[int, str]] | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _app_text(self) -> str | None:
        if self.app is None:
            return None
        url = f"http://127.0.0.1:{self.app.port}{self.app.path}"
        chunks: list[bytes] = []
        size = 0
        async with self._client.stream("GET", url, headers={"Accept": _ACCEPT}) as response:
            if response.status_code != 200:
                return None
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.app_max_bytes:
                    raise AppTooLargeError
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    async def _bounded_app_text(self) -> str | None:
        try:
            return await asyncio.wait_for(self._app_text(), self.app_timeout)
        except (httpx.HTTPError, AppTooLargeError, TimeoutError, OSError):
            return None

    async def render(self) -> tuple[int, str]:
        """(status, body): 503 only when Envoy itself cannot be read. Scrapes that arrive while
        one is being rendered share its result: a flood of scrapes costs one render at a time."""
        if self._rendering is None or self._rendering.done():
            self._rendering = asyncio.ensure_future(self._render())
        return await asyncio.shield(self._rendering)

    async def _render(self) -> tuple[int, str]:
        envoy, app = await asyncio.gather(self.admin.prometheus(), self._bounded_app_text())
        if envoy.status_code != 200:
            return 503, f"Envoy admin answered {envoy.status_code}\n"
        extra: list[str] = []
        if self.app is not None:
            extra = [
                "# TYPE mizzen_agent_app_metrics_up gauge",
                f"mizzen_agent_app_metrics_up {0 if app is None else 1}",
            ]
        merged = merge(envoy.text, self.series, app or "", extra)
        return 200, merged.text()
