"""The send limiter: at most N writes at once, and a write that hangs gives its slot back."""

from __future__ import annotations

import asyncio
import time

import pytest

from control.plane.metrics import Metrics
from control.plane.xds.ads.throttle import SendLimiter

pytestmark = pytest.mark.anyio


async def test_concurrent_writes_are_bounded() -> None:
    limiter = SendLimiter(Metrics(), concurrency=2, slow_after=5)
    active = peak = 0

    async def write() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1

    await asyncio.gather(*(limiter.send(write, lambda _: None) for _ in range(6)))
    assert peak == 2


async def test_a_hanging_write_gives_its_slot_back() -> None:
    metrics = Metrics()
    limiter = SendLimiter(metrics, concurrency=1, slow_after=0.1)
    release = asyncio.Event()
    slow_states: list[bool] = []

    async def hanging() -> None:
        await release.wait()

    async def quick() -> None:
        await asyncio.sleep(0)

    stuck = asyncio.create_task(limiter.send(hanging, slow_states.append))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    await limiter.send(quick, lambda _: None)  # waits only for the slot, not for the hang
    assert time.monotonic() - started < 3  # the hanging write never ends by itself
    assert slow_states == [True]
    assert metrics.slow_sends._value.get() == 1
    release.set()
    await stuck
    assert slow_states == [True, False]
