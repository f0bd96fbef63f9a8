"""The one HTTP serving helper: bound sockets, uvicorn embedded without its signal handlers,
graceful stop."""

from __future__ import annotations

import asyncio
import signal
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from control.serving import HttpServer, ListenerLimits, bind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app(release: asyncio.Event) -> Starlette:
    async def slow(_: Request) -> PlainTextResponse:
        await release.wait()
        return PlainTextResponse("done")

    async def fast(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/slow", slow), Route("/fast", fast)])


def test_bind_all_addresses_is_dual_stack_where_possible() -> None:
    with bind("::", 0) as sock:
        port = sock.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with bind("127.0.0.1", 0, ListenerLimits(backlog=4)) as sock:
        assert sock.family == socket.AF_INET
        assert sock.proto == socket.IPPROTO_TCP


async def test_serves_stops_gracefully_and_leaves_signals_alone() -> None:
    release = asyncio.Event()
    before = signal.getsignal(signal.SIGTERM)
    server = HttpServer(_app(release), limits=ListenerLimits(graceful_shutdown=5))
    server.start(bind("127.0.0.1", 0))
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(trust_env=False) as http:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert (await http.get(f"{base}/fast")).text == "ok"
        assert signal.getsignal(signal.SIGTERM) == before  # uvicorn installed nothing
        in_flight = asyncio.create_task(http.get(f"{base}/slow"))
        await asyncio.sleep(0.1)
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.1)
        assert not stopping.done()  # waits for the request in flight
        release.set()
        assert (await in_flight).text == "done"
        await stopping
    assert server.socket is not None
    assert server.socket.fileno() == -1
