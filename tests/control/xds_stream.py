"""The stream plumbing shared by the test ADS clients (SotW and Delta): one gRPC call fed from a
queue of requests, one reader task feeding a queue of responses (cancelling a read would cancel
the whole call), and the node sent on the first request only, as Envoy does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, Protocol, TypeVar

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc
from google.rpc import status_pb2


class _Request(Protocol):
    node: Any
    error_detail: Any


Request = TypeVar("Request", bound=_Request)
Response = TypeVar("Response")


class XdsStream(Generic[Request, Response]):
    def __init__(
        self,
        port: int,
        node_id: str,
        open_call: Callable[[ads_pb2_grpc.AggregatedDiscoveryServiceStub, Any], Any],
        response_type: type[Response],
    ) -> None:
        self.node_id = node_id
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]
        )
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self._requests: asyncio.Queue[Request | None] = asyncio.Queue()
        self.call = open_call(stub, self._generate())
        self._response_type = response_type
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

    async def _generate(self) -> AsyncIterator[Request]:
        while True:
            request = await self._requests.get()
            if request is None:
                return
            yield request

    def _enqueue(self, request: Request, error: str | None) -> None:
        if not self._sent_node:
            request.node.id = self.node_id
            self._sent_node = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        self._requests.put_nowait(request)

    async def recv(self, timeout: float = 5.0) -> Response:
        response = await asyncio.wait_for(self._responses.get(), timeout)
        if isinstance(response, grpc.aio.AioRpcError):
            raise response
        assert isinstance(response, self._response_type), response
        return response

    def describe(self, response: Response) -> str:
        return repr(response)

    async def nothing_within(self, seconds: float) -> bool:
        try:
            response = await self.recv(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected response: {self.describe(response)}")

    async def close(self) -> None:
        self._requests.put_nowait(None)
        self.call.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.channel.close()
