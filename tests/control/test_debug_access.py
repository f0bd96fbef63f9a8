"""The debug port's access rule: `/ready` and `/metrics` for anyone; config dumps, syncz and the
rest only for loopback clients or the operator's bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from control.cli.control_cmd import _debug_token
from control.cli.control_process import ControlPlane
from control.plane.debug import CostlyPage
from control.plane.debug_access import is_loopback
from tests.control.planes import bookinfo_config, fast_settings

pytestmark = pytest.mark.anyio
TOKEN = "s3cret-debug-token-0123456789"
DEBUG_PATHS = ["/debug/syncz", "/debug/configz", "/debug/pushz", "/debug/config_dump",
               "/debug/config_dump?proxy=sidecar~10.0.0.1~a.default~default.svc.cluster.local",
               "/debug/nothing", "//debug/syncz", "/"]  # fmt: skip


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = fast_settings(bookinfo_config(tmp_path), debug_token=TOKEN)
    async with ControlPlane(settings) as running:
        yield running


def _client(plane: ControlPlane, host: str) -> httpx.AsyncClient:
    """The plane's debug app as a client at `host` sees it (the peer address uvicorn puts in the
    request's scope)."""
    assert plane._http is not None
    transport = httpx.ASGITransport(plane._http.config.app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://control")


@pytest.mark.parametrize("host", ["10.244.0.7", "192.0.2.9", "2001:db8::7", "::ffff:10.0.0.1"])
async def test_a_remote_client_gets_ready_and_metrics_only(plane: ControlPlane, host: str) -> None:
    async with _client(plane, host) as client:
        assert (await client.get("/ready")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        for path in DEBUG_PATHS:
            reply = await client.get(path)
            assert reply.status_code == 403, path
            assert "loopback" in reply.json()["error"]
            assert "proxy" not in reply.text.replace("proxy=", "")  # no config in the refusal
        wrong = await client.get("/debug/syncz", headers={"authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 403
        basic = await client.get("/debug/syncz", headers={"authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 403


async def test_a_remote_client_with_the_token_reads_debug(plane: ControlPlane) -> None:
    async with _client(plane, "10.244.0.7") as client:
        reply = await client.get("/debug/syncz", headers={"authorization": f"Bearer {TOKEN}"})
        assert reply.status_code == 200
        assert isinstance(reply.json(), (dict, list))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"])
async def test_loopback_clients_read_debug(plane: ControlPlane, host: str) -> None:
    async with _client(plane, host) as client:
        assert (await client.get("/debug/configz")).status_code == 200


async def test_over_a_real_socket_loopback_is_served(plane: ControlPlane) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        reply = await client.get(f"http://127.0.0.1:{plane.debug_port}/debug/syncz")
        assert reply.status_code == 200


def test_loopback_check_refuses_what_is_not_an_address() -> None:
    assert not is_loopback("localhost")
    assert not is_loopback("127.0.0.1%lo")
    assert not is_loopback("")


def test_the_token_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "token"
    good.write_text(f"  {TOKEN}\n")
    assert _debug_token(good) == TOKEN
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ValueError, match=r"--debug-token-file .*16 or more"):
        _debug_token(short)
    with pytest.raises(ValueError, match=r"--debug-token-file .*not read"):
        _debug_token(Path("/dev/zero"))


def test_a_costly_page_is_reused_for_ten_times_its_rendering_time() -> None:
    now = [0.0]
    renders: list[int] = []

    def render() -> dict[str, int]:
        renders.append(1)
        now[0] += 0.2  # a page of thousands of proxies: 200 ms
        return {"renders": len(renders)}

    page = CostlyPage(render, clock=lambda: now[0])
    assert page.response().body == b'{"renders":1}'
    now[0] += 1.0
    assert page.response().body == b'{"renders":1}'  # within 10 x 200 ms: reused
    now[0] += 1.5
    assert page.response().body == b'{"renders":2}'
    cheap = CostlyPage(lambda: {"n": len(renders)}, clock=lambda: now[0])
    cheap.response()
    renders.append(1)
    assert cheap.response().body == b'{"n":3}'  # rendered in no time: always fresh
