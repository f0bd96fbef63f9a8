"""The snapshot cache: the current mesh state, and the latest consistent snapshot of every
connected proxy.

A new state is a push. The push translates only what the change can affect
(`MeshTranslation.successor`), shares each translation between the proxies with the same inputs,
and wakes only the proxies whose resources changed; a type whose content did not change keeps
its version and is not sent again. A snapshot that fails the consistency check is refused
(logged, counted) and the proxy keeps its previous one. (The benchmark's baseline, every proxy
translated alone and pushed on every change, is built in `hack/bench/baseline.py`.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from control.logsafe import untrusted
from control.plane.memo import IdentityMemo
from control.plane.metrics import Metrics
from control.plane.model.state import MeshState
from control.plane.xds.cache.snapshot import Packer, Snapshot, build_snapshot, same_content
from control.plane.xds.cache.versions import VersionSequence
from control.plane.xds.translate import consistency
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.resources import Resources
from control.plane.xds.translate.shared import MeshTranslation

log = logging.getLogger(__name__)

# Translations kept for no connected proxy (gone, or a debug preview) before they are let go:
# beyond this and as many as are connected, the next connect or disconnect prunes them.
MIN_KEPT_TRANSLATIONS = 256


class Watch:
    """One ADS stream's interest in its proxy's snapshot; `notify` wakes the stream. The
    stream reads `snapshot` and `last_error` from here (never a copy) and `close`s it."""

    def __init__(self, cache: SnapshotCache, proxy: Proxy, notify: Callable[[], None]) -> None:
        self._cache = cache
        self.proxy = proxy
        self.notify = notify
        self.snapshot: Snapshot | None = None
        self.last_error: str | None = None
        self.resources: Resources | None = None  # the last translation (shared object)

    def close(self) -> None:
        self._cache.cancel(self)


@dataclass
class PushRecord:
    """What the latest push did, for `/debug/pushz` and the benchmark."""

    version: str = ""
    translations: int = 0  # outbound halves translated (shared between proxies)
    reused: int = 0  # outbound halves kept from the previous push
    proxies: int = 0  # connected proxies
    pushed: int = 0  # proxies that got a new snapshot
    millis: float = 0.0
    change: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0  # monotonic
    changed_at: float = 0.0  # monotonic time of the change that led to this push

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "translations": self.translations,
            "reused": self.reused,
            "proxies": self.proxies,
            "pushed": self.pushed,
            "millis": round(self.millis, 3),
            "change": self.change,
        }


class SnapshotCache:
    def __init__(
        self,
        state: MeshState,
        metrics: Metrics,
        versions: VersionSequence | None = None,
        *,
        translation: MeshTranslation | None = None,
    ) -> None:
        """`translation`: the first state's translation, of the kind every later one is made
        by (`MeshTranslation`; a test may pass its own); by default `MeshTranslation(state)`."""
        self.metrics = metrics
        self.versions = versions or VersionSequence()
        self.translation = translation or MeshTranslation(state)
        self.packer = Packer()
        self._checked: IdentityMemo[Resources, list[str]] = IdentityMemo()  # consistency
        self._unresolved: IdentityMemo[Resources, list[consistency.Reference]] = IdentityMemo()
        self.watches: set[Watch] = set()
        self.last_push = PushRecord()

    @property
    def state(self) -> MeshState:
        return self.translation.state

    def watch(self, proxy: Proxy, notify: Callable[[], None]) -> Watch:
        watch = Watch(self, proxy, notify)
        self._update(watch, time.monotonic(), self.versions.next())
        self.watches.add(watch)
        self._prune()
        return watch

    def cancel(self, watch: Watch) -> None:
        self.watches.discard(watch)
        self._prune()

    def _prune(self) -> None:
        """The translation's memos down to what connected proxies use, once they hold more
        than twice that (so the cost, a pass over the watches, is spread over as many
        connects and disconnects as translations it lets go)."""
        if self.translation.kept > max(MIN_KEPT_TRANSLATIONS, 2 * len(self.watches)):
            self.translation.keep_only([watch.proxy for watch in self.watches])

    def set_state(self, state: MeshState, changed_at: float | None = None) -> PushRecord:
        """One push, all at once (start-up and tests)."""
        record, watches = self._begin(state, changed_at)
        for watch in watches:
            self._step(record, watch)
        return self._finish(record)

    async def apply_state(
        self, state: MeshState, changed_at: float | None = None, slice_seconds: float = 0.02
    ) -> PushRecord:
        """One push that gives the event loop back every `slice_seconds`: streams write the
        snapshots already made (and read ACKs) while the rest of the push is computed, and the
        debug endpoints stay responsive however big the push. Not to be run concurrently."""
        record, watches = self._begin(state, changed_at)
        until = time.monotonic() + slice_seconds
        for watch in watches:
            self._step(record, watch)
            if time.monotonic() > until:
                await asyncio.sleep(0)
                until = time.monotonic() + slice_seconds
        return self._finish(record)

    def _begin(self, state: MeshState, changed_at: float | None) -> tuple[PushRecord, list[Watch]]:
        started = time.monotonic()
        try:
            self.translation, change = self.translation.successor(state)
            described = change.describe()
        except Exception:  # a bug in the change analysis: translate everything afresh
            log.exception("change analysis failed; this push re-translates everything")
            self.translation = self.translation.fresh(state)
            described = {"everything": True}
        self.packer.next_push()
        self._checked.next_round()
        self._unresolved.next_round()
        record = PushRecord(self.versions.next(), proxies=len(self.watches), change=described)
        record.started = started
        record.changed_at = started if changed_at is None else changed_at
        # Watches that connect meanwhile are translated from the new state when they open.
        return record, list(self.watches)

    def _step(self, record: PushRecord, watch: Watch) -> None:
        if watch not in self.watches:
            return  # disconnected meanwhile
        error_before = watch.last_error
        if self._update(watch, record.changed_at, record.version):
            record.pushed += 1
            watch.notify()  # a new snapshot to push
        elif watch.last_error != error_before:
            watch.notify()  # a new error to show

    def _finish(self, record: PushRecord) -> PushRecord:
        record.translations = self.translation.translations
        record.reused = self.translation.reused
        record.millis = (time.monotonic() - record.started) * 1000
        self.metrics.translations.inc(record.translations)
        self.metrics.push_proxies.observe(record.pushed)
        self.last_push = record
        return record

    def snapshot_for(self, proxy: Proxy) -> Resources:
        """Translate for any proxy, connected or not (the debug endpoint's preview)."""
        return self.translation.for_proxy(proxy)

    def _problems(self, resources: Resources) -> list[str]:
        """The consistency check, once per shared translation (and half of one) and push."""
        return self._checked.get(
            resources, lambda: consistency.problems(resources, self._half_unresolved)
        )

    def _half_unresolved(self, half: Resources) -> list[consistency.Reference]:
        return self._unresolved.get(half, lambda: consistency.unresolved(half))

    def _update(self, watch: Watch, changed_at: float, version: str) -> bool:
        """Re-translate one proxy; True when it has a new snapshot to push."""
        try:
            resources = self.translation.for_proxy(watch.proxy)
        except Exception as error:  # a translation bug must not take the stream down
            self.metrics.translation_errors.inc()
            watch.last_error = f"translation failed: {type(error).__name__}: {error}"
            log.exception(
                "translation for %s failed; keeping its last snapshot", untrusted(watch.proxy.key)
            )
            return False
        if resources is watch.resources and watch.snapshot is not None:
            return False  # the same shared object as before: nothing of this proxy changed
        watch.resources = resources
        problems = self._problems(resources)
        if problems:
            self.metrics.inconsistent.inc()
            watch.last_error = "inconsistent snapshot refused: " + "; ".join(problems[:5])
            log.error("snapshot for %s refused: %s", untrusted(watch.proxy.key),
                      untrusted("; ".join(problems[:20]), 2000))  # fmt: skip
            return False
        watch.last_error = None
        candidate = self._snapshot(watch.snapshot, resources, version, changed_at)
        if candidate is None:
            return False
        watch.snapshot = candidate
        return True

    def _snapshot(
        self, previous: Snapshot | None, resources: Resources, version: str, changed_at: float
    ) -> Snapshot | None:
        """The proxy's next snapshot, or None when its content is what it has already."""
        candidate = build_snapshot(resources, previous, version, changed_at, self.packer)
        return None if same_content(previous, candidate) else candidate
