"""What proxies that are gone leave behind. A proxy's translation is memoized by what it claims
in its node (namespace, capture ports, labels), and on the plaintext port any client may claim
anything: each stream naming new capture ports made a translation of everything its scope sees
(~0.27 MB and ~60 ms in a 1,000-service mesh) that stayed after the stream ended, without
bound until a change touched it. Now the memos are pruned to what connected proxies use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from control.cli.control_process import ControlPlane
from control.config.node_metadata import META_PROXY_PORTS, PORT_OUTBOUND
from control.plane.xds.cache.snapshot_cache import MIN_KEPT_TRANSLATIONS
from control.plane.xds.translate.resources import CLUSTER
from tests.control.ads_client import AdsClient
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.test_file_source_last_good import NODE

pytestmark = pytest.mark.anyio
CLAIMS = MIN_KEPT_TRANSLATIONS + 150


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as running:
        yield running


async def _claim(
    stub: ads_pb2_grpc.AggregatedDiscoveryServiceStub, node_id: str, port: int
) -> None:
    """One stream claiming `port` as its outbound capture port: its clusters, then gone."""
    request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
    request.node.id = node_id
    metadata = struct_pb2.Struct()
    metadata.update({META_PROXY_PORTS: {PORT_OUTBOUND: port}})
    request.node.metadata.CopyFrom(metadata)
    stream = stub.StreamAggregatedResources(iter([request]))
    async for response in stream:
        assert response.type_url == CLUSTER
        break
    stream.cancel()


async def test_translations_of_proxies_gone_are_let_go(plane: ControlPlane) -> None:
    proxy = AdsClient(plane.xds_port, NODE)  # a proxy that stays connected throughout
    try:
        proxy.send(CLUSTER)
        assert (await proxy.recv()).type_url == CLUSTER
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{plane.xds_port}", options=[("grpc.enable_http_proxy", 0)]
        ) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            for index in range(CLAIMS):
                ip, pod = f"198.18.2.{index % 250 + 1}", f"claim-{index}.default"
                node = f"sidecar~{ip}~{pod}~default.svc.cluster.local"
                await _claim(stub, node, 20000 + index)
        kept = plane.cache.translation.kept
        assert kept <= MIN_KEPT_TRANSLATIONS + 1, f"{kept} translations kept for {CLAIMS} claims"
        # The connected proxy is still served from the memo, and its translation is right.
        translation = plane.cache.translation
        watch = next(iter(plane.cache.watches))
        assert translation.for_proxy(watch.proxy) is translation.for_proxy(watch.proxy)
        assert translation.for_proxy(watch.proxy).of(CLUSTER) == translation.fresh(
            plane.cache.state
        ).for_proxy(watch.proxy).of(CLUSTER)
    finally:
        await proxy.close()
