"""Bounded, non-blocking pushes: at most `concurrency` responses are being handed to proxies at
once, and a proxy that does not take its response (a stopped Envoy, a full gRPC window) gives
its slot back after `slow_after` seconds and keeps waiting on its own, so it never delays the
others. Each stream writes only from its own task; nothing global is held while writing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from control.xds.metrics import Metrics


class SendLimiter:
    def __init__(self, metrics: Metrics, concurrency: int = 100, slow_after: float = 1.0) -> None:
        self.metrics = metrics
        self.slow_after = slow_after
        self._slots = asyncio.Semaphore(concurrency)

    async def send(
        self, write: Callable[[], Awaitable[None]], on_slow: Callable[[bool], None]
    ) -> None:
        """Run one write; `on_slow(True)` when it outlasts `slow_after`, `on_slow(False)` once
        it is done. Raises what the write raises (the stream is broken)."""
        await self._slots.acquire()
        holding = True
        task = asyncio.ensure_future(write())
        try:
            done, _ = await asyncio.wait({task}, timeout=self.slow_after)
            self._slots.release()
            holding = False
            if not done:
                self.metrics.slow_sends.inc()
                on_slow(True)
                await asyncio.wait({task})
                on_slow(False)
            task.result()
        finally:
            if holding:
                self._slots.release()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            elif not task.cancelled():
                task.exception()  # retrieved: a broken stream is the caller's news, not a leak
