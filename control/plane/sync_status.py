"""What each connected proxy was sent, ACKed and NACKed, per type (`/debug/syncz`), and whether
it is in sync: it ACKed, for every type it subscribed to, the version of its latest snapshot."""

from __future__ import annotations

import datetime
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from control.plane.xds.cache.snapshot import Snapshot
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.resources import PUSH_ORDER, SHORT_NAMES


def _iso(seconds: float | None) -> str | None:
    """A wall-clock time as `/debug/syncz` shows it; kept as a float until then (every response
    records one: formatting it each time was a visible part of a connect storm)."""
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds")


@dataclass
class TypeStatus:
    sent: str | None = None
    sent_at: float | None = None  # time.time()
    acked: str | None = None
    nacked: str | None = None
    nack_error: str | None = None
    pushes: int = 0
    nacks: int = 0

    def as_json(self, latest: str | None = None) -> dict[str, Any]:
        return {
            "latest": latest,
            "inSync": latest is not None and self.acked == latest,
            "sent": self.sent,
            "sentAt": _iso(self.sent_at),
            "acked": self.acked,
            "nacked": self.nacked,
            "nackError": self.nack_error,
            "pushes": self.pushes,
            "nacks": self.nacks,
        }


class SnapshotView(Protocol):
    """Where a stream's proxy snapshot and last error live (the cache's watch): read through,
    never copied, so the status cannot fall behind."""

    snapshot: Snapshot | None
    last_error: str | None


@dataclass
class StreamStatus:
    stream_id: int
    proxy: Proxy
    view: SnapshotView
    api: str = "sotw"  # or "delta"
    connected_since: float = field(default_factory=time.time)
    types: dict[str, TypeStatus] = field(default_factory=dict)
    sending_since: float | None = None  # a response the proxy has not taken yet (monotonic)
    slow: bool = False  # a send outlasted the send timeout

    @property
    def error(self) -> str | None:
        return self.view.last_error

    def snapshot(self) -> Snapshot | None:
        return self.view.snapshot

    def of(self, type_url: str) -> TypeStatus:
        name = SHORT_NAMES.get(type_url, type_url)
        found = self.types.get(name)
        if found is None:  # made once per type, not per response and ACK
            found = self.types[name] = TypeStatus()
        return found

    def sent(self, type_url: str, version: str) -> None:
        status = self.of(type_url)
        status.sent, status.sent_at = version, time.time()
        status.pushes += 1

    def acked(self, type_url: str, version: str) -> None:
        self.of(type_url).acked = version

    def caught_up(self, type_url: str, version: str) -> None:
        """A new version with nothing in it for this proxy (Delta): it already has it all,
        provided it ACKed what it was sent last."""
        status = self.of(type_url)
        if status.acked is not None and status.acked == status.sent:
            status.sent = status.acked = version

    def nacked(self, type_url: str, version: str, message: str) -> None:
        status = self.of(type_url)
        status.nacked, status.nack_error = version, message
        status.nacks += 1

    def as_json(self) -> dict[str, Any]:
        snapshot = self.snapshot()
        latest = {
            SHORT_NAMES[t]: snapshot.version(t) for t in PUSH_ORDER
        } if snapshot is not None else {}  # fmt: skip
        types = {name: self.types[name].as_json(latest.get(name)) for name in sorted(self.types)}
        return {
            "proxy": self.proxy.node_id,
            "pod": self.proxy.pod,
            "namespace": self.proxy.namespace,
            "connectedSince": _iso(self.connected_since),
            "api": self.api,
            "error": self.error,
            "inSync": bool(types) and all(t["inSync"] for t in types.values()),
            "push": snapshot.push if snapshot is not None else None,
            "pushes": sum(t.pushes for t in self.types.values()),
            "slow": self.slow,
            "types": types,
        }


class SyncRegistry:
    def __init__(self) -> None:
        self._streams: dict[int, StreamStatus] = {}
        self._ids = itertools.count(1)

    def open(self, proxy: Proxy, view: SnapshotView, api: str) -> StreamStatus:
        status = StreamStatus(next(self._ids), proxy, view, api)
        self._streams[status.stream_id] = status
        return status

    def close(self, status: StreamStatus) -> None:
        self._streams.pop(status.stream_id, None)

    def __len__(self) -> int:
        return len(self._streams)

    def syncz(self) -> dict[str, Any]:
        """Keyed by `<pod>.<namespace>`; a later stream of the same pod (reconnect) wins."""
        return {
            s.proxy.key: s.as_json()
            for s in sorted(self._streams.values(), key=lambda s: s.stream_id)
        }
