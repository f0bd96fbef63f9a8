"""An ADS stream keeps what its requests say, never the parsed requests: a proxy that sees every
service names thousands of resources in each EDS request, and a parsed request is a copy of each
name in protobuf's C memory. Held per stream (as the node of the first request, or as the last
request while the stream waits for the next), 2,000 such proxies held half a gigabyte. Measured
on `mizzen control` as a process: idle streams that each sent two such requests cost the server
far less than the requests' own size."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.plane.xds.translate.resources import CLUSTER, ENDPOINT
from tests.control.ads_client import AdsClient
from tests.control.control_process import control_process
from tests.control.planes import bookinfo_config
from tests.proc_memory import MiB, rss_bytes

pytestmark = pytest.mark.anyio

STREAMS = 14  # and one more: the test's channels share one connection (16 streams at most)
# ~2 MB on the wire; as a parsed request about twice that (every name copied, plus the array).
NAMES = [f"outbound|{9000 + i % 97}||service-{i}.namespace-{i % 50}.svc.cluster.local"
         for i in range(30_000)]  # fmt: skip
WIRE_BYTES = sum(len(name) + 3 for name in NAMES)


async def _eds_stream(port: int, index: int) -> AdsClient:
    """A proxy whose requests all name every endpoint set: the first (with its node; names in a
    clusters request are not used, but parsed), then endpoints and their ACK."""
    node = f"sidecar~198.18.0.{index}~productpage-v1-abc.default~default.svc.cluster.local"
    proxy = AdsClient(port, node)
    proxy.send(CLUSTER, names=NAMES)
    proxy.ack(await proxy.recv(30), names=NAMES)
    proxy.send(ENDPOINT, names=NAMES)
    proxy.ack(await proxy.recv(30), names=NAMES)
    assert await proxy.nothing_within(0.2)  # the ACK is taken in: nothing to answer
    return proxy


async def test_idle_streams_do_not_hold_their_requests(tmp_path: Path) -> None:
    with control_process("--config-dir", str(bookinfo_config(tmp_path))) as running:
        port, pid = running.ports["xds"], running.process.pid
        proxies = [await _eds_stream(port, 0)]  # the shared names exist from here on
        try:
            before = rss_bytes(pid)
            for index in range(1, STREAMS + 1):
                proxies.append(await _eds_stream(port, index))
            grown = rss_bytes(pid) - before
            # Holding even one parsed request per stream would grow it by more than the
            # streams' wire bytes (~26 MB; measured ~95 MB when they were held); idle streams
            # that hold none measure 1-2 MB each (gRPC's buffers, the allocator's slack).
            assert 24 * MiB < WIRE_BYTES * STREAMS
            assert grown < 1.5 * WIRE_BYTES * STREAMS, (grown / MiB, WIRE_BYTES * STREAMS / MiB)
        finally:
            for proxy in proxies:
                await proxy.close()
        running.stop_cleanly()
