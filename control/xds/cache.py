"""The snapshot cache: the current mesh state, and the latest consistent snapshot of every
connected proxy. A new state re-translates for each proxy; a snapshot that fails the
consistency check is refused (logged, counted) and the proxy keeps its previous one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

from control.model.state import MeshState
from control.xds.metrics import Metrics
from control.xds.snapshot import Snapshot, build_snapshot, same_content
from control.xds.translate import consistency
from control.xds.translate.proxy import Proxy
from control.xds.translate.resources import Resources
from control.xds.translate.sidecar import translate, translation_key
from control.xds.versions import Sequence

log = logging.getLogger(__name__)

Translator = Callable[[MeshState, Proxy], Resources]
# What of a proxy its translation depends on (see `sidecar.translation_key`); None: no sharing.
TranslationKey = Callable[[MeshState, Proxy], Hashable]


class Watch:
    """One ADS stream's interest in its proxy's snapshot; `notify` wakes the stream."""

    def __init__(self, proxy: Proxy, notify: Callable[[], None]) -> None:
        self.proxy = proxy
        self.notify = notify
        self.snapshot: Snapshot | None = None
        self.last_error: str | None = None


class SnapshotCache:
    def __init__(
        self,
        state: MeshState,
        metrics: Metrics,
        translator: Translator = translate,
        versions: Sequence | None = None,
        key: TranslationKey | None = translation_key,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.translator = translator
        self.key = key if translator is translate else None  # a custom translator: no sharing
        self.versions = versions or Sequence()
        self.watches: set[Watch] = set()

    def watch(self, proxy: Proxy, notify: Callable[[], None]) -> Watch:
        watch = Watch(proxy, notify)
        self._update(watch, time.monotonic(), {})
        self.watches.add(watch)
        return watch

    def cancel(self, watch: Watch) -> None:
        self.watches.discard(watch)

    def set_state(self, state: MeshState, changed_at: float | None = None) -> None:
        self.state = state
        when = time.monotonic() if changed_at is None else changed_at
        shared: dict[Hashable, Resources] = {}
        for watch in list(self.watches):
            error_before = watch.last_error
            if self._update(watch, when, shared) or watch.last_error != error_before:
                watch.notify()  # a new snapshot to push, or a new error to show

    def snapshot_for(self, proxy: Proxy) -> Resources:
        """Translate for any proxy, connected or not (the debug endpoint's preview)."""
        return self.translator(self.state, proxy)

    def _translate(self, proxy: Proxy, shared: dict[Hashable, Resources]) -> Resources:
        if self.key is None:
            return self.translator(self.state, proxy)
        key = self.key(self.state, proxy)
        if key not in shared:
            shared[key] = self.translator(self.state, proxy)
        return shared[key]

    def _update(self, watch: Watch, changed_at: float, shared: dict[Hashable, Resources]) -> bool:
        """Re-translate one proxy; True when it has a new snapshot to push."""
        try:
            resources = self._translate(watch.proxy, shared)
        except Exception as error:  # a translation bug must not take the stream down
            self.metrics.translation_errors.inc()
            watch.last_error = f"translation failed: {type(error).__name__}: {error}"
            log.exception("translation for %s failed; keeping its last snapshot", watch.proxy.key)
            return False
        problems = consistency.problems(resources)
        if problems:
            self.metrics.inconsistent.inc()
            watch.last_error = "inconsistent snapshot refused: " + "; ".join(problems[:5])
            log.error("snapshot for %s refused: %s", watch.proxy.key, "; ".join(problems[:20]))
            return False
        watch.last_error = None
        candidate = build_snapshot(resources, watch.snapshot, self.versions.next(), changed_at)
        if same_content(watch.snapshot, candidate):
            return False
        watch.snapshot = candidate
        return True
