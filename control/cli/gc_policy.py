"""The control-plane process's garbage-collection policy: the one place that tunes CPython's
cyclic collector (it is process-wide), applied by `mizzen control` (`ControlSettings.manage_gc`).

Why: the plane keeps a large, long-lived heap (the mesh state, the translations and snapshots)
and a translation makes many objects that survive (its output). CPython's collector then runs
full collections that walk the whole heap, again and again, though almost all of it lives on:
with the defaults ~35% of a cold translation of 1,000 AuthorizationPolicies is the collector
(`hack/bench/bench_policy.py` measures it). So:

- `install()` (start-up, after the first state is built) raises the young generation's threshold
  (`THRESHOLDS`: fewer, larger young collections; a translation's temporaries die by
  reference counting anyway) and settles the heap.
- `settle()` (after each state build) freezes the heap (`gc.freeze()`, O(1): every tracked
  object moves to the permanent generation, which no collection walks), so the translations
  that follow walk only what they make.
- Frozen objects are still freed by reference counting when the state that holds them is
  replaced; only garbage *cycles* among them stay. So when the heap has grown by `THAW_GROWTH`
  since the last full collection (allocated blocks, `sys.getallocatedblocks()`, a cheap count),
  `settle()` first thaws everything and runs one full collection: the memory that frozen cycles
  hold stays bounded by that growth, as CPython's own rule bounds its old generation (a full
  collection once it grew by 25%). The cost: one full walk per 25% of growth, at a state build
  rather than in the middle of a push.
- `uninstall()` puts CPython's defaults back (tests, the benchmark's comparison).
"""

from __future__ import annotations

import gc
import sys
import threading
from dataclasses import dataclass
from typing import Final

# gen0: containers allocated (net) before a young collection; CPython's default is 700.
THRESHOLDS: Final = (10_000, 10, 10)
CPYTHON_DEFAULTS: Final = (700, 10, 10)
THAW_GROWTH: Final = 1.25


@dataclass
class GcStats:
    """What the policy did (tests and the benchmark read it)."""

    installed: bool = False
    settles: int = 0
    full_collections: int = 0  # thawed, then a full collection
    blocks_after_full: int = 0  # `sys.getallocatedblocks()` right after the last one


_lock = threading.Lock()
_stats = GcStats()
_saved: tuple[int, int, int] = CPYTHON_DEFAULTS


def stats() -> GcStats:
    """A copy of the policy's counters."""
    with _lock:
        return GcStats(**vars(_stats))


def install() -> None:
    """Apply the policy to this process (idempotent) and settle the heap once."""
    global _saved
    with _lock:
        if not _stats.installed:
            threshold = gc.get_threshold()
            _saved = (threshold[0], threshold[1], threshold[2])
            gc.set_threshold(*THRESHOLDS)
            _stats.installed = True  # the first settle thaws and collects everything
    settle()


def settle() -> None:
    """After a state build: freeze the heap, so later collections walk only what is made from
    now on; thaw and collect everything first once the heap grew by `THAW_GROWTH`. A no-op
    unless installed."""
    with _lock:
        if not _stats.installed:
            return
        _stats.settles += 1
        blocks = sys.getallocatedblocks()
        if blocks > _stats.blocks_after_full * THAW_GROWTH:
            gc.unfreeze()  # frozen cycles that became garbage are collected now
            gc.collect()
            _stats.full_collections += 1
            _stats.blocks_after_full = sys.getallocatedblocks()
        gc.freeze()  # O(1): the generations' lists joined to the permanent one


def uninstall() -> None:
    """CPython's behaviour back: the saved thresholds, nothing frozen (idempotent)."""
    with _lock:
        if not _stats.installed:
            return
        gc.unfreeze()
        gc.set_threshold(*_saved)
        _stats.installed = False
