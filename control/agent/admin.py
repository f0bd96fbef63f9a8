"""The few questions the agent asks Envoy's admin API (localhost only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httpx

_READINESS_STATS: Final = (
    "listener_manager.workers_started",
    "listener_manager.lds.update_success",
    "cluster_manager.cds.update_success",
)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


def readiness_from(state: str, stats: dict[str, int]) -> Readiness:
    """Ready means LIVE (admin `/ready`; the server.state gauge reads 0 before it is ever set,
    so it cannot tell PRE_INITIALIZING from LIVE), workers started, and the first clusters and
    listeners received from the control plane (Istio's rule)."""
    if state != "LIVE":
        return Readiness(False, f"Envoy is not LIVE (state {state or 'unknown'})")
    if stats.get("listener_manager.workers_started", 0) != 1:
        return Readiness(False, "Envoy's workers have not started")
    if stats.get("cluster_manager.cds.update_success", 0) < 1:
        return Readiness(False, "no clusters received from the control plane yet (CDS)")
    if stats.get("listener_manager.lds.update_success", 0) < 1:
        return Readiness(False, "no listeners received from the control plane yet (LDS)")
    return Readiness(True, "ready")


def parse_stats(text: str) -> dict[str, int]:
    """Envoy's plain-text stats (`name: value` lines); histograms and non-numbers skipped."""
    stats: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and value.strip().lstrip("-").isdigit():
            stats[name.strip()] = int(value)
    return stats


class EnvoyAdmin:
    """A client of the admin API at 127.0.0.1:`port`."""

    def __init__(self, port: int, timeout: float = 1.0) -> None:
        # trust_env=False: an HTTP(S)_PROXY in the proxy's environment (proxyMetadata can set
        # one) must never route the agent's localhost calls elsewhere.
        self._client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=timeout, trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def readiness(self) -> Readiness:
        pattern = "^(" + "|".join(name.replace(".", r"\.") for name in _READINESS_STATS) + ")$"
        try:
            state = await self._client.get("/ready")
            stats = await self._client.get("/stats", params={"filter": pattern})
        except httpx.HTTPError as error:
            return Readiness(False, f"Envoy admin unreachable ({type(error).__name__})")
        if stats.status_code != 200:
            return Readiness(False, f"Envoy admin answered {stats.status_code}")
        return readiness_from(state.text.strip(), parse_stats(stats.text))

    async def drain_listeners(self) -> bool:
        """Starts Envoy's graceful drain: listeners keep accepting for the drain time while
        every response asks clients to go away, then close. False if Envoy did not answer."""
        try:
            response = await self._client.post("/drain_listeners", params={"graceful": ""})
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def prometheus(self) -> httpx.Response:
        return await self._client.get("/stats/prometheus")
