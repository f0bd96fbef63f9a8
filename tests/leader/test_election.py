"""Lease election with two control-plane replicas on the fake API server: one leader, the other
takes over when the leader's renewals stop or when it hands over on shutdown, and only the
leader writes."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.control_kube.conftest import eventually
from tests.control_kube.fake_cluster import FakeCluster
from tests.leader.ca import SwitchableRoots
from tests.leader.conftest import (
    TIMING,
    Candidate,
    lease_holder,
    make_candidate,
    running,
    stop,
)

pytestmark = pytest.mark.anyio


async def watch_leaders(candidates: list[Candidate], seconds: float) -> set[str]:
    """Sample who leads for a while; fails at once if two ever lead together."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leaders = [c.identity for c in candidates if c.leading]
        assert len(leaders) <= 1, f"two leaders at once: {leaders}"
        seen.update(leaders)
        await asyncio.sleep(0.01)
    return seen


async def test_one_leader_which_stays(cluster: FakeCluster, roots: SwitchableRoots) -> None:
    a, b = (make_candidate(cluster, name, roots) for name in ("cp-a", "cp-b"))
    async with running(a, b):
        await eventually(lambda: a.leading or b.leading, 3, "a leader")
        leader = a if a.leading else b
        assert lease_holder(cluster.fake) == leader.identity
        assert await watch_leaders([a, b], 1.5) == {leader.identity}  # renewals hold it
        lease = cluster.fake.objects("leases")[0]
        assert lease["spec"]["leaseTransitions"] == 0
        assert lease["spec"]["leaseDurationSeconds"] == 1


async def test_the_follower_takes_over_when_renewals_stop(
    cluster: FakeCluster, roots: SwitchableRoots
) -> None:
    a, b = (make_candidate(cluster, name, roots) for name in ("cp-a", "cp-b"))
    async with running(a, b):
        await eventually(lambda: a.leading or b.leading, 3, "a leader")
        leader, follower = (a, b) if a.leading else (b, a)
        leader.store.cut = True  # its renewals stop reaching the API server
        cut_at = time.monotonic()
        stepped_down = took_over = 0.0
        while not follower.leading:  # never both leading, sampled every 10 ms
            assert not (leader.leading and follower.leading), "two leaders at once"
            if not leader.leading and not stepped_down:
                stepped_down = time.monotonic() - cut_at
            assert time.monotonic() - cut_at < 5, "the follower never took over"
            await asyncio.sleep(0.01)
        took_over = time.monotonic() - cut_at
        # The old leader stops within its renew deadline; the follower starts only once the
        # lease ran out on its own clock (it saw the last renewal at most a retry before the cut).
        assert 0 < stepped_down <= TIMING.renew_deadline + 2 * TIMING.retry_period
        assert took_over >= TIMING.lease_duration - 2 * TIMING.retry_period
        assert lease_holder(cluster.fake) == follower.identity
        assert cluster.fake.objects("leases")[0]["spec"]["leaseTransitions"] == 1
        await watch_leaders([a, b], 0.5)


async def test_a_stopping_leader_hands_over_at_once(
    cluster: FakeCluster, roots: SwitchableRoots
) -> None:
    a, b = (make_candidate(cluster, name, roots) for name in ("cp-a", "cp-b"))
    async with running(a, b):
        await eventually(lambda: a.leading or b.leading, 3, "a leader")
        leader, follower = (a, b) if a.leading else (b, a)
        started = time.monotonic()
        await stop(leader)  # SIGTERM: the Lease is released
        assert lease_holder(cluster.fake) in ("", follower.identity)
        await eventually(lambda: follower.leading, 2, "the follower to take over")
        # Well before the lease would have run out (1 s): it was released, not waited out.
        assert time.monotonic() - started < TIMING.lease_duration * 0.8


async def test_only_the_leader_writes(cluster: FakeCluster, roots: SwitchableRoots) -> None:
    from tests.leader.test_duties import install_webhooks

    install_webhooks(cluster)
    a, b = (make_candidate(cluster, name, roots, resync=0.1) for name in ("cp-a", "cp-b"))
    async with running(a, b):
        await eventually(lambda: a.leading or b.leading, 3, "a leader")
        leader, follower = (a, b) if a.leading else (b, a)
        await eventually(lambda: leader.rest.writes, 3, "the leader's first writes")
        for name in ("n1", "n2", "n3"):  # work for whoever leads
            cluster.namespace(name)
            await asyncio.sleep(0.1)
        leader.store.cut = True
        await eventually(lambda: follower.leading, 3, "the follower to take over")
        for name in ("n4", "n5"):
            cluster.namespace(name)
        await eventually(
            lambda: {"n4", "n5"} <= {c["metadata"]["namespace"]
                                     for c in cluster.fake.objects("configmaps")},
            3, "root certificates in the new namespaces",
        )  # fmt: skip
    for candidate in (a, b):
        for method, path, holder in candidate.rest.writes:
            assert holder == candidate.identity, f"{candidate.identity} wrote {method} {path}"
    assert follower.rest.writes  # it did take over the duties
