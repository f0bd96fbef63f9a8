"""ADS, State of the World: one gRPC stream per proxy carries clusters, endpoints, listeners and
routes. The xDS protocol rules this follows:

- The first request of each type on a stream is always answered with the full current state,
  whatever `version_info` it carries: a proxy reconnecting (to a restarted or another replica)
  reports versions this process never sent, and must not be taken to have them.
- A request echoing the nonce of our latest response of its type is an ACK (or, with
  `error_detail`, a NACK: logged, counted, the proxy keeps its last good config and we do not
  resend the same version). A request with an older nonce is stale and ignored.
- A change of the requested names (EDS, RDS) is answered at once.
- When the proxy's snapshot changes, every subscribed type whose version moved is pushed, in
  the order clusters, endpoints, listeners, routes (make before break).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format

from control.xds.cache import SnapshotCache, Watch
from control.xds.metrics import Metrics
from control.xds.status import StreamStatus, SyncRegistry
from control.xds.translate.proxy import Proxy, ProxyIdError, parse_node
from control.xds.translate.resources import CLUSTER, LISTENER, PUSH_ORDER, SHORT_NAMES
from control.xds.versions import Sequence

log = logging.getLogger(__name__)

_WILDCARD_TYPES = (CLUSTER, LISTENER)
_CHANGED = object()
_CLOSED = object()


@dataclass
class _Subscription:
    names: frozenset[str]
    nonce: str = ""
    version: str | None = None


class AdsService(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(
        self, cache: SnapshotCache, sync: SyncRegistry, metrics: Metrics, nonces: Sequence
    ) -> None:
        self.cache = cache
        self.sync = sync
        self.metrics = metrics
        self.nonces = nonces

    async def StreamAggregatedResources(  # noqa: N802 - the gRPC method's name
        self,
        request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext[object, object],
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        stream = _Stream(self, context)
        async for response in stream.run(request_iterator):
            yield response

    # DeltaAggregatedResources: the base class answers UNIMPLEMENTED (Delta comes later).


class _Stream:
    def __init__(self, service: AdsService, context: grpc.aio.ServicerContext[object, object]):
        self.service = service
        self.context = context
        self.events: asyncio.Queue[object] = asyncio.Queue()
        self.subs: dict[str, _Subscription] = {}
        self.watch: Watch | None = None
        self.status: StreamStatus | None = None
        self.observed_generation = 0

    async def run(
        self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest]
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                event = await self.events.get()
                if event is _CLOSED:
                    return
                if event is _CHANGED:
                    for response in self._on_change():
                        yield response
                    continue
                assert isinstance(event, discovery_pb2.DiscoveryRequest)
                if self.watch is None:
                    await self._open(event)
                for response in self._on_request(event):
                    yield response
        finally:
            reader.cancel()
            self._close()

    async def _read(self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest]) -> None:
        try:
            async for request in requests:
                self.events.put_nowait(request)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # the stream broke: end it, whatever grpc raised
            log.debug("ADS stream read ended: %s", error)
        finally:
            self.events.put_nowait(_CLOSED)

    async def _open(self, request: discovery_pb2.DiscoveryRequest) -> None:
        if not request.HasField("node") or not request.node.id:
            await self.context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry node.id"
            )
        metadata = json_format.MessageToDict(request.node.metadata)
        try:
            proxy: Proxy = parse_node(request.node.id, metadata)
        except ProxyIdError as error:
            await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            raise  # abort raises; this only tells the type checker
        self.status = self.service.sync.open(proxy)
        self.service.metrics.connected.inc()
        self.watch = self.service.cache.watch(proxy, lambda: self.events.put_nowait(_CHANGED))
        self.status.error = self.watch.last_error
        log.info("proxy %s connected (%s)", proxy.key, proxy.node_id)

    def _close(self) -> None:
        if self.watch is not None:
            self.service.cache.cancel(self.watch)
            self.service.metrics.connected.dec()
            log.info("proxy %s disconnected", self.watch.proxy.key)
        if self.status is not None:
            self.service.sync.close(self.status)

    def _on_request(
        self, request: discovery_pb2.DiscoveryRequest
    ) -> list[discovery_pb2.DiscoveryResponse]:
        type_url = request.type_url
        if type_url not in PUSH_ORDER:
            log.debug("ignoring a request for unserved type %s", type_url)
            return []
        names = frozenset(n for n in request.resource_names if n != "*")
        sub = self.subs.get(type_url)
        if sub is None or not request.response_nonce:
            self.subs[type_url] = _Subscription(names)
            return self._respond(type_url)
        if request.response_nonce != sub.nonce:
            return []  # stale: answers a response that a newer one superseded
        assert self.status is not None
        if request.HasField("error_detail"):
            self._nack(type_url, sub, request.error_detail.message)
        else:
            self.status.acked(type_url, request.version_info)
            self._observe_convergence(type_url, request.version_info)
        if type_url not in _WILDCARD_TYPES and names != sub.names:
            sub.names = names
            return self._respond(type_url)
        return []

    def _nack(self, type_url: str, sub: _Subscription, message: str) -> None:
        assert self.status is not None
        assert self.watch is not None
        version = sub.version or ""
        self.status.nacked(type_url, version, message)
        self.service.metrics.nacks.labels(SHORT_NAMES[type_url]).inc()
        log.warning("proxy %s rejected %s version %s: %s",
                    self.watch.proxy.key, SHORT_NAMES[type_url], version, message)  # fmt: skip

    def _observe_convergence(self, type_url: str, version: str) -> None:
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None or snapshot.generation <= self.observed_generation:
            return
        if snapshot.version(type_url) == version:
            self.observed_generation = snapshot.generation
            self.service.metrics.convergence.observe(time.monotonic() - snapshot.changed_at)

    def _on_change(self) -> list[discovery_pb2.DiscoveryResponse]:
        if self.status is not None and self.watch is not None:
            self.status.error = self.watch.last_error
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None:
            return []
        responses = []
        for type_url in PUSH_ORDER:
            sub = self.subs.get(type_url)
            if sub is not None and sub.version != snapshot.version(type_url):
                responses += self._respond(type_url)
        return responses

    def _respond(self, type_url: str) -> list[discovery_pb2.DiscoveryResponse]:
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None:
            return []  # nothing consistent yet: answered when a snapshot arrives
        sub = self.subs[type_url]
        typed = snapshot.types[type_url]
        if sub.names and type_url not in _WILDCARD_TYPES:
            resources = [typed.resources[n] for n in sorted(sub.names) if n in typed.resources]
        else:
            resources = list(typed.resources.values())
        sub.nonce = self.service.nonces.next()
        sub.version = typed.version
        assert self.status is not None
        self.status.sent(type_url, typed.version)
        self.service.metrics.pushes.labels(SHORT_NAMES[type_url]).inc()
        return [
            discovery_pb2.DiscoveryResponse(
                version_info=typed.version,
                resources=resources,
                type_url=type_url,
                nonce=sub.nonce,
            )
        ]
