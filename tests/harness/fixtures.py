"""pytest fixtures of the harness; `tests/conftest.py` imports them so every test can ask for a
`topology`. Tests using them carry `@pytest.mark.netns`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.harness.netns import Topology, fence_test_ranges, sweep


def netns_skip_reason() -> str | None:
    """Why network-namespace tests cannot run here, or None. Only a missing capability skips."""
    if os.geteuid() != 0:
        return "needs root: creates network namespaces, veth pairs and bridges"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` on PATH"
    return None


@pytest.fixture(scope="session")
def netns_session() -> Iterator[None]:
    """Once per run: skip without the means, sweep leftovers of dead runs before and after, and
    fence the test ranges off the machine's own routes (`fence_test_ranges`)."""
    reason = netns_skip_reason()
    if reason:
        pytest.skip(reason)
    sweep()
    fence_test_ranges()
    yield
    sweep(include_own=True)


@pytest.fixture
def topology(netns_session: None) -> Iterator[Topology]:
    """A fresh bridge with no pods yet (`topology.add_pod(name)`); removed even on failure."""
    with Topology() as topo:
        yield topo
