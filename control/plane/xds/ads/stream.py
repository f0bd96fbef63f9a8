"""What an ADS stream does whatever its variant (State of the World or Delta): it learns its
proxy from the first request, watches the proxy's snapshot, and serves requests and changes
from one task of its own.

Changes coalesce, latest wins: a change only sets a flag; when the stream gets to it, it
answers from the proxy's snapshot as it is then. So a stream busy with (or stuck on) a slow
proxy never queues up old snapshots, and the push itself only ever flags streams.

Requests coalesce too, so a client that sends without reading costs a bounded amount: the
reader hands each request to the variant's `accept`, which keeps only what still matters (State
of the World: the latest request per type; Delta: the subscriptions, a set, and the answers to
nonces in flight), never a queue. A stream that sends more than `StreamLimits` allows (requests
per second sustained, resource names held) is closed with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from control.identity.spiffe import shorten
from control.logsafe import LogThrottle, untrusted
from control.plane.metrics import Metrics
from control.plane.sync_status import StreamStatus, SyncRegistry
from control.plane.xds.ads.drain import DRAINING, StreamDrain
from control.plane.xds.ads.throttle import SendLimiter
from control.plane.xds.cache.snapshot import Snapshot
from control.plane.xds.cache.versions import VersionSequence
from control.plane.xds.cache.wire import Encoded
from control.plane.xds.translate.proxy import Proxy, ProxyIdError, parse_node
from control.plane.xds.translate.resources import (
    CLUSTER,
    LISTENER,
    PUSH_ORDER,
    SECRET,
    SHORT_NAMES,
)

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
# What `/debug/syncz` keeps of a NACK's message.
_NACK_KEPT = 1024
# Types a proxy asks for as a whole (an empty name list means "everything"), as Envoy does.
WILDCARD_TYPES = (CLUSTER, LISTENER)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """What one ADS stream may ask of the server. An Envoy sends a few requests per push (one
    ACK per type), so 100 requests per second sustained is far above any honest proxy. Names a
    stream may hold: a proxy names the endpoints and route tables it needs (hundreds to a few
    thousand in a big mesh); names the server does not know cost nothing per push."""

    max_message_bytes: int = 4 * 1024 * 1024  # the gRPC server's receive limit
    max_names: int = 100_000  # resource names per request, and held by a stream (all types)
    requests_per_second: float = 100.0  # sustained
    request_burst: int = 200
    # The node a stream names on its first request: Istio's ids are a few hundred characters
    # (`sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`), its metadata a few KB (the
    # pod's labels); a stream holds both as long as it lives.
    max_node_id_chars: int = 1024
    max_node_metadata_bytes: int = 256 * 1024


def node_problem(node: base_pb2.Node, limits: StreamLimits) -> str | None:
    """Why `node` is refused (INVALID_ARGUMENT), or None. Its id must be printable ASCII
    without spaces, as Istio's are: it ends up in logs, metrics and debug pages."""
    if not node.id:
        return "the first request must carry node.id"
    if len(node.id) > limits.max_node_id_chars:
        return f"node.id: {len(node.id)} characters, more than {limits.max_node_id_chars}"
    if not (node.id.isascii() and node.id.isprintable()) or " " in node.id:
        return f"node.id: {node.id[:100]!r} has characters other than printable ASCII"
    size = node.metadata.ByteSize()
    if size > limits.max_node_metadata_bytes:
        return f"node.metadata: {size} bytes, more than {limits.max_node_metadata_bytes}"
    return None


class ProxyWatch(Protocol):
    """A stream's hold on its proxy's snapshot (the cache's `Watch`)."""

    proxy: Proxy
    snapshot: Snapshot | None
    last_error: str | None

    def close(self) -> None: ...


class Watcher(Protocol):
    """What a stream needs of the snapshot cache: to watch its proxy's snapshot, being told
    (`notify`) when it changes. The only thing a stream knows of the cache."""

    def watch(self, proxy: Proxy, notify: Callable[[], None]) -> ProxyWatch: ...


class PeerCheck(Protocol):
    def __call__(self, node_id: str, metadata: Mapping[str, Any], context: Any) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StreamDeps:
    """Everything an ADS stream uses, assembled once by `AdsService`."""

    watcher: Watcher
    sync: SyncRegistry
    metrics: Metrics
    nonces: VersionSequence
    limiter: SendLimiter
    limits: StreamLimits
    # On a port that requires client certificates: why the node may not be served to the
    # certificate's identity (`peer_identity.PeerIdentityCheck`), None when it may.
    check_peer: PeerCheck | None = None
    drain: StreamDrain = field(default_factory=StreamDrain)
    # Secrets (private keys: DestinationRule credentialName) go only to streams whose node was
    # checked against its client certificate (`check_peer`): on the plaintext port anyone may
    # claim any node id, so a request for them is ignored there (the cluster that names one
    # never warms: its connections fail, never go out without TLS).
    serves_secrets: bool = False
    # A NACK is logged once a minute per proxy and type, a refusal once every 10 s: a client
    # that repeats one is counted (metrics, /debug/syncz), not written out each time.
    nack_log: LogThrottle = field(default_factory=lambda: LogThrottle(60.0))
    refusal_log: LogThrottle = field(default_factory=lambda: LogThrottle(10.0))


