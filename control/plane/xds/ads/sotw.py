"""State-of-the-World ADS (`StreamAggregatedResources`): every response of a type carries all of
the type's resources the proxy asked for. The rules:

- The first request of each type on a stream is always answered with the full current state,
  whatever `version_info` it carries: a proxy reconnecting (to a restarted or another replica)
  reports versions this process never sent, and must not be taken to have them.
- A request echoing the nonce of our latest response of its type is an ACK (or, with
  `error_detail`, a NACK: logged, counted, the proxy keeps its last good config and we do not
  resend the same version). A request with an older nonce is stale and ignored.
- A change of the requested names (EDS, RDS) is answered at once.
- Only the latest request of each type matters (it carries the names wanted and answers the
  latest nonce; an older one is stale by the rules above), so requests that arrive faster than
  they are served replace each other instead of queueing.
- When the proxy's snapshot changes, every subscribed type whose version moved is pushed, in
  the order clusters, endpoints, listeners, routes (make before break).
- Endpoints follow every clusters push, moved or not: Envoy warms an updated EDS cluster until a
  ClusterLoadAssignment for it arrives again (it does not reuse the one it holds), and its
  request for it looks like an ACK of the endpoints it has. Without the resend the cluster
  stays warming until Envoy's initial fetch timeout (15 s), as Istio's `AlwaysRespond` avoids.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Collection
from dataclasses import dataclass

from envoy.service.discovery.v3 import discovery_pb2

from control.plane.xds.ads.stream import WILDCARD_TYPES, Context, Stream, StreamDeps
from control.plane.xds.cache.wire import Encoded, sotw_response
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, PUSH_ORDER

log = logging.getLogger(__name__)
# One object for every equal set of requested names (proxies of a scope ask alike), held
# only as long as a subscription holds it.
_NAME_SETS: weakref.WeakValueDictionary[frozenset[str], frozenset[str]] = (
    weakref.WeakValueDictionary()
)


@dataclass
class _Subscription:
    names: frozenset[str]
    nonce: str = ""
    version: str | None = None


@dataclass(frozen=True, slots=True)
class _Request:
    """What a request says, kept instead of the request until the stream serves it: the parsed
    message (protobuf's C memory, a copy of every name: ~250 KB for a proxy naming 2,000
    ClusterLoadAssignments) would otherwise live that long, for each of thousands of streams
    that ACK one push at once."""

    type_url: str
    names: frozenset[str]
    nonce: str
    version: str
    error: str | None  # error_detail.message of a NACK


_NO_NAMES: frozenset[str] = frozenset()


def _names(request: discovery_pb2.DiscoveryRequest, sub: _Subscription | None) -> frozenset[str]:
    """The names a request subscribes to. Wildcard types' names are never used (a proxy gets
    all of them). The same names as the subscription holds (every ACK) are its very set; new
    ones are interned and shared: thousands of proxies name the same resources, and hold them."""
    if request.type_url in WILDCARD_TYPES:
        return _NO_NAMES
    names = frozenset(request.resource_names)
    if "*" in names:
        names = names - {"*"}
    if sub is not None and names == sub.names:
        return sub.names
    shared = _NAME_SETS.get(names)  # another proxy's equal set: its names are interned
    if shared is None:
        shared = frozenset(map(sys.intern, names))
        shared = _NAME_SETS.setdefault(shared, shared)
    return shared


def _summary(request: discovery_pb2.DiscoveryRequest, sub: _Subscription | None) -> _Request:
    error = request.error_detail.message if request.HasField("error_detail") else None
    return _Request(
        request.type_url,
        _names(request, sub),
        request.response_nonce,
        request.version_info,
        error,
    )


class SotwStream(Stream):
    api = "sotw"

    def __init__(self, deps: StreamDeps, context: Context) -> None:
        super().__init__(deps, context)
        self.subs: dict[str, _Subscription] = {}
        self.pending: dict[str, _Request] = {}  # latest, by type
        self.names_held: dict[str, int] = {}  # names of the latest request of each type

    def accept(self, request: discovery_pb2.DiscoveryRequest) -> None:
        type_url = request.type_url
        if not self.serves(type_url):
            log.debug("ignoring a request for unserved type %.200r", type_url)
            return
        self.names_held[type_url] = len(request.resource_names)
        self.check_names(sum(self.names_held.values()), "requested")
        self.pending.pop(type_url, None)  # the newer request supersedes it (and moves last)
        self.pending[type_url] = _summary(request, self.subs.get(type_url))

    def on_requests(self) -> list[Encoded]:
        responses: list[Encoded] = []
        while self.pending:
            type_url = next(iter(self.pending))
            responses += self.on_request(self.pending.pop(type_url))
        return responses

    def on_request(self, request: _Request) -> list[Encoded]:
        type_url, names = request.type_url, request.names
        sub = self.subs.get(type_url)
        if sub is None or not request.nonce:
            self.subs[type_url] = _Subscription(names)
            return self._respond(type_url)
        if request.nonce != sub.nonce:
            return []  # stale: answers a response that a newer one superseded
        if request.error is not None:
            self.answered(type_url, sub.version or "", request.error)
        else:
            self.answered(type_url, request.version, None)
        if type_url not in WILDCARD_TYPES and names != sub.names:
            sub.names = names
            return self._respond(type_url)
        return []

    def on_change(self) -> list[Encoded]:
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None:
            return []
        responses: list[Encoded] = []
        clusters_pushed = False
        for type_url in PUSH_ORDER:
            sub = self.subs.get(type_url)
            if sub is None:
                continue
            moved = sub.version != snapshot.version(type_url)
            if moved or (type_url == ENDPOINT and clusters_pushed):
                pushed = self._respond(type_url)
                clusters_pushed |= type_url == CLUSTER and bool(pushed)
                responses += pushed
        return responses

    def _respond(self, type_url: str) -> list[Encoded]:
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None:
            return []  # nothing consistent yet: answered when a snapshot arrives
        sub = self.subs[type_url]
        typed = snapshot.types[type_url]
        fields = typed.sotw_fields  # serialized once, shared by every proxy sent them
        resources: Collection[bytes]
        size: int | None = None  # counted when only some of the type's resources are sent
        if sub.names and type_url not in WILDCARD_TYPES:
            # Names the server does not have cost nothing: walk the smaller side.
            if len(sub.names) < len(fields):
                resources = [fields[n] for n in sorted(n for n in sub.names if n in fields)]
            elif sub.names.issuperset(fields):
                # It names all we have (a proxy's endpoints: thousands without Sidecars): the
                # snapshot's own view, no list per proxy held while the write waits its turn.
                resources, size = fields.values(), typed.sotw_size
            else:
                resources = [r for n, r in fields.items() if n in sub.names]
        else:
            resources, size = fields.values(), typed.sotw_size
        sub.nonce = self.deps.nonces.next()
        sub.version = typed.version
        self.sent(type_url, typed.version)
        return [sotw_response(typed.version, resources, type_url, sub.nonce, size)]
