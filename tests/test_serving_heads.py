"""The cap on a request's head (request line and headers), over real sockets, for both HTTP
protocols a listener may use: httptools bounds nothing of its own, h11 refuses heads over
16 KiB. A head over the cap is refused long before the request deadline, and never held; a
head under it, and any body after it, are served."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from control.serving import HttpServer, ListenerLimits
from tests.serving_listener import PARSERS, Parser, listening

pytestmark = pytest.mark.anyio
# Far beyond the time a refusal takes: a refusal must not wait for it.
DEADLINE = 20.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app() -> Starlette:
    async def length(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    return Starlette(routes=[Route("/", length, methods=["GET", "POST"])])


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> Parser:
    chosen: Parser = request.param
    return chosen


@pytest.fixture
async def server(parser: Parser) -> AsyncIterator[HttpServer]:
    async with listening(_app(), ListenerLimits(request_timeout=DEADLINE), parser) as server:
        yield server


async def _send_until_refused(server: HttpServer, parts: list[bytes]) -> tuple[bytes, float]:
    """Sends `parts` one by one (as a slow client would) until the server stops reading; returns
    what it answered and how long it took to close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.001)
    except ConnectionError:
        pass
    try:
        answer = await asyncio.wait_for(reader.read(), DEADLINE / 2)
    except ConnectionError:
        answer = b""  # reset: the server closed with our bytes unread
    finally:
        writer.close()
    return answer, time.monotonic() - started


async def _served(server: HttpServer, request: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return [part for part in answer.split(b"HTTP/1.1 ") if part]


async def test_headers_over_the_cap_are_answered_and_closed_at_once(
    server: HttpServer, parser: Parser
) -> None:
    # Just over 16 KiB and no more: a client still sending after the refusal gets a reset,
    # which would lose the answer.
    headers = [b"X-%d: %s\r\n" % (index, b"a" * 1000) for index in range(17)]
    answer, took = await _send_until_refused(server, [b"GET / HTTP/1.1\r\nHost: x\r\n", *headers])
    assert took < 5
    if parser == "h11":
        assert answer.startswith(b"HTTP/1.1 400") or answer == b""
    else:
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), answer[:100]
        assert b"connection: close" in answer


@pytest.mark.parametrize(
    "opening",
    [b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ", b"GET /"],
    ids=["one-endless-header", "endless-request-line"],
)
async def test_an_endless_line_is_cut_off_without_being_held(
    server: HttpServer, opening: bytes
) -> None:
    parts = [opening, *([b"a" * 4096] * 256)]  # a megabyte, never a line end
    answer, took = await _send_until_refused(server, parts)
    assert took < 5
    assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400"))
    again = await _served(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert again[0].startswith(b"200 OK")


async def test_a_head_under_the_cap_and_big_bodies_are_served(server: HttpServer) -> None:
    """Only heads count: 15 KB of headers, then 1 MB bodies, two requests in one write."""
    headers = b"".join(b"X-%d: %s\r\n" % (index, b"h" * 1000) for index in range(15))
    body = b"b" * (1024 * 1024)
    one = b"POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
        headers,
        len(body),
        body,
    )
    last = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"
    answers = await _served(server, one + one + last)
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"200 OK"] * 3
    assert [answer.rsplit(b"\r\n\r\n", 1)[1] for answer in answers] == [
        str(len(body)).encode(),
        str(len(body)).encode(),
        b"3",
    ]
