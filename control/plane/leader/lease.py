"""Leader election over a Lease, as client-go's leaderelection decides it, as pure functions.

A candidate acquires the Lease when there is none, when it is released (no holder), or when the
holder has not renewed it for `lease_duration` *as measured by the candidate's own monotonic
clock since it last saw the record change* (never by comparing the holder's wall-clock
`renewTime` with its own: clocks between nodes disagree). The holder renews every
`retry_period`; one that could not renew for `renew_deadline` (shorter than `lease_duration`)
stops leading before anyone else may start. Every write carries the resourceVersion it read, so
two candidates never both win (the API server answers the second 409 Conflict).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class ElectionTiming:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "election timing needs 0 < retry_period < renew_deadline < lease_duration"
            )


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The spec of a Lease; `holder` "" means released."""

    holder: str
    duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_seconds,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = micro_time(self.renew_time)
        return spec

    @classmethod
    def from_spec(cls, spec: Any) -> LeaseRecord:
        """Tolerant: a Lease someone else wrote badly reads as held by its holder, with
        Kubernetes' defaults for what is missing."""
        spec = spec if isinstance(spec, dict) else {}
        holder = spec.get("holderIdentity")
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            holder=holder if isinstance(holder, str) else "",
            duration_seconds=duration if isinstance(duration, int) and duration > 0 else 15,
            acquire_time=parse_micro_time(spec.get("acquireTime")),
            renew_time=parse_micro_time(spec.get("renewTime")),
            transitions=transitions if isinstance(transitions, int) else 0,
        )


def micro_time(moment: datetime) -> str:
    """Kubernetes' MicroTime: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Seen:
    """The record as this candidate last saw it, and when (its monotonic clock) it changed."""

    record: LeaseRecord
    version: str
    changed_at: float


def observe(previous: Seen | None, record: LeaseRecord, version: str, now: float) -> Seen:
    """A change restarts the holder's time; the same record keeps the moment it first showed."""
    if previous is not None and previous.record == record and previous.version == version:
        return previous
    return Seen(record, version, now)


@dataclass(frozen=True, slots=True)
class Attempt:
    action: Literal["create", "update", "wait"]
    record: LeaseRecord | None = None


def decide(
    identity: str, seen: Seen | None, now: float, wall: datetime, timing: ElectionTiming
) -> Attempt:
    """What this candidate does next, given the Lease it read (None: there is none)."""
    duration = max(1, round(timing.lease_duration))
    if seen is None:
        return Attempt("create", LeaseRecord(identity, duration, wall, wall, 0))
    current = seen.record
    held_by_another = current.holder not in ("", identity)
    if held_by_another and now < seen.changed_at + current.duration_seconds:
        return Attempt("wait")
    if current.holder == identity:
        return Attempt("update", replace(current, duration_seconds=duration, renew_time=wall))
    return Attempt("update", LeaseRecord(identity, duration, wall, wall, current.transitions + 1))


def released(record: LeaseRecord, wall: datetime) -> LeaseRecord:
    """What the holder writes on shutdown: no holder, so the next candidate takes over at its
    next try instead of waiting out the lease."""
    return LeaseRecord("", 1, wall, wall, record.transitions)