class StreamRefusedError(Exception):
    """The client asked for more than `StreamLimits` allows; the message says what."""


class _StreamBrokenError(Exception):
    """A write failed: the client went away (or cancelled) while a response was in flight."""


class _RequestBudget:
    """A token bucket: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Stream:
    api = "sotw"

    def __init__(self, deps: StreamDeps, context: Context) -> None:
        self.deps = deps
        self.context = context
        self.limits: StreamLimits = deps.limits
        self.wake = asyncio.Event()
        # From the first request, until the stream opens: then the proxy is known, and the node
        # (an Envoy's metadata: KBs, up to 256 KiB, in protobuf's C memory) is let go.
        self.node: base_pb2.Node | None = None
        self.received = False
        self.changed = False
        self.ended = False
        self.refused: str | None = None  # why the stream is being closed
        self.draining = False  # the control plane is going away: end with UNAVAILABLE
        self.watch: ProxyWatch | None = None
        self.status: StreamStatus | None = None
        self.observed_generation = 0
        self._budget = _RequestBudget(
            self.limits.requests_per_second, self.limits.request_burst, time.monotonic
        )

    async def serve(self) -> None:
        """Serve the stream until it ends; requests are read from the context (`_read`)."""
        if self.deps.drain.draining:
            await self.context.abort(grpc.StatusCode.UNAVAILABLE, DRAINING)
        task = asyncio.current_task()
        assert task is not None
        reader = asyncio.create_task(self._read(task))
        forget = self.deps.drain.register(self._drain)
        try:
            try:
                await self._loop()
            except asyncio.CancelledError:
                if self.refused is None:
                    raise
                task.uncancel()  # the reader stopped a write the client never took
            except _StreamBrokenError as error:
                log.debug("ADS stream of %s broke: %s", self._who(), error)
                return
            if self.refused is not None:
                await self._refuse(self.refused)
            elif self.draining:
                await self._end_for_drain()
        finally:
            forget()
            reader.cancel()
            self._close()

    def _take(self, request: Any) -> bool:
        """Accept one request; False at the end of the stream."""
        if request is grpc.aio.EOF:
            return False
        if self.node is None and self.watch is None:
            # A copy: a part of the request would keep the whole parsed request alive.
            self.node = base_pb2.Node()
            if request.HasField("node"):
                self.node.CopyFrom(request.node)
        if not self._budget.take():
            raise StreamRefusedError(
                f"more than {self.limits.requests_per_second:g} requests per second"
            )
        self.accept(request)
        self.received = True
        self.wake.set()
        return True

    def _drain(self) -> None:
        self.draining = True
        self.wake.set()

    async def _end_for_drain(self) -> None:
        log.debug("closing the ADS stream of %s: draining", self._who())
        try:
            await asyncio.wait_for(
                self.context.abort(grpc.StatusCode.UNAVAILABLE, DRAINING),
                self.deps.limiter.slow_after,
            )
        except TimeoutError:
            log.debug("the ADS client of %s takes no status: dropped", self._who())

    async def _refuse(self, reason: str) -> None:
        """Close the stream with RESOURCE_EXHAUSTED; a client that takes nothing (its window is
        full) cannot take the status either, and is dropped after the send timeout."""
        self.deps.metrics.refused_streams.inc()
        if (held := self.deps.refusal_log.admit("refused")) is not None:
            log.warning("closing the ADS stream of %s: %s (%d more refusals not logged)",
                        self._who(), reason, held)  # fmt: skip
        status = self.context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, reason)
        try:
            await asyncio.wait_for(status, self.deps.limiter.slow_after)
        except TimeoutError:
            log.debug("the ADS client of %s takes no status either: dropped", self._who())

    async def _loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.refused is not None or self.draining:
                return
            if self.received:
                self.received = False
                if self.watch is None:
                    await self._open(self.node)
                for response in self.on_requests():
                    await self.send(response)
            if self.ended or self.refused is not None:
                return
            if self.changed:
                self.changed = False
                for response in self.on_change():
                    await self.send(response)

    async def _read(self, serving: asyncio.Task[None]) -> None:
        # `context.read()`, not the method's request iterator: grpc's iterator is a generator
        # that holds the last request while it waits for the next one, and no name here may
        # either. A proxy that sees every service names ~2,000 resources in each EDS request
        # (~250 KB of protobuf's C memory): held per stream, 2,000 streams hold half a GB.
        read = self.context.read
        try:
            while self._take(await read()):
                pass
        except asyncio.CancelledError:
            pass
        except StreamRefusedError as error:
            self.refused = str(error)
            # The loop closes the stream once its write is done; a client that does not read
            # would hold that write for ever, so after the send timeout the write is given up.
            stop = asyncio.get_running_loop().call_later(
                self.deps.limiter.slow_after, serving.cancel
            )
            serving.add_done_callback(lambda _: stop.cancel())
        except Exception as error:  # the stream broke: end it, whatever grpc raised
            log.debug("ADS stream read ended: %s", error)
        finally:
            self.ended = True
            self.wake.set()

    def _who(self) -> str:
        if self.watch is not None:
            return untrusted(self.watch.proxy.key)
        return repr(untrusted(self.node.id)) if self.node is not None else "an unknown proxy"

    def serves(self, type_url: str) -> bool:
        """Whether requests for `type_url` are answered on this stream."""
        if type_url == SECRET:
            return self.deps.serves_secrets
        return type_url in PUSH_ORDER

    def check_names(self, count: int, what: str) -> None:
        """Raises StreamRefusedError when `count` names are more than a stream may hold."""
        if count > self.limits.max_names:
            raise StreamRefusedError(
                f"{what}: {count} resource names, more than {self.limits.max_names}"
            )

    def _notify(self) -> None:
        self.changed = True
        self.wake.set()

    async def send(self, response: Encoded) -> None:
        assert self.status is not None
        status = self.status

        def slow(is_slow: bool) -> None:
            status.slow = is_slow

        if self.refused is not None:
            return  # closing: nothing more for this client
        status.sending_since = time.monotonic()
        try:
            # The bytes are made once the limiter lets this write go (a waiting stream holds
            # none), and are what the gRPC method writes as they are (`wire.passthrough`).
            write = lambda: self.context.write(response.data())  # noqa: E731
            await self.deps.limiter.send(write, slow, response.size)
        except Exception as error:  # grpc raises its own (private) types for a dead stream
            raise _StreamBrokenError(f"{type(error).__name__}: {error}") from None
        status.sending_since = None

    async def _open(self, node: base_pb2.Node | None) -> None:
        problem = node_problem(node or base_pb2.Node(), self.limits)
        if node is None or problem is not None:
            await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem or "no node")
            raise AssertionError("unreachable")  # abort raises
        metadata = json_format.MessageToDict(node.metadata)
        if self.deps.check_peer is not None:
            refusal = self.deps.check_peer(node.id, metadata, self.context)
            if refusal is not None:
                self.deps.metrics.identity_refused.inc()
                who = shorten(node.id, 200)
                log.warning("refusing the ADS stream of node %s: %s", who, refusal)
                await self.context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
                raise AssertionError("unreachable")  # abort raises
        try:
            proxy: Proxy = parse_node(node.id, metadata)
        except ProxyIdError as error:
            await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            raise  # abort raises; this only tells the type checker
        watch = self.deps.watcher.watch(proxy, self._notify)
        self.watch = watch
        self.node = None
        self.status = self.deps.sync.open(proxy, watch, self.api)
        self.deps.metrics.connected.inc()
        log.info("proxy %s connected (%s, %s)", untrusted(proxy.key), self.api,
                 untrusted(proxy.node_id))  # fmt: skip

    def _close(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.deps.metrics.connected.dec()
            log.info("proxy %s disconnected", untrusted(self.watch.proxy.key))
        if self.status is not None:
            self.deps.sync.close(self.status)

    def answered(self, type_url: str, version: str, nack: str | None) -> None:
        """The proxy's answer to a response of ours (the one path for ACKs and NACKs of both
        variants): recorded for `/debug/syncz`; a NACK is counted and logged (the proxy keeps
        its last good config), an ACK of the latest snapshot ends its convergence time."""
        assert self.status is not None
        if nack is None:
            self.status.acked(type_url, version)
            self.observe_convergence(type_url, version)
            return
        self.status.nacked(type_url, version, nack[:_NACK_KEPT])
        self.deps.metrics.nacks.labels(SHORT_NAMES[type_url]).inc()
        key = self.status.proxy.key
        if (held := self.deps.nack_log.admit((key, type_url))) is not None:
            log.warning("proxy %s rejected %s version %s: %s (%d more not logged)",
                        untrusted(key), SHORT_NAMES[type_url], untrusted(version, 64),
                        untrusted(nack, 500), held)  # fmt: skip

    def sent(self, type_url: str, version: str) -> None:
        """A response of this type and snapshot version is on its way."""
        assert self.status is not None
        self.status.sent(type_url, version)
        self.deps.metrics.pushes.labels(SHORT_NAMES[type_url]).inc()

    def observe_convergence(self, type_url: str, version: str) -> None:
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None or snapshot.generation <= self.observed_generation:
            return
        if snapshot.version(type_url) == version:
            self.observed_generation = snapshot.generation
            self.deps.metrics.convergence.observe(time.monotonic() - snapshot.changed_at)

    def accept(self, request: Any) -> None:
        """Take in one request, as it arrives: keep what still matters, in bounded space.
        Raises StreamRefusedError when the request breaks the stream's limits."""
        raise NotImplementedError

    def on_requests(self) -> list[Encoded]:
        """The responses the requests accepted since the last call call for."""
        raise NotImplementedError

    def on_change(self) -> list[Encoded]:
        raise NotImplementedError
