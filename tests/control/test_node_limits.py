"""The node a stream names is bounded and checked before anything is kept of it: a huge id, an id
that would forge log lines, metadata of megabytes, an address with a zone id are refused with
INVALID_ARGUMENT naming the field, and the server keeps serving proxies that behave."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from control.cli.control_process import ControlPlane
from control.plane.xds.ads.stream import Stream
from control.plane.xds.translate.resources import CLUSTER
from tests.control.ads_client import AdsClient
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.test_file_source_last_good import NODE

pytestmark = pytest.mark.anyio
GOOD = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as running:
        yield running


def _metadata(size: int) -> struct_pb2.Struct:
    metadata = struct_pb2.Struct()
    metadata.update({"LABELS": {f"k{i}": "v" * 100 for i in range(size // 100)}})
    return metadata


HOSTILE = [
    (GOOD + "x" * 100_000, None, "node.id: 100"),
    ("sidecar~10.0.0.1~a.default~default.svc\nINFO proxy x connected", None, "printable ASCII"),
    ("sidecar~10.0.0.1~a.default~default.svc.cluster.local\x1b[2J", None, "printable ASCII"),
    ("sidecar~fe80::1%eth0~a.default~default.svc.cluster.local", None, "is not an IP address"),
    ("sidecar~not-an-ip~a.default~default.svc.cluster.local", None, "is not an IP address"),
    (GOOD, _metadata(400_000), "node.metadata: "),
]


async def _status(
    port: int, delta: bool, node_id: str, metadata: struct_pb2.Struct | None
) -> tuple[grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]
    ) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        if delta:
            request: object = discovery_pb2.DeltaDiscoveryRequest(type_url=CLUSTER)
            call = stub.DeltaAggregatedResources
        else:
            request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
            call = stub.StreamAggregatedResources
        request.node.id = node_id  # type: ignore[attr-defined]
        if metadata is not None:
            request.node.metadata.CopyFrom(metadata)  # type: ignore[attr-defined]
        stream = call(iter([request]))
        try:
            async for _ in stream:
                pass
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or ""
        return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
@pytest.mark.parametrize(("node_id", "metadata", "message"), HOSTILE)
async def test_a_hostile_node_is_refused_naming_the_field(
    plane: ControlPlane,
    delta: bool,
    node_id: str,
    metadata: struct_pb2.Struct | None,
    message: str,
) -> None:
    code, details = await _status(plane.xds_port, delta, node_id, metadata)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert message in details
    assert len(details) < 300  # the refusal does not echo the id back whole
    assert plane.sync.syncz() == {}  # nothing of the refused stream is kept
    proxy = AdsClient(plane.xds_port, NODE)
    try:
        proxy.send(CLUSTER)
        assert (await proxy.recv()).type_url == CLUSTER
    finally:
        await proxy.close()


async def test_an_open_stream_keeps_nothing_of_its_node(plane: ControlPlane) -> None:
    """The node is read once, when the stream opens: an Envoy's metadata (KBs; here 200 KB, in
    protobuf's C memory) is not held for the stream's life, 2,000 times over."""
    node_id = GOOD.replace("10.244.0.10", "10.244.0.77")  # no other test's stream has it
    request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
    request.node.id = node_id
    request.node.metadata.CopyFrom(_metadata(200_000))
    done = asyncio.Event()

    async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        yield request
        await done.wait()

    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{plane.xds_port}", options=[("grpc.enable_http_proxy", 0)]
    ) as channel:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
            requests()
        )
        try:
            assert (await call.read()).type_url == CLUSTER
            streams = [o for o in gc.get_objects() if isinstance(o, Stream)]
            opened = [s for s in streams if s.watch and s.watch.proxy.node_id == node_id]
            assert len(opened) == 1
            assert opened[0].node is None
        finally:
            done.set()
            call.cancel()
