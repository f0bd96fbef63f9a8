"""The election's decisions, pure: with a hand-driven clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control.plane.leader.lease import (
    ElectionTiming,
    LeaseRecord,
    Seen,
    decide,
    micro_time,
    observe,
    parse_micro_time,
    released,
)

TIMING = ElectionTiming(lease_duration=15, renew_deadline=10, retry_period=2)
WALL = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def held_by(holder: str, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(
        holder, 15, WALL - timedelta(hours=1), WALL - timedelta(hours=1), transitions
    )


def test_no_lease_is_created_with_us_holding_it() -> None:
    attempt = decide("a", None, 100.0, WALL, TIMING)
    assert attempt.action == "create"
    assert attempt.record == LeaseRecord("a", 15, WALL, WALL, 0)


def test_another_holder_is_waited_out_on_our_own_clock() -> None:
    """Its renewTime is an hour old by our wall clock (skew, or a slow writer): irrelevant. What
    counts is how long *we* have seen the record unchanged."""
    seen = observe(None, held_by("b"), "7", now=100.0)
    assert decide("a", seen, 100.0, WALL, TIMING).action == "wait"
    assert decide("a", seen, 114.9, WALL, TIMING).action == "wait"
    taken = decide("a", seen, 115.0, WALL, TIMING)
    assert taken.action == "update"
    assert taken.record == LeaseRecord("a", 15, WALL, WALL, 4)


def test_a_renewal_restarts_the_wait() -> None:
    seen = observe(None, held_by("b"), "7", now=100.0)
    renewed = LeaseRecord("b", 15, WALL, WALL + timedelta(seconds=2), 3)
    seen = observe(seen, renewed, "8", now=112.0)
    assert seen.changed_at == 112.0
    assert decide("a", seen, 120.0, WALL, TIMING).action == "wait"
    same = observe(seen, renewed, "8", now=125.0)  # no change: the moment stays
    assert same is seen
    assert decide("a", same, 127.0, WALL, TIMING).action == "update"


def test_the_holder_renews_keeping_its_acquire_time() -> None:
    mine = held_by("a")
    attempt = decide("a", Seen(mine, "9", 0.0), 1.0, WALL, TIMING)
    assert attempt.action == "update"
    assert attempt.record is not None
    assert attempt.record.renew_time == WALL
    assert attempt.record.acquire_time == mine.acquire_time
    assert attempt.record.transitions == mine.transitions


def test_a_released_lease_is_taken_at_once() -> None:
    free = released(held_by("b"), WALL)
    assert (free.holder, free.duration_seconds, free.transitions) == ("", 1, 3)
    attempt = decide("a", observe(None, free, "10", now=50.0), 50.0, WALL, TIMING)
    assert attempt.action == "update"
    assert attempt.record is not None
    assert (attempt.record.holder, attempt.record.transitions) == ("a", 4)


def test_the_spec_round_trips_and_tolerates_garbage() -> None:
    record = LeaseRecord("a", 15, WALL, WALL, 2)
    spec = record.to_spec()
    assert spec["renewTime"] == "2026-05-01T12:00:00.123456Z"
    assert LeaseRecord.from_spec(spec) == record
    odd = LeaseRecord.from_spec({"holderIdentity": 7, "leaseDurationSeconds": -1,
                                 "renewTime": "yesterday"})  # fmt: skip
    assert (odd.holder, odd.duration_seconds, odd.renew_time) == ("", 15, None)
    assert LeaseRecord.from_spec(None) == LeaseRecord("", 15)
    assert parse_micro_time(micro_time(WALL)) == WALL


@pytest.mark.parametrize(("duration", "deadline", "retry"), [(10, 10, 2), (10, 5, 5), (10, 5, 0)])
def test_timings_that_could_elect_two_are_refused(
    duration: float, deadline: float, retry: float
) -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        ElectionTiming(duration, deadline, retry)
