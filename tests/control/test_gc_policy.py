"""The control plane's garbage-collection policy (`control/cli/gc_policy.py`): `mizzen control`
turns it on; the plane installs it at start, settles after each state build and puts CPython's
defaults back at stop; garbage cycles are still collected, made after start-up or frozen; and
repeated state rebuilds do not grow memory without bound."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import weakref
from collections.abc import Iterator
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
    assert seen[0].manage_gc is True
    assert ControlSettings().manage_gc is False  # a plane inside another process: untouched


async def _until(condition: object, seconds: float = 10.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.anyio
async def test_the_plane_installs_settles_after_each_state_build_and_uninstalls(
    tmp_path: Path,
) -> None:
    config = bookinfo_config(tmp_path)
    async with ControlPlane(fast_settings(config, manage_gc=True)) as plane:
        assert gc.get_threshold() == gc_policy.THRESHOLDS
        assert gc.get_freeze_count() > 0  # the start-up heap and the first state
        settled = gc_policy.stats().settles
        version = plane.cache.last_push.version
        (config / "extra.yaml").write_text(
            "apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: default}\n"
            "spec: {ports: [{name: http, port: 80}]}\n"
        )
        await _until(lambda: plane.cache.last_push.version != version)
        assert gc_policy.stats().settles > settled
    assert gc.get_threshold() == gc_policy.CPYTHON_DEFAULTS
    assert gc.get_freeze_count() == 0
    assert not gc_policy.stats().installed


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


def _blocks_of_a_state() -> int:
    before = sys.getallocatedblocks()
    state = _cycle(500)
    made = sys.getallocatedblocks() - before
    del state
    gc.collect()
    return made


def test_frozen_cycles_are_freed_once_the_heap_grew() -> None:
    """A state that holds cycles, frozen by a settle, then replaced: its cycles are freed at
    a later settle (thawed, fully collected), so memory stays bounded."""
    per_state = _blocks_of_a_state()
    gc_policy.install()
    baseline = sys.getallocatedblocks()
    thaws = gc_policy.stats().full_collections
    first = _cycle(500)
    gone = weakref.ref(first)
    del first
    peak = 0
    # Enough replaced states to cross the growth threshold three times over.
    for _ in range(int(3 * (gc_policy.THAW_GROWTH - 1) * baseline / per_state) + 10):
        state = _cycle(500)
        gc_policy.settle()  # frozen with the state (and the last one, now garbage)
        del state
        peak = max(peak, sys.getallocatedblocks())
    assert gone() is None
    assert gc_policy.stats().full_collections - thaws >= 2
    assert peak < baseline * gc_policy.THAW_GROWTH + 2 * per_state


def test_without_the_thaw_frozen_cycles_would_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous test can fail: with the thaw turned off, the same loop keeps every
    replaced state (each one's cycles stay frozen)."""
    per_state = _blocks_of_a_state()
    monkeypatch.setattr(gc_policy, "THAW_GROWTH", float("inf"))
    gc_policy.install()
    baseline = sys.getallocatedblocks()
    for _ in range(100):
        state = _cycle(500)
        gc_policy.settle()
        del state
    assert sys.getallocatedblocks() - baseline > 90 * per_state
    gc_policy.uninstall()
    gc.collect()


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


def test_repeated_state_rebuilds_stay_bounded() -> None:
    """State builds, settles and translations in a loop, each state new (nothing shared with
    the last), as a control plane lives through config changes: the heap stays bounded."""
    gc_policy.install()

    def one(version: int) -> object:
        state = build_state(_policies(version))
        gc_policy.settle()
        policy = MeshPolicies(state, lambda h: False).for_workload("foo", {"app": "a"})
        rbac.clear_caches()  # as a config change: every policy new
        return policy.http_filters()

    kept = [one(v) for v in range(5)][-1:]  # warmed up: the memos and imports in place
    baseline = sys.getallocatedblocks()
    peak = 0
    for version in range(5, 60):
        kept[:] = [one(version)]
        peak = max(peak, sys.getallocatedblocks())
    assert peak < baseline * gc_policy.THAW_GROWTH * 1.2
