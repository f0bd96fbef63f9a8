"""What an ADS stream does whatever its variant (State of the World or Delta): it learns its
proxy from the first request, watches the proxy's snapshot, and serves requests and changes
from one task of its own.

Changes coalesce, latest wins: a change only sets a flag; when the stream gets to it, it
answers from the proxy's snapshot as it is then. So a stream busy with (or stuck on) a slow
proxy never queues up old snapshots, and the push itself only ever flags streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from control.xds.cache import Watch
from control.xds.status import StreamStatus
from control.xds.translate.proxy import Proxy, ProxyIdError, parse_node
from control.xds.translate.resources import CLUSTER, LISTENER

if TYPE_CHECKING:
    from control.xds.ads import AdsService

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
# Types a proxy asks for as a whole (an empty name list means "everything"), as Envoy does.
WILDCARD_TYPES = (CLUSTER, LISTENER)


class Stream:
    api = "sotw"

    def __init__(self, service: AdsService, context: Context) -> None:
        self.service = service
        self.context = context
        self.wake = asyncio.Event()
        self.requests: deque[Any] = deque()
        self.changed = False
        self.ended = False
        self.watch: Watch | None = None
        self.status: StreamStatus | None = None
        self.observed_generation = 0

    async def serve(self, requests: AsyncIterator[Any]) -> None:
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.requests:
                    request = self.requests.popleft()
                    if self.watch is None:
                        await self._open(request.node if request.HasField("node") else None)
                    for response in self.on_request(request):
                        await self.send(response)
                if self.ended:
                    return
                if self.changed:
                    self.changed = False
                    self._refresh_error()
                    for response in self.on_change():
                        await self.send(response)
        finally:
            reader.cancel()
            self._close()

    async def _read(self, requests: AsyncIterator[Any]) -> None:
        try:
            async for request in requests:
                self.requests.append(request)
                self.wake.set()
        except asyncio.CancelledError:
            pass
        except Exception as error:  # the stream broke: end it, whatever grpc raised
            log.debug("ADS stream read ended: %s", error)
        finally:
            self.ended = True
            self.wake.set()

    def _notify(self) -> None:
        self.changed = True
        self.wake.set()

    async def send(self, response: Message) -> None:
        assert self.status is not None
        status = self.status

        def slow(is_slow: bool) -> None:
            status.slow = is_slow

        status.sending_since = time.monotonic()
        await self.service.limiter.send(lambda: self.context.write(response), slow)
        status.sending_since = None

    async def _open(self, node: base_pb2.Node | None) -> None:
        if node is None or not node.id:
            await self.context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry node.id"
            )
            raise AssertionError("unreachable")  # abort raises
        metadata = json_format.MessageToDict(node.metadata)
        try:
            proxy: Proxy = parse_node(node.id, metadata)
        except ProxyIdError as error:
            await self.context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            raise  # abort raises; this only tells the type checker
        self.status = self.service.sync.open(proxy)
        self.status.api = self.api
        self.service.metrics.connected.inc()
        watch = self.service.cache.watch(proxy, self._notify)
        self.watch = watch
        self.status.snapshot = lambda: watch.snapshot
        self.status.error = watch.last_error
        log.info("proxy %s connected (%s, %s)", proxy.key, self.api, proxy.node_id)

    def _close(self) -> None:
        if self.watch is not None:
            self.service.cache.cancel(self.watch)
            self.service.metrics.connected.dec()
            log.info("proxy %s disconnected", self.watch.proxy.key)
        if self.status is not None:
            self.service.sync.close(self.status)

    def _refresh_error(self) -> None:
        if self.status is not None and self.watch is not None:
            self.status.error = self.watch.last_error

    def observe_convergence(self, type_url: str, version: str) -> None:
        snapshot = self.watch.snapshot if self.watch else None
        if snapshot is None or snapshot.generation <= self.observed_generation:
            return
        if snapshot.version(type_url) == version:
            self.observed_generation = snapshot.generation
            self.service.metrics.convergence.observe(time.monotonic() - snapshot.changed_at)

    def on_request(self, request: Any) -> list[Message]:
        raise NotImplementedError

    def on_change(self) -> list[Message]:
        raise NotImplementedError
