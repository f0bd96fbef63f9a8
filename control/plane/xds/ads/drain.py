"""Closing the ADS streams of a control plane that is going away, a few at a time.

When a replica stops (a rollout, a scale-down, a node drain) its proxies must move to another
replica. Cutting every stream at once sends them all back within the same backoff window: a
reconnect storm on the replicas that stay, each new stream costing a full translation and push.
So the streams are closed spread evenly over the drain duration, each with UNAVAILABLE and a
message saying why (the proxy reconnects through the Service to a ready replica: this one is no
longer ready), and a stream that arrives meanwhile is turned away at once, the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

# What a drained stream is told, and what Envoy logs about it.
DRAINING = "the control plane is shutting down; reconnect to another replica"


class StreamDrain:
    """The live streams' closers, and the drain that calls them."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._closers: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._sleep = sleep
        self.draining = False

    def register(self, close: Callable[[], None]) -> Callable[[], None]:
        """Track a live stream; `close` asks it to end. Returns the call that forgets it."""
        key = self._next
        self._next += 1
        self._closers[key] = close

        def forget() -> None:
            self._closers.pop(key, None)

        return forget

    def __len__(self) -> int:
        return len(self._closers)

    async def drain(self, duration: float) -> int:
        """Refuse new streams; close the live ones spread evenly over `duration` seconds (the
        first at once, the last at about `duration`·(n-1)/n). Returns how many were closed."""
        self.draining = True
        closers = list(self._closers.values())
        self._closers.clear()
        interval = duration / len(closers) if closers and duration > 0 else 0.0
        for index, close in enumerate(closers):
            if index and interval:
                await self._sleep(interval)
            close()
        return len(closers)
