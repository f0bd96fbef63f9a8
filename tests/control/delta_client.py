"""A small Delta ADS client (what Envoy does with `api_type: DELTA_GRPC`, by hand)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.service.discovery.v3 import discovery_pb2

from tests.control.xds_stream import XdsStream


class DeltaClient(
    XdsStream[discovery_pb2.DeltaDiscoveryRequest, discovery_pb2.DeltaDiscoveryResponse]
):
    def __init__(self, port: int, node_id: str) -> None:
        super().__init__(
            port,
            node_id,
            lambda stub, requests: stub.DeltaAggregatedResources(requests),
            discovery_pb2.DeltaDiscoveryResponse,
        )

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
        self._enqueue(request, error)

    def ack(self, response: discovery_pb2.DeltaDiscoveryResponse) -> None:
        self.send(response.type_url, nonce=response.nonce)

    def describe(self, response: discovery_pb2.DeltaDiscoveryResponse) -> str:
        return (
            f"{response.type_url} {[r.name for r in response.resources]}"
            f" removed {list(response.removed_resources)}"
        )


def names(response: discovery_pb2.DeltaDiscoveryResponse) -> set[str]:
    return {r.name for r in response.resources}


def versions(response: discovery_pb2.DeltaDiscoveryResponse) -> dict[str, str]:
    return {r.name: r.version for r in response.resources}
