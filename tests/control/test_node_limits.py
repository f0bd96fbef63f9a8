"""The node a stream names is bounded and checked before anything is kept of it: a huge id, an id
that would forge log lines, metadata of megabytes, an address with a zone id are refused with
INVALID_ARGUMENT naming the field, and the server keeps serving proxies that behave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from control.cli.control_process import ControlPlane
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
