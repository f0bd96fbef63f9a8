"""A control plane going away closes its proxies' streams a few at a time (UNAVAILABLE, with a
message saying why), turns new streams away, and its proxies move to another replica without
losing their configuration (a real Envoy with both replicas in its xDS cluster)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from control.cli.control_process import ControlPlane
from control.plane.xds.ads.drain import DRAINING, StreamDrain
from control.plane.xds.translate.resources import CLUSTER
from tests.control.ads_client import AdsClient
from tests.control.envoy_proc import dump_section, run_envoy
from tests.control.planes import BOOKINFO, fast_settings
from tests.control.waiting import eventually

pytestmark = pytest.mark.anyio

NODE = "sidecar~198.18.0.10~productpage-v1-abc.default~default.svc.cluster.local"


def _node(index: int) -> str:
    return f"sidecar~198.18.0.{10 + index}~productpage-v1-{index}.default~default.svc.cluster.local"


async def test_the_drain_spreads_the_closes_over_its_duration() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    drain = StreamDrain(sleep)
    closed: list[int] = []
    for index in range(4):
        drain.register(lambda index=index: closed.append(index))  # type: ignore[misc]
    forget = drain.register(lambda: closed.append(99))
    forget()  # a stream that ended on its own is not closed again
    assert await drain.drain(2.0) == 4
    assert closed == [0, 1, 2, 3]
    assert slept == [0.5, 0.5, 0.5]  # the first at once, then evenly
    assert drain.draining
    assert len(drain) == 0
    assert await StreamDrain(sleep).drain(0.0) == 0


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    shutil.copy(BOOKINFO / "mesh.yaml", config / "mesh.yaml")
    return config


async def test_streams_end_unavailable_spread_out_and_new_ones_are_turned_away(
    tmp_path: Path,
) -> None:
    plane = ControlPlane(fast_settings(_config(tmp_path), drain_duration=1.0))
    await plane.start()
    clients = [AdsClient(plane.xds_port, _node(i)) for i in range(3)]
    try:
        for client in clients:
            client.send(CLUSTER)
            await client.recv()
        ended: list[tuple[float, grpc.aio.AioRpcError]] = []

        async def end_of(client: AdsClient) -> None:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client.recv(timeout=10)
            ended.append((time.monotonic(), raised.value))

        waits = [asyncio.create_task(end_of(c)) for c in clients]
        stopping = asyncio.create_task(plane.stop())
        await asyncio.sleep(0.1)  # the drain has begun: a new stream is turned away at once
        late = AdsClient(plane.xds_port, _node(9))
        try:
            late.send(CLUSTER)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await late.recv()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert refused.value.details() == DRAINING
        finally:
            await late.close()
        await asyncio.gather(*waits)
        await stopping
    finally:
        for client in clients:
            await client.close()
        await plane.stop()
    assert {(e.code(), e.details()) for _, e in ended} == {(grpc.StatusCode.UNAVAILABLE, DRAINING)}
    times = sorted(t for t, _ in ended)
    assert times[-1] - times[0] >= 0.6  # three closes over 1 s: at 0, 1/3 and 2/3 s


async def _serving(plane: ControlPlane) -> dict[str, Any] | None:
    proxy = plane.sync.syncz().get("productpage-v1-abc.default")
    if proxy is None:
        return None
    types = proxy["types"]
    done = all(t in types and types[t]["acked"] == types[t]["sent"] for t in ("cds", "lds"))
    return proxy if done else None


@pytest.mark.envoy
async def test_envoy_moves_to_the_other_replica_and_keeps_its_listeners(tmp_path: Path) -> None:
    config = _config(tmp_path)
    planes = [ControlPlane(fast_settings(config, drain_duration=1.0)) for _ in range(2)]
    for plane in planes:
        await plane.start()
    labels = {"app": "productpage", "version": "v1"}
    try:
        async with run_envoy(
            tmp_path, NODE, planes[0].xds_port, labels, more_xds_ports=(planes[1].xds_port,)
        ) as envoy:

            async def served_by() -> int | None:
                for index, plane in enumerate(planes):
                    if await _serving(plane):
                        return index
                return None

            first = await eventually(served_by, what="a replica serves envoy")
            leaving, staying = planes[first], planes[1 - first]
            await leaving.stop()
            await eventually(lambda: _serving(staying), what="the other replica serves envoy")
            dump = await envoy.config_dump()
            listeners = dump_section(dump, ".ListenersConfigDump")["dynamic_listeners"]
            assert "virtualOutbound" in {item["name"] for item in listeners}
    finally:
        for plane in planes:
            await plane.stop()
