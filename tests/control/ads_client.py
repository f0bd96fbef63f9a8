"""A small ADS client (what Envoy does, by hand) for server tests."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.service.discovery.v3 import discovery_pb2

from tests.control.xds_stream import XdsStream


class AdsClient(XdsStream[discovery_pb2.DiscoveryRequest, discovery_pb2.DiscoveryResponse]):
    def __init__(self, port: int, node_id: str) -> None:
        super().__init__(
            port,
            node_id,
            lambda stub, requests: stub.StreamAggregatedResources(requests),
            discovery_pb2.DiscoveryResponse,
        )

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
        self._enqueue(request, error)

    def ack(self, response: discovery_pb2.DiscoveryResponse, names: Iterable[str] = ()) -> None:
        self.send(
            response.type_url, version=response.version_info, nonce=response.nonce, names=names
        )

    def describe(self, response: discovery_pb2.DiscoveryResponse) -> str:
        return f"{response.type_url} {response.version_info}"
