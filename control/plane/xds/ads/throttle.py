"""Bounded, non-blocking pushes: at most `concurrency` responses are being handed to proxies at
once, and a proxy that does not take its response (a stopped Envoy, a full gRPC window) gives
its slot back after `slow_after` seconds and keeps waiting on its own, so it never delays the
others. Each stream writes only from its own task; nothing global is held while writing.

The bytes of responses being written are bounded too (`max_bytes`): a response is made only
when it fits (`ByteBudget`), so a push to thousands of proxies that read slower than the
control plane writes (a connect storm, a mesh without Sidecars: megabytes per proxy) holds at
most that much in gRPC's write buffers instead of every proxy's response at once. A write that
outlasts `slow_after` moves its bytes to a second budget of the same size, so proxies that do
not read hold at most that much and never stop the others; beyond it they wait in the first."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from control.plane.metrics import Metrics

DEFAULT_MAX_BYTES = 128 * 1024 * 1024


class ByteBudget:
    """At most `limit` bytes held; first come, first served. One request larger than the
    whole budget goes alone (when nothing else is held)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.limit

    def try_take(self, size: int) -> bool:
        if self._waiting or not self.fits(size):
            return False
        self.held += size
        return True

    async def take(self, size: int) -> None:
        if self.try_take(size):
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiting.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back(size)  # granted as it was cancelled
            else:
                self._waiting.remove(entry)
                self._grant()  # a larger request at the head may have been holding others
            raise

    def give_back(self, size: int) -> None:
        self.held -= size
        self._grant()

    def _grant(self) -> None:
        while self._waiting:
            size, waiter = self._waiting[0]
            if not self.fits(size):
                return
            self._waiting.popleft()
            self.held += size
            waiter.set_result(None)


class SendLimiter:
    def __init__(
        self,
        metrics: Metrics,
        concurrency: int = 100,
        slow_after: float = 1.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.metrics = metrics
        self.slow_after = slow_after
        self._slots = asyncio.Semaphore(concurrency)
        self.writing = ByteBudget(max_bytes)  # responses being written
        self.stalled = ByteBudget(max_bytes)  # writes that outlasted `slow_after`

    async def send(
        self, write: Callable[[], Awaitable[None]], on_slow: Callable[[bool], None], size: int = 0
    ) -> None:
        """Run one write of `size` bytes; `on_slow(True)` when it outlasts `slow_after` (its
        slot is given back then, and its bytes move to the stalled budget when they fit),
        `on_slow(False)` once it is done. Raises what the write raises."""
        await self.writing.take(size)
        budget = self.writing
        try:
            await self._slots.acquire()
        except BaseException:
            self.writing.give_back(size)
            raise
        holding = True

        def give_back() -> None:
            nonlocal holding, budget
            holding = False
            self._slots.release()
            self.metrics.slow_sends.inc()
            if self.stalled.try_take(size):
                self.writing.give_back(size)
                budget = self.stalled
            on_slow(True)

        timer = asyncio.get_running_loop().call_later(self.slow_after, give_back)
        try:
            await write()
        finally:
            timer.cancel()
            budget.give_back(size)
            if holding:
                self._slots.release()
            else:
                on_slow(False)
