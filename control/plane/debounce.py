"""Debouncing config changes: act after 100 ms without a new change, or 10 s after the first
one at the latest (Istio's PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX), so a burst of edits
becomes one push and a steady stream of edits still gets pushed."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


class Debouncer:
    def __init__(
        self,
        flush: Callable[[float], Awaitable[None] | None],
        quiet: float = 0.1,
        max_delay: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Called with the (clock) time of the batch's first change; awaited when async (changes
        # meanwhile start the next batch, flushed after this one).
        self._flush = flush
        self.quiet = quiet
        self.max_delay = max_delay
        self._clock = clock
        self._first: float | None = None
        self._last = 0.0
        self._wake = asyncio.Event()

    def trigger(self) -> None:
        now = self._clock()
        if self._first is None:
            self._first = now
        self._last = now
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._first is not None:
                deadline = min(self._last + self.quiet, self._first + self.max_delay)
                delay = deadline - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                first, self._first = self._first, None
                result = self._flush(first)
                if inspect.isawaitable(result):
                    await result
