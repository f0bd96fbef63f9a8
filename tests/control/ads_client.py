"""A small ADS client (what Envoy does, by hand) for server tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2


class AdsClient:
    def __init__(self, port: int, node_id: str) -> None:
        self.node_id = node_id
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]
        )
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self._requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self.call = stub.StreamAggregatedResources(self._generate())
        self._sent_node = False
        # Cancelling a read cancels the whole call: one reader task feeds a queue instead.
        self._responses: asyncio.Queue[object] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for response in self.call:
                self._responses.put_nowait(response)
        except grpc.aio.AioRpcError as error:
            self._responses.put_nowait(error)
        except asyncio.CancelledError:
            pass

    async def _generate(self) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while True:
            request = await self._requests.get()
            if request is None:
                return
            yield request

    def send(
        self,
        type_url: str,
        *,
        version: str = "",
        nonce: str = "",
        names: Iterable[str] = (),
        error: str | None = None,
    ) -> None:
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            version_info=version,
            response_nonce=nonce,
            resource_names=list(names),
        )
        if not self._sent_node:
            request.node.id = self.node_id
            self._sent_node = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        self._requests.put_nowait(request)

    def ack(self, response: discovery_pb2.DiscoveryResponse, names: Iterable[str] = ()) -> None:
        self.send(
            response.type_url, version=response.version_info, nonce=response.nonce, names=names
        )

    async def recv(self, timeout: float = 5.0) -> discovery_pb2.DiscoveryResponse:
        response = await asyncio.wait_for(self._responses.get(), timeout)
        if isinstance(response, grpc.aio.AioRpcError):
            raise response
        assert isinstance(response, discovery_pb2.DiscoveryResponse), response
        return response

    async def nothing_within(self, seconds: float) -> bool:
        try:
            response = await self.recv(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected response: {response.type_url} {response.version_info}")

    async def close(self) -> None:
        self._requests.put_nowait(None)
        self.call.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.channel.close()
