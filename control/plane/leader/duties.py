"""Running the singleton duties exactly while this replica leads: each duty reconciles at the
start of leadership, whenever a trigger fires (a new namespace), and every `resync` seconds
(which also puts back what someone changed by hand); a failure is retried with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from control.plane.leader.elector import Clock, LeaderElector
from control.plane.leader.lease import ElectionTiming
from control.plane.leader.lease_store import LeaseStore

log = logging.getLogger("mizzen.leader")


class Duty(Protocol):
    name: str

    def reconcile(self) -> int:
        """One blocking pass; how many writes it made. Raises on failure."""
        ...


class Trigger(Protocol):
    """Something that asks for a pass early (a watch). `start` may call `poke` from any
    thread."""

    def start(self, poke: PokeCallback) -> None: ...

    def stop(self) -> None: ...


class PokeCallback(Protocol):
    def __call__(self) -> None: ...


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[:limit] + "..."


class DutyRunner:
    def __init__(
        self,
        duties: Sequence[Duty],
        resync: float = 60.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.duties = list(duties)
        self.resync = resync
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.passes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def poke(self) -> None:
        """Ask for a pass now; safe from any thread, a no-op when not running."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        failures = 0
        reported: dict[str, str] = {}
        try:
            while True:
                self._wake.clear()
                failed = False
                for duty in self.duties:
                    try:
                        await asyncio.to_thread(duty.reconcile)
                    except Exception as error:  # a failing duty must not stop the others
                        failed = True
                        text = _one_line(error)
                        if reported.get(duty.name) != text:  # once per distinct failure
                            log.warning("duty %s failed: %s", duty.name, text)
                            reported[duty.name] = text
                    else:
                        reported.pop(duty.name, None)
                self.passes += 1
                failures = failures + 1 if failed else 0
                delay = (
                    min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1))
                    if failed
                    else self.resync
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            self._loop = None
            self._wake = None


class Leadership:
    """An elector and the duties it runs while leading (with their triggers)."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: ElectionTiming | None = None,
        clock: Clock | None = None,
        resync: float = 60.0,
    ) -> None:
        self.elector = LeaderElector(store, identity, self._on_change, timing, clock)
        self.runner = DutyRunner([], resync)
        self.triggers: list[Trigger] = []
        self._task: asyncio.Task[None] | None = None

    def is_leader(self) -> bool:
        return self.elector.is_leader()

    def add(self, duty: Duty) -> None:
        self.runner.duties.append(duty)

    def add_trigger(self, trigger: Trigger) -> None:
        self.triggers.append(trigger)

    async def run(self, release_on_stop: bool = True) -> None:
        try:
            await self.elector.run(release_on_stop)
        finally:
            await self._stop_duties()

    def _on_change(self, leading: bool) -> None:
        if leading and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.runner.run())
            for trigger in self.triggers:
                trigger.start(self.runner.poke)
        elif not leading and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            for trigger in self.triggers:
                trigger.stop()

    async def _stop_duties(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            for trigger in self.triggers:
                trigger.stop()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
