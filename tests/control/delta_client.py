"""A small Delta ADS client (what Envoy does with `api_type: DELTA_GRPC`, by hand)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2


class DeltaClient:
    def __init__(self, port: int, node_id: str) -> None:
        self.node_id = node_id
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]
        )
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self._requests: asyncio.Queue[discovery_pb2.DeltaDiscoveryRequest | None] = asyncio.Queue()
        self.call = stub.DeltaAggregatedResources(self._generate())
        self._sent_node = False
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

    async def _generate(self) -> AsyncIterator[discovery_pb2.DeltaDiscoveryRequest]:
        while True:
            request = await self._requests.get()
            if request is None:
                return
            yield request

    def send(
        self,
        type_url: str,
        *,
        subscribe: Iterable[str] = (),
        unsubscribe: Iterable[str] = (),
        nonce: str = "",
        initial: Mapping[str, str] | None = None,
        error: str | None = None,
    ) -> None:
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe),
            response_nonce=nonce,
            initial_resource_versions=dict(initial or {}),
        )
        if not self._sent_node:
            request.node.id = self.node_id
            self._sent_node = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        self._requests.put_nowait(request)

    def ack(self, response: discovery_pb2.DeltaDiscoveryResponse) -> None:
        self.send(response.type_url, nonce=response.nonce)

    async def recv(self, timeout: float = 5.0) -> discovery_pb2.DeltaDiscoveryResponse:
        response = await asyncio.wait_for(self._responses.get(), timeout)
        if isinstance(response, grpc.aio.AioRpcError):
            raise response
        assert isinstance(response, discovery_pb2.DeltaDiscoveryResponse), response
        return response

    async def nothing_within(self, seconds: float) -> bool:
        try:
            response = await self.recv(seconds)
        except TimeoutError:
            return True
        raise AssertionError(
            f"unexpected response: {response.type_url} {[r.name for r in response.resources]}"
            f" removed {list(response.removed_resources)}"
        )

    async def close(self) -> None:
        self._requests.put_nowait(None)
        self.call.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.channel.close()


def names(response: discovery_pb2.DeltaDiscoveryResponse) -> set[str]:
    return {r.name for r in response.resources}


def versions(response: discovery_pb2.DeltaDiscoveryResponse) -> dict[str, str]:
    return {r.name: r.version for r in response.resources}
