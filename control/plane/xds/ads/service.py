"""ADS: one gRPC stream per proxy carries clusters, endpoints, listeners and routes, in either
variant the proxy's bootstrap asks for: State of the World (`sotw.py`) or Delta (`delta.py`).
This is where a stream is assembled; a stream knows the snapshot cache only through the small
`Watcher` protocol (`stream.py`), as go-control-plane's servers know only their cache
interface. Streams write responses serialized already (`cache.wire`): the service is added to a
server with `add_to_server`, whose methods write those bytes as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from control.plane.metrics import Metrics
from control.plane.sync_status import SyncRegistry
from control.plane.xds.ads.delta import DeltaStream
from control.plane.xds.ads.drain import StreamDrain
from control.plane.xds.ads.sotw import SotwStream
from control.plane.xds.ads.stream import PeerCheck, StreamDeps, StreamLimits, Watcher
from control.plane.xds.ads.throttle import SendLimiter
from control.plane.xds.cache.versions import VersionSequence
from control.plane.xds.cache.wire import passthrough

_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"


class AdsService(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        watcher: Watcher,
        sync: SyncRegistry,
        metrics: Metrics,
        nonces: VersionSequence,
        limiter: SendLimiter | None = None,
        limits: StreamLimits | None = None,
        check_peer: PeerCheck | None = None,
        drain: StreamDrain | None = None,
    ) -> None:
        """`check_peer`: on a port that requires client certificates, the node must match the
        certificate's identity (`peer_identity.PeerIdentityCheck`); only such a port serves
        Secrets."""
        limiter = limiter or SendLimiter(metrics)
        self.drain = drain if drain is not None else StreamDrain()  # empty is falsy (len)
        self.deps = StreamDeps(
            watcher,
            sync,
            metrics,
            nonces,
            limiter,
            limits or StreamLimits(),
            check_peer,
            self.drain,
            serves_secrets=check_peer is not None,
        )

    async def StreamAggregatedResources(  # noqa: N802 - the gRPC method's name
        self,
        request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        del request_iterator  # read with context.read(): see Stream._read
        await SotwStream(self.deps, context).serve()

    async def DeltaAggregatedResources(  # noqa: N802 - the gRPC method's name
        self,
        request_iterator: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        del request_iterator  # read with context.read(): see Stream._read
        await DeltaStream(self.deps, context).serve()


def add_to_server(ads: AdsService, server: grpc.aio.Server) -> None:
    """Serve `ads` on `server`: the generated registration, but the responses are bytes."""
    handlers = {
        "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
            ads.StreamAggregatedResources,
            request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=passthrough,
        ),
        "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
            ads.DeltaAggregatedResources,
            request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
            response_serializer=passthrough,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)
