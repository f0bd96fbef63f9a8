"""Bounded, non-blocking pushes: at most `concurrency` responses are being handed to proxies at
once, and a proxy that does not take its response (a stopped Envoy, a full gRPC window) gives
its slot back after `slow_after` seconds and keeps waiting on its own, so it never delays the
others. Each stream writes only from its own task; nothing global is held while writing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from control.plane.metrics import Metrics


class SendLimiter:
    def __init__(self, metrics: Metrics, concurrency: int = 100, slow_after: float = 1.0) -> None:
        self.metrics = metrics
        self.slow_after = slow_after
        self._slots = asyncio.Semaphore(concurrency)

    async def send(
        self, write: Callable[[], Awaitable[None]], on_slow: Callable[[bool], None]
    ) -> None:
        """Run one write; `on_slow(True)` when it outlasts `slow_after` (its slot is given back
        then), `on_slow(False)` once it is done. Raises what the write raises."""
        await self._slots.acquire()
        holding = True

        def give_back() -> None:
            nonlocal holding
            holding = False
            self._slots.release()
            self.metrics.slow_sends.inc()
            on_slow(True)

        timer = asyncio.get_running_loop().call_later(self.slow_after, give_back)
        try:
            await write()
        finally:
            timer.cancel()
            if holding:
                self._slots.release()
            else:
                on_slow(False)
