"""Debouncing: a burst becomes one flush after the quiet period; a steady stream of changes is
still flushed when the maximum delay runs out."""

from __future__ import annotations

import asyncio
import time

import pytest

from control.plane.debounce import Debouncer

pytestmark = pytest.mark.anyio


async def test_a_burst_is_flushed_once_after_the_quiet_period() -> None:
    flushed: list[tuple[float, float]] = []
    # A quiet period far above the gaps of the burst: a loaded machine's scheduling delays
    # must not split the burst.
    debouncer = Debouncer(lambda first: flushed.append((first, time.monotonic())), 0.5, 5.0)
    task = asyncio.create_task(debouncer.run())
    try:
        start = time.monotonic()
        for _ in range(5):
            debouncer.trigger()
            await asyncio.sleep(0.03)
        last = time.monotonic()
        await asyncio.sleep(1.0)
        assert len(flushed) == 1
        first, at = flushed[0]
        assert start <= first < start + 0.05  # the batch remembers when it began
        assert at - last >= 0.45  # waited for quiet
    finally:
        task.cancel()


async def test_a_steady_stream_is_flushed_at_the_maximum_delay() -> None:
    flushes: list[float] = []
    # Quiet longer than the whole stream: only the maximum delay can flush it.
    debouncer = Debouncer(lambda _: flushes.append(time.monotonic()), quiet=1.0, max_delay=0.2)
    task = asyncio.create_task(debouncer.run())
    try:
        start = time.monotonic()
        while time.monotonic() - start < 0.7:
            debouncer.trigger()
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.15)
        assert 2 <= len(flushes) <= 6, flushes  # never starved by the quiet period
    finally:
        task.cancel()
