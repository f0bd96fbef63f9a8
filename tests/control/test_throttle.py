"""The send limiter: at most N writes at once, and a write that hangs gives its slot back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

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


async def test_bytes_being_written_are_bounded() -> None:
    """Many writes of 40 bytes with a budget of 100: at most 2 at once (the third waits)."""
    limiter = SendLimiter(Metrics(), concurrency=50, slow_after=5, max_bytes=100)
    held = peak = 0

    async def write() -> None:
        nonlocal held, peak
        held += 40
        peak = max(peak, held)
        await asyncio.sleep(0.02)
        held -= 40

    await asyncio.gather(*(limiter.send(write, lambda _: None, 40) for _ in range(8)))
    assert peak == 80
    assert limiter.writing.held == 0


async def test_a_response_larger_than_the_budget_goes_alone() -> None:
    limiter = SendLimiter(Metrics(), concurrency=50, slow_after=5, max_bytes=100)
    order: list[str] = []

    def writer(name: str) -> Callable[[], Awaitable[None]]:
        async def write() -> None:
            order.append(f"{name}+")
            await asyncio.sleep(0.02)
            order.append(f"{name}-")

        return write

    await asyncio.gather(
        limiter.send(writer("small"), lambda _: None, 10),
        limiter.send(writer("huge"), lambda _: None, 500),
        limiter.send(writer("after"), lambda _: None, 10),  # first come, first served
    )
    assert order == ["small+", "small-", "huge+", "huge-", "after+", "after-"]


async def test_proxies_that_do_not_read_hold_the_stalled_budget_not_the_others() -> None:
    """Two stuck writes of 60 bytes (budget 100): the first moves to the stalled budget after
    `slow_after`, the second cannot and stays; a later write still goes once the first moved."""
    limiter = SendLimiter(Metrics(), concurrency=50, slow_after=0.05, max_bytes=100)
    release = asyncio.Event()

    async def stuck() -> None:
        await release.wait()

    async def quick() -> None:
        await asyncio.sleep(0)

    first = asyncio.create_task(limiter.send(stuck, lambda _: None, 60))
    await asyncio.sleep(0.1)
    assert (limiter.writing.held, limiter.stalled.held) == (0, 60)
    second = asyncio.create_task(limiter.send(stuck, lambda _: None, 60))
    await asyncio.sleep(0.1)
    assert (limiter.writing.held, limiter.stalled.held) == (60, 60)  # no room to move
    await asyncio.wait_for(limiter.send(quick, lambda _: None, 40), 1)  # fits beside it
    release.set()
    await asyncio.gather(first, second)
    assert (limiter.writing.held, limiter.stalled.held) == (0, 0)


async def test_a_cancelled_waiter_lets_the_next_one_go() -> None:
    limiter = SendLimiter(Metrics(), concurrency=50, slow_after=5, max_bytes=100)
    release = asyncio.Event()

    async def stuck() -> None:
        await release.wait()

    async def quick() -> None:
        await asyncio.sleep(0)

    holder = asyncio.create_task(limiter.send(stuck, lambda _: None, 50))
    await asyncio.sleep(0.01)
    big = asyncio.create_task(limiter.send(quick, lambda _: None, 90))  # waits for the holder
    await asyncio.sleep(0.01)
    small = asyncio.create_task(limiter.send(quick, lambda _: None, 10))  # queued behind big
    await asyncio.sleep(0.01)
    assert not small.done()
    big.cancel()  # the stream went away while waiting
    await asyncio.wait_for(small, 1)
    release.set()
    await holder
    assert limiter.writing.held == 0
