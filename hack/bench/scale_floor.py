"""The floor under the scale benchmark's full push: a bare grpc.aio ADS server (State of the
World) that answers each proxy with the bytes mizzen's control plane would send it, made before
the server listens. While it serves there is no translation, snapshot, consistency check,
throttle, metric or bookkeeping: one read and one write per message, with the gRPC server that
mizzen's xDS port uses (`grpc_limits`, the same options).

The benchmark's `sotw-floor` scenario runs the same clients against it. Its full push is what
this machine's Python gRPC costs for that push whatever the server does; mizzen's push over it
is the share that mizzen's own work adds. The responses are made from mizzen's translation of
the same config directory (`MeshTranslation`, `build_snapshot`, `sotw_response`), so each proxy
gets the same bytes in the same order; making them is not part of the push (the benchmark
starts its clock when the process is ready, as for mizzen's restart: that is "the start").

Started by the benchmark as the control plane is (`ControlProcess`):

    python hack/bench/scale_floor.py --config-dir DIR --xds-port N --proxies FILE
    stdout, once listening: `mizzen control: xds=<port> debug=0` (the control plane's line)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from control.config.loader import parse_text
from control.plane.model.build import build_state
from control.plane.xds.cache.snapshot import Packer, build_snapshot
from control.plane.xds.cache.wire import passthrough, sotw_response
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from control.plane.xds.translate.shared import MeshTranslation
from control.serving.grpc_limits import GrpcLimits, grpc_server

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE)  # what the simulated proxies subscribe to
Responses = Mapping[str, Mapping[str, bytes]]  # node id -> type URL -> a whole response


def make_responses(config_dir: Path, proxies: Sequence[Mapping[str, Any]]) -> Responses:
    """Each proxy's SotW responses as mizzen's control plane makes them (equal responses are
    one bytes object, as the control plane shares them)."""
    documents = []
    for path in sorted(config_dir.rglob("*.yaml")):
        parsed, errors = parse_text(path.read_text(), str(path))
        if errors:
            raise SystemExit(f"{path}: {errors[0]}")
        documents.extend(parsed)
    translation = MeshTranslation(build_state(documents))
    packer = Packer()
    unique: dict[bytes, bytes] = {}
    responses: dict[str, dict[str, bytes]] = {}
    for index, spec in enumerate(proxies):
        metadata = {"NAME": spec["pod"], "NAMESPACE": spec["namespace"],
                    "LABELS": spec["labels"], "INSTANCE_IPS": spec["ip"]}  # fmt: skip
        resources = translation.for_proxy(parse_node(str(spec["node"]), metadata))
        snapshot = build_snapshot(resources, None, "1", 0.0, packer)
        by_type = {}
        for type_url in TYPES:
            typed = snapshot.types[type_url]
            nonce = f"{index}-{type_url[-8:]}"
            data = sotw_response(
                typed.version, typed.sotw_fields.values(), type_url, nonce, typed.sotw_size
            ).data()
            by_type[type_url] = unique.setdefault(data, data)
        responses[str(spec["node"])] = by_type
    return responses


class FloorAds:
    """Answers the first request of each type with the proxy's response; ACKs (a request that
    carries a nonce) are read and dropped."""

    def __init__(self, responses: Responses) -> None:
        self.responses = responses

    async def StreamAggregatedResources(  # noqa: N802 - the gRPC method's name
        self, request_iterator: Any, context: grpc.aio.ServicerContext[object, object]
    ) -> None:
        del request_iterator  # read with context.read(), as mizzen's streams do
        mine: Mapping[str, bytes] = {}
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            assert isinstance(request, discovery_pb2.DiscoveryRequest)
            if request.HasField("node"):
                mine = self.responses.get(request.node.id, {})
            if request.response_nonce:
                continue
            response = mine.get(request.type_url)
            if response is not None:
                await context.write(response)


async def serve(port: int, responses: Responses) -> None:
    server = grpc_server(GrpcLimits())
    handler = grpc.stream_stream_rpc_method_handler(
        FloorAds(responses).StreamAggregatedResources,
        request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
        response_serializer=passthrough,
    )
    handlers = {"StreamAggregatedResources": handler}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)  # as mizzen's: the fast path
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"mizzen control: xds={bound} debug=0", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-dir", type=Path, required=True)
    parser.add_argument("--xds-port", type=int, default=0)
    parser.add_argument("--proxies", type=Path, required=True, help="the fleet's specs (JSON)")
    parser.add_argument("--debug-port", help=argparse.SUPPRESS)  # the control plane's flags,
    parser.add_argument("--log-level", help=argparse.SUPPRESS)  # accepted and not used
    args = parser.parse_args(argv)
    proxies = json.loads(args.proxies.read_text())
    asyncio.run(serve(args.xds_port, make_responses(args.config_dir, proxies)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
