"""The control-plane process's garbage-collection policy: the one place that tunes CPython's
cyclic collector (it is process-wide), installed by `mizzen control` at start-up
(`ControlSettings.manage_memory`) before the first state is built.

Why: a translation makes tens of thousands of objects that survive it (its output), and the
plane keeps a large heap that lives on (the state, the snapshots). With CPython's thresholds
(700, 10, 10) that volume triggers a full collection, a walk of the whole heap, in almost every
large translation: ~35% of a cold translation of 1,000 AuthorizationPolicies
(`hack/bench/bench_policy.py`). So:

- `THRESHOLDS`: a young collection every 10,000 net container allocations instead of 700; the
  older generations keep CPython's ratios (a middle collection every 10 young ones, a full one
  every 10 middle ones once the old generation grew by 25%, CPython's own rule). A full
  collection is then due every ~1M net allocations (about a dozen such translations) instead
  of every ~70,000; garbage cycles are still found, only later (the cost: the soak's peak RSS
  7-27% higher than with CPython's defaults, no steady growth), and temporaries die by
  reference counting anyway.
- `gc.freeze()` once, at start-up, before the first state: the modules, classes and schemas
  imported (they live as long as the process) move to the permanent generation, which no
  collection walks again. The states and translations are not frozen: a frozen object that
  later becomes part of a garbage cycle is never freed, and freezing after each state build
  measured no faster than this while the process grew 40% in the soak (`hack/soak.py`).
- `uninstall()` puts CPython's behaviour back (tests, the benchmark's comparison).
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from typing import Final

THRESHOLDS: Final = (10_000, 10, 10)
CPYTHON_DEFAULTS: Final = (700, 10, 10)


@dataclass(frozen=True)
class GcState:
    installed: bool
    frozen: int  # objects in the permanent generation


_lock = threading.Lock()
_installed = False
_saved: tuple[int, int, int] = CPYTHON_DEFAULTS


def state() -> GcState:
    with _lock:
        return GcState(_installed, gc.get_freeze_count())


def install() -> None:
    """Apply the policy to this process (idempotent): what exists now is collected once, the
    rest frozen, and the thresholds raised."""
    global _installed, _saved
    with _lock:
        if _installed:
            return
        first, second, third = gc.get_threshold()
        _saved = (first, second, third)
        gc.collect()  # garbage now is not frozen with the rest
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
        _installed = True


def uninstall() -> None:
    """CPython's behaviour back: the saved thresholds, nothing frozen (idempotent)."""
    global _installed
    with _lock:
        if not _installed:
            return
        gc.unfreeze()
        gc.set_threshold(*_saved)
        _installed = False
