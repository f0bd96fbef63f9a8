"""Delta (incremental) ADS: the proxy says what it subscribes to and what it already has; the
server sends only resources that are new or changed, and the names of those that went away.

- Subscriptions per type: clusters and listeners are wildcard unless the proxy names resources
  (an empty first subscription or `*` means everything); endpoints and routes are by name
  (`resource_names_subscribe` / `resource_names_unsubscribe`).
- Every resource carries its own version, a hash of its bytes in a scheme of this process
  family (`snapshot.resource_version`). A reconnecting proxy's `initial_resource_versions` are
  honoured only when a version is one of ours and equals the current one: that resource is then
  not sent again. Anything else (another control plane's versions, old content) is sent, and a
  resource it holds that we no longer have is named in `removed_resources`.
- A response's nonce is ACKed or NACKed per type, as in State of the World; the type's snapshot
  version travels as `system_version_info` and is what `/debug/syncz` compares. A NACKed
  response is not sent again until the resource changes (the proxy keeps its last good one).
- Requests are taken in as they arrive (`accept`): subscriptions are a set per type, so a change
  is applied to it at once; answers are kept only for the nonces still in flight (at most
  `_PENDING_NONCES` per type). What a burst of requests costs is bounded by the names a stream
  may hold (`StreamLimits.max_names`), never by how many requests were sent.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2

from control.plane.xds.ads.stream import WILDCARD_TYPES, Context, Stream, StreamDeps
from control.plane.xds.cache.snapshot import RESOURCE_VERSION_SCHEME
from control.plane.xds.cache.wire import Encoded, delta_response
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, PUSH_ORDER

log = logging.getLogger(__name__)

_PENDING_NONCES = 16  # responses of one type a proxy may leave unanswered before we forget


@dataclass
class _DeltaSubscription:
    wildcard: bool
    names: set[str] = field(default_factory=set)
    # What the proxy has, as far as we know: name -> resource version.
    known: dict[str, str] = field(default_factory=dict)
    # Nonces in flight -> the type version they carried (oldest first).
    pending: dict[str, str] = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        return self.wildcard or name in self.names


class DeltaStream(Stream):
    api = "delta"

    def __init__(self, deps: StreamDeps, context: Context) -> None:
        super().__init__(deps, context)
        self.subs: dict[str, _DeltaSubscription] = {}
        # Types to answer, and whether it is their first response (insertion order kept).
        self.to_answer: dict[str, bool] = {}
        # Answers to our nonces, in arrival order: (type, nonce, NACK message or None).
        self.answers: list[tuple[str, str, str | None]] = []

    def accept(self, request: discovery_pb2.DeltaDiscoveryRequest) -> None:
        type_url = request.type_url
        if not self.serves(type_url):
            log.debug("ignoring a delta request for unserved type %.200r", type_url)
            return
        # Interned: thousands of proxies name the same resources, and hold the names.
        subscribe = set(map(sys.intern, request.resource_names_subscribe))
        unsubscribe = set(request.resource_names_unsubscribe)
        size = len(subscribe) + len(unsubscribe) + len(request.initial_resource_versions)
        self.check_names(size, "one request")
        sub = self.subs.get(type_url)
        if sub is None:
            self._subscribe_first(type_url, request)
            self.to_answer[type_url] = True
        else:
            if request.response_nonce in sub.pending:
                error = request.error_detail.message if request.HasField("error_detail") else None
                self.answers.append((type_url, request.response_nonce, error))
                del self.answers[: -_PENDING_NONCES * len(PUSH_ORDER)]
            if not subscribe and not unsubscribe:
                return
            if "*" in subscribe:
                sub.wildcard = True
            if "*" in unsubscribe:
                sub.wildcard = False
            sub.names |= subscribe - {"*"}
            sub.names -= unsubscribe
            for name in unsubscribe:
                if not sub.wants(name):
                    sub.known.pop(name, None)  # resubscribing later must send it again
            self.to_answer.setdefault(type_url, False)
        self.check_names(sum(len(s.names) for s in self.subs.values()), "subscribed")

    def on_requests(self) -> list[Encoded]:
        answers, self.answers = self.answers, []
        for type_url, nonce, error in answers:
            self._answered(type_url, self.subs[type_url], nonce, error)
        responses: list[Encoded] = []
        to_answer, self.to_answer = self.to_answer, {}
        for type_url, first in to_answer.items():
            responses += self._respond(type_url, first=first)
        return responses

    def _subscribe_first(
        self, type_url: str, request: discovery_pb2.DeltaDiscoveryRequest
    ) -> _DeltaSubscription:
        names = set(map(sys.intern, request.resource_names_subscribe))
        wildcard = "*" in names or (not names and type_url in WILDCARD_TYPES)
        sub = _DeltaSubscription(wildcard, names - {"*"})
        for name, version in request.initial_resource_versions.items():
            if not sub.wants(name):
                continue
            # What the proxy holds is known, so a resource we no longer have is reported
            # removed. Its version counts only if it is one of ours; `_respond` then skips it
            # when it equals the current one. Any other version ("") is sent again.
            ours = version.startswith(RESOURCE_VERSION_SCHEME + "-")
            sub.known[name] = version if ours else ""
        self.subs[type_url] = sub
        return sub

    def _answered(
        self, type_url: str, sub: _DeltaSubscription, nonce: str, message: str | None
    ) -> None:
        version = sub.pending.pop(nonce, None)
        if version is not None:  # else not a nonce of ours in flight: stale or unknown
            self.answered(type_url, version, message)

    def on_change(self) -> list[Encoded]:
        responses: list[Encoded] = []
        for type_url in PUSH_ORDER:
            if type_url in self.subs:
                responses += self._respond(type_url)
        return responses

    def _respond(self, type_url: str, *, first: bool = False) -> list[Encoded]:
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None:
            return []  # nothing consistent yet: answered when a snapshot arrives
        sub = self.subs[type_url]
        typed = snapshot.types[type_url]
        sent: list[str] = []
        current = typed.resource_versions
        if sub.wildcard:
            names: Iterable[str] = current
        elif len(sub.names) < len(current):  # names we do not have cost nothing: the smaller side
            names = sorted(n for n in sub.names if n in current)
        else:
            names = [n for n in current if n in sub.names]
        for name in names:
            version = current[name]
            if sub.known.get(name) != version:
                sent.append(name)
                sub.known[name] = version
        removed = sorted(n for n in sub.known if n not in typed.resource_versions)
        for name in removed:
            del sub.known[name]
        if type_url == CLUSTER and ENDPOINT in self.subs:
            # An updated EDS cluster warms until its ClusterLoadAssignment arrives again (Envoy
            # does not reuse the one it holds): send those again, as Istio does.
            endpoints = self.subs[ENDPOINT].known
            for name in sent:
                endpoints.pop(name, None)
        assert self.status is not None
        if not sent and not removed and not (first and sub.wildcard):
            if not sub.pending:
                # Nothing of this proxy's changed (a resource it does not subscribe to did):
                # it holds all of the new version that concerns it.
                self.status.caught_up(type_url, typed.version)
            return []
        nonce = self.deps.nonces.next()
        sub.pending[nonce] = typed.version
        while len(sub.pending) > _PENDING_NONCES:
            del sub.pending[next(iter(sub.pending))]
        self.sent(type_url, typed.version)
        fields = typed.delta_fields  # serialized once, shared by every proxy sent them
        resources = [fields[n] for n in sent]
        return [delta_response(typed.version, resources, type_url, removed, nonce)]
