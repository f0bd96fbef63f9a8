"""`mizzen proxy-status` against a real control plane (in-process, ephemeral ports) with Python
ADS clients in each state: fully ACKed, NACKing, not yet ACKing, and not subscribed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.cli.control_process import ControlPlane
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.cli_status.cli_run import mizzen
from tests.control.ads_client import AdsClient
from tests.control.delta_client import DeltaClient
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.waiting import eventually

pytestmark = pytest.mark.anyio

BOOKINFO = Path(__file__).parents[1] / "control" / "testdata" / "translate" / "bookinfo"
ALL_TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE)


def node(pod: str, ip: str, namespace: str = "default") -> str:
    return f"sidecar~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as running:
        yield running


async def synced_client(plane: ControlPlane, pod: str, ip: str) -> AdsClient:
    """A client that subscribes to every type and ACKs each response, as Envoy does."""
    client = AdsClient(plane.xds_port, node(pod, ip))
    for type_url in ALL_TYPES:
        client.send(type_url)
        client.ack(await client.recv())
    return client


def control_url(plane: ControlPlane) -> str:
    return f"http://127.0.0.1:{plane.debug_port}"


async def test_status_shows_synced_nacked_stale_and_not_sent(
    plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    synced = await synced_client(plane, "productpage-v1-abc", "10.244.0.10")
    nacking = AdsClient(plane.xds_port, node("reviews-v1-aaa", "10.244.0.21"))
    nacking.send(CLUSTER)
    nacking.ack(await nacking.recv())
    nacking.send(LISTENER)
    listeners = await nacking.recv()
    nacking.send(LISTENER, nonce=listeners.nonce, error="listener 0.0.0.0_9080: bad\nfilter")
    waiting = AdsClient(plane.xds_port, node("ratings-v1-ccc", "10.244.0.30"))
    waiting.send(CLUSTER)
    await waiting.recv()  # received, never ACKed
    try:

        async def three_rows() -> list[str] | None:
            outcome = await mizzen(capsys, "proxy-status", "--control", control_url(plane))
            assert outcome.code == 0, outcome.err
            rows = outcome.out.splitlines()
            return rows if len(rows) == 4 and "NACKED" in outcome.out else None

        rows = await eventually(three_rows, what="three proxies with the NACK")
        assert rows[0].split()[:6] == ["NAME", "CDS", "LDS", "EDS", "RDS", "VERSION"]
        by_name = {row.split()[0]: row for row in rows[1:]}
        prefix = plane.cache.versions.prefix
        assert by_name["productpage-v1-abc.default"].split()[1:6:1][:4] == ["SYNCED"] * 4
        assert f" {prefix}-" in by_name["productpage-v1-abc.default"]
        reviews = by_name["reviews-v1-aaa.default"]
        assert reviews.split()[1] == "SYNCED"
        assert "NACKED (listener 0.0.0.0_9080: bad filter)" in reviews
        assert reviews.count("NOT SENT") == 2  # EDS and RDS never asked for
        ratings = by_name["ratings-v1-ccc.default"].split()
        assert ratings[1] == "STALE"
    finally:
        for client in (synced, nacking, waiting):
            await client.close()


async def test_a_config_change_is_stale_until_acked(
    plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await synced_client(plane, "productpage-v1-abc", "10.244.0.10")
    try:
        assert plane.settings.config_dir is not None
        mesh = plane.settings.config_dir / "mesh.yaml"
        mesh.write_text(mesh.read_text().replace("weight: 80", "weight: 70")
                        .replace("weight: 20", "weight: 30"))  # fmt: skip
        pushed = await client.recv()
        assert pushed.type_url == ROUTE
        outcome = await mizzen(capsys, "proxy-status", "--control", control_url(plane))
        cells = outcome.out.splitlines()[1].split()
        assert cells[1:5] == ["SYNCED", "SYNCED", "SYNCED", "STALE"]
        client.ack(pushed)

        async def synced() -> bool:
            outcome = await mizzen(capsys, "proxy-status", "--control", control_url(plane))
            return outcome.out.splitlines()[1].split()[1:5] == ["SYNCED"] * 4

        await eventually(synced, what="RDS synced after the ACK")
    finally:
        await client.close()


async def test_no_proxies(plane: ControlPlane, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = await mizzen(capsys, "proxy-status", "--control", control_url(plane))
    assert (outcome.code, outcome.out) == (0, "no proxies connected\n")


def test_unreachable_control_plane_is_one_line_and_exit_1(unused_port: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "control.cli", "proxy-status",
         "--control", f"http://127.0.0.1:{unused_port}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mizzen proxy-status: cannot reach http://127.0.0.1:{unused_port}")
    assert "Traceback" not in result.stderr


async def test_bad_url_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = await mizzen(capsys, "proxy-status", "--control", "ftp://example")
    assert outcome.code == 1
    assert outcome.err == "mizzen proxy-status: 'ftp://example': give an http:// or https:// URL\n"


async def test_a_delta_proxy(plane: ControlPlane, capsys: pytest.CaptureFixture[str]) -> None:
    client = DeltaClient(plane.xds_port, node("productpage-v1-abc", "10.244.0.10"))
    try:
        for type_url in (CLUSTER, LISTENER):
            client.send(type_url)
            client.ack(await client.recv())

        async def row() -> list[str] | None:
            outcome = await mizzen(capsys, "proxy-status", "--control", control_url(plane))
            cells = outcome.out.splitlines()[1].split()
            return cells if cells[1:3] == ["SYNCED", "SYNCED"] else None

        cells = await eventually(row, what="the Delta proxy synced")
        assert cells[0] == "productpage-v1-abc.default"
        assert cells[3:7] == ["NOT", "SENT", "NOT", "SENT"]  # EDS, RDS not subscribed
        assert "DELTA" in cells
    finally:
        await client.close()
