"""The control plane's garbage-collection policy (`control/cli/gc_policy.py`): `mizzen control`
turns it on; the plane installs it at start (before the first state) and puts CPython's
defaults back at stop; garbage cycles made after start-up are still collected by the collector
itself; repeated state rebuilds do not grow memory without bound."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from control.cli import control_cmd, gc_policy
from control.cli.control_identity import IdentityConfig
from control.cli.control_process import ControlPlane, ControlSettings
from control.plane.model.build import build_state
from control.plane.model.state import Document
from control.plane.sources.base import ConfigSource
from control.plane.xds.translate.authz import rbac
from control.plane.xds.translate.authz.inbound import MeshPolicies
from tests.control.planes import bookinfo_config, fast_settings


@pytest.fixture(autouse=True)
def _defaults_back() -> Iterator[None]:
    """Each test starts and ends with CPython's behaviour in this (shared) test process."""
    gc_policy.uninstall()
    yield
    gc_policy.uninstall()
    assert gc.get_freeze_count() == 0


class _Node:
    """A garbage cycle: each node points at the next, the last at the first."""

    def __init__(self) -> None:
        self.next: _Node | None = None
        self.payload = [object() for _ in range(8)]


def _cycle(length: int) -> _Node:
    first = node = _Node()
    for _ in range(length - 1):
        node.next = _Node()
        node = node.next
    node.next = first
    return first


class _MadeError(Exception):
    """Raised by the test's plane factory: the settings seen, nothing served."""


def test_mizzen_control_turns_the_policy_on(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    control_cmd.configure(parser)
    args = parser.parse_args(["--config-dir", str(tmp_path)])
    seen: list[ControlSettings] = []

    def make_plane(
        settings: ControlSettings,
        source: ConfigSource | None,
        identity: IdentityConfig | None = None,
    ) -> ControlPlane:
        seen.append(settings)
        raise _MadeError

    with pytest.raises(_MadeError):
        control_cmd.run(args, make_plane)
    assert seen[0].manage_memory is True
    assert ControlSettings().manage_memory is False  # a plane inside another process: untouched


async def _until(condition: object, seconds: float = 10.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.anyio
async def test_the_plane_installs_the_policy_before_the_first_state_and_uninstalls(
    tmp_path: Path,
) -> None:
    config = bookinfo_config(tmp_path)
    async with ControlPlane(fast_settings(config, manage_memory=True)) as plane:
        assert gc.get_threshold() == gc_policy.THRESHOLDS
        frozen = gc_policy.state().frozen
        assert frozen > 0  # what start-up imported
        # The state is not frozen: its objects are in the collected generations.
        tracked = {id(o) for o in gc.get_objects()}  # the permanent generation not listed
        assert id(plane.cache.state) in tracked
        version = plane.cache.last_push.version
        (config / "extra.yaml").write_text(
            "apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: default}\n"
            "spec: {ports: [{name: http, port: 80}]}\n"
        )
        await _until(lambda: plane.cache.last_push.version != version)
        assert gc_policy.state().frozen == frozen  # a state build freezes nothing
    assert gc.get_threshold() == gc_policy.CPYTHON_DEFAULTS
    assert gc.get_freeze_count() == 0
    assert not gc_policy.state().installed


@pytest.mark.anyio
async def test_a_plane_without_the_setting_leaves_the_collector_alone(tmp_path: Path) -> None:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))):
        assert gc.get_threshold() == gc_policy.CPYTHON_DEFAULTS
        assert gc.get_freeze_count() == 0


def test_a_cycle_made_after_start_up_is_collected_by_the_collector_itself() -> None:
    gc_policy.install()
    cycle = _cycle(10)
    gone = weakref.ref(cycle)
    del cycle
    # No explicit collection: enough allocations that survive a while, as a translation makes.
    kept = [[i] for i in range(5 * gc_policy.THRESHOLDS[0] * gc_policy.THRESHOLDS[1])]
    assert gone() is None
    assert len(kept) > 0


def _policies(version: int) -> list[Document]:
    return [
        Document(
            f"{version}-{i}",
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": f"p{i}", "namespace": "foo"},
                "spec": {
                    "rules": [
                        {
                            "from": [
                                {"source": {"principals": [f"cluster.local/ns/n{i}/sa/v{version}"]}}
                            ],
                            "to": [{"operation": {"paths": [f"/v{version}/{i}/*"]}}],
                        }
                    ]
                },
            },
        )
        for i in range(100)
    ]


def _rebuilds(rounds: int, after_build: Callable[[], None]) -> tuple[int, int, bool]:
    """State builds and translations in a loop, each state new (nothing shared with the last)
    and holding a garbage cycle once replaced, as a control plane lives through config changes.
    No explicit collection. (blocks before, peak blocks, whether the first cycle was freed)."""

    def one(version: int) -> tuple[object, _Node]:
        state = build_state(_policies(version))
        after_build()
        policy = MeshPolicies(state, lambda h: False).for_workload("foo", {"app": "a"})
        rbac.clear_caches()  # as a config change: every policy new
        return policy.http_filters(), _cycle(500)

    kept = [one(v) for v in range(5)][-1:]  # warmed up: the memos and imports in place
    first = weakref.ref(kept[0][1])
    baseline = sys.getallocatedblocks()
    peak = 0
    for version in range(5, 5 + rounds):
        kept[:] = [one(version)]
        peak = max(peak, sys.getallocatedblocks())
    return baseline, peak, first() is None


def test_repeated_state_rebuilds_stay_bounded() -> None:
    """Garbage cycles of replaced states are freed by the collector itself (CPython's defaults
    hold about as much: ~18% over the baseline here, the policy ~20%)."""
    gc_policy.install()
    baseline, peak, freed = _rebuilds(60, lambda: None)
    assert freed
    assert peak < baseline * 1.3


def test_freezing_after_each_state_build_would_not_stay_bounded() -> None:
    """The previous test can fail: freezing every state (the policy does not) keeps each
    replaced state's cycles for ever."""
    before = sys.getallocatedblocks()
    cycle = _cycle(500)
    per_cycle = sys.getallocatedblocks() - before
    del cycle
    gc_policy.install()
    baseline, peak, freed = _rebuilds(60, gc.freeze)
    assert not freed
    assert peak - baseline > 50 * per_cycle
