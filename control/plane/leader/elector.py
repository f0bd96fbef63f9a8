"""The election loop: try to acquire or renew every `retry_period`, report leadership changes,
release the Lease on a clean stop. The store's calls block, so they run in a thread."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from control.plane.leader.lease import (
    ElectionTiming,
    Seen,
    decide,
    observe,
    released,
)
from control.plane.leader.lease_store import LeaseConflictError, LeaseStore, LeaseUnavailableError

log = logging.getLogger("mizzen.leader")


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)


class LeaderElector:
    """`run()` until cancelled. `on_change(True)` when this candidate starts leading,
    `on_change(False)` when it stops (lost the Lease, could not renew in time, or stopping)."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        on_change: Callable[[bool], None],
        timing: ElectionTiming | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not identity:
            raise ValueError("a leader election candidate needs an identity")
        self.store = store
        self.identity = identity
        self.timing = timing or ElectionTiming()
        self.clock = clock or SystemClock()
        self._on_change = on_change
        self._seen: Seen | None = None
        self._renewed_at: float | None = None  # monotonic time of our last successful write
        self._leading = False
        self._failures_logged = False

    def is_leader(self) -> bool:
        """True only while the last renewal is younger than the renew deadline: a duty that
        checks this before writing never writes after another candidate could have taken over."""
        return self._leading and self._fresh()

    def _fresh(self) -> bool:
        """Our last renewal is younger than the renew deadline."""
        renewed = self._renewed_at
        return renewed is not None and self.clock.monotonic() - renewed < self.timing.renew_deadline

    async def run(self, release_on_stop: bool = True) -> None:
        try:
            while True:
                await asyncio.to_thread(self._try_once)
                self._set_leading(self._fresh())
                delay = self.timing.retry_period
                if not self._leading:
                    delay *= random.uniform(1.0, 1.2)  # noqa: S311 - spread, not cryptography
                await asyncio.sleep(delay)
        finally:
            was_leading = self._leading
            self._set_leading(False)
            if release_on_stop and was_leading:
                await asyncio.shield(asyncio.to_thread(self._release))

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        log.info("%s %s leading", self.identity, "started" if leading else "stopped")
        self._on_change(leading)

    def _try_once(self) -> None:
        """One acquire-or-renew attempt; failures only cost time (and, past the renew
        deadline, leadership)."""
        now = self.clock.monotonic()
        try:
            found = self.store.read()
            if found is not None:
                self._seen = observe(self._seen, found[0], found[1], now)
            else:
                self._seen = None
            attempt = decide(self.identity, self._seen, now, self.clock.wall(), self.timing)
            if attempt.action == "wait" or attempt.record is None:
                self._renewed_at = None  # another holds it: we lead no more, if we did
                return
            if attempt.action == "create":
                version = self.store.create(attempt.record)
            else:
                assert self._seen is not None
                version = self.store.write(attempt.record, self._seen.version)
            self._seen = observe(self._seen, attempt.record, version, now)
            self._renewed_at = now
            self._failures_logged = False
        except LeaseConflictError:
            log.debug("%s: the Lease changed under us; reading it again", self.identity)
        except LeaseUnavailableError as error:
            if not self._failures_logged:
                log.warning("%s: leader election: %s", self.identity, error)
                self._failures_logged = True

    def _release(self) -> None:
        seen = self._seen
        if seen is None or seen.record.holder != self.identity:
            return
        try:
            self.store.write(released(seen.record, self.clock.wall()), seen.version)
            log.info("%s released the lease", self.identity)
        except (LeaseConflictError, LeaseUnavailableError) as error:
            log.warning("%s: could not release the lease: %s", self.identity, error)
