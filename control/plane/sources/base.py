"""The seam between config sources and the control plane."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from control.plane.model.state import ConfigProblem, MeshState


class ConfigSource(Protocol):
    """Produces mesh states. `current()` is the latest (valid after `load()`); `run` watches
    for changes forever and calls `on_change` with each new state, from the event loop."""

    def load(self) -> MeshState:
        """Read everything once, synchronously (start-up, and tests)."""
        ...

    def current(self) -> MeshState: ...

    def problems(self) -> tuple[ConfigProblem, ...]:
        """The source's own trouble now (a directory it cannot list, ...), not a document's:
        shown at `/debug/configz` next to the state's problems."""
        ...

    async def run(self, on_change: Callable[[MeshState], None]) -> None: ...


def log_new_problems(log: logging.Logger, before: MeshState, after: MeshState) -> None:
    """Each problem of `after` that `before` did not have, once (errors as warnings, warnings
    as information): a source re-reading unchanged config never repeats itself."""
    known = set(before.problems)
    for problem in after.problems:
        if problem not in known:
            level = logging.WARNING if problem.severity == "error" else logging.INFO
            log.log(level, "config %s: %s", problem.severity, problem)
