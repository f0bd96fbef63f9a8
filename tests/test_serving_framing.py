"""What a request's framing and a pipeline may make a listener hold, over real sockets (the
head's own cap: `test_serving_heads.py`). httptools buffered a chunked body's trailers without
end and uvicorn queued every pipelined request: one client could fill the process's memory
long before the request deadline. Both are refused now, for both HTTP protocols a listener may
use, and well-behaved trailers, chunk extensions and short pipelines are still served."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from starlette.types import Receive, Scope, Send

from control.logsafe import LogThrottle
from control.serving import HttpServer, ListenerLimits, deadline
from control.serving.fastparser import MAX_PIPELINED
from tests.serving_listener import PARSERS, Parser, listening

pytestmark = pytest.mark.anyio
# Far beyond the time a refusal takes: a refusal must not wait for it.
DEADLINE = 20.0
CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers each request with its body's length and the names of its headers."""
    length = 0
    while True:
        message = await receive()
        length += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    names = b",".join(name for name, _ in scope["headers"])
    body = b"%d %s" % (length, names)
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> Parser:
    chosen: Parser = request.param
    return chosen


@pytest.fixture
async def server(parser: Parser) -> AsyncIterator[HttpServer]:
    async with listening(_app, ListenerLimits(request_timeout=DEADLINE), parser) as server:
        yield server


async def _send_until_closed(server: HttpServer, opening: bytes, part: bytes) -> float:
    """Sends `opening`, then `part` again and again (8 MiB at most) until the server closes
    the connection; returns how long that took. Fails if the server never closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    try:
        writer.write(opening)
        for _ in range(8 * 1024 * 1024 // len(part)):
            writer.write(part)
            await writer.drain()
            if reader.at_eof():
                break
            await asyncio.sleep(0)
        await asyncio.wait_for(reader.read(), DEADLINE / 4)
    except ConnectionError:
        pass  # reset: the server closed with our bytes unread
    finally:
        writer.close()
    return time.monotonic() - started


async def _answers(server: HttpServer, request: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        answer = b""
    writer.close()
    return [part for part in answer.split(b"HTTP/1.1 ") if part]


async def _still_serves(server: HttpServer) -> None:
    answers = await _answers(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answers[0].startswith(b"200 OK")


@pytest.mark.parametrize(
    ("opening", "part"),
    [
        (CHUNKED + b"1\r\na\r\n0\r\n", b"t:\r\n" * 1024),
        (CHUNKED + b"1\r\na\r\n0\r\nX-Endless: ", b"a" * 4096),
        (CHUNKED + b"1;", b"e" * 4096),
    ],
    ids=["many-small-trailers", "one-endless-trailer", "endless-chunk-extension"],
)
async def test_endless_framing_after_the_head_is_cut_off(
    server: HttpServer, opening: bytes, part: bytes
) -> None:
    took = await _send_until_closed(server, opening, part)
    assert took < 5
    await _still_serves(server)


async def test_trailers_and_chunk_extensions_within_the_cap_are_served_not_given_as_headers(
    server: HttpServer,
) -> None:
    chunks = b"".join(b"4;n=%d\r\nbody\r\n" % index for index in range(1000))
    trailers = b"".join(b"X-T%d: %s\r\n" % (index, b"t" * 100) for index in range(100))
    request = CHUNKED.replace(b"Host: x", b"Host: x\r\nConnection: close")
    answers = await _answers(server, request + chunks + b"0\r\n" + trailers + b"\r\n")
    assert len(answers) == 1
    status, body = answers[0].split(b"\r\n", 1)[0], answers[0].rsplit(b"\r\n\r\n", 1)[1]
    assert status == b"200 OK"
    assert body == b"4000 host,connection,transfer-encoding"


async def test_a_deep_pipeline_is_closed_and_a_short_one_served(
    server: HttpServer, parser: Parser
) -> None:
    one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    served = await _answers(server, one * MAX_PIPELINED + last)
    assert [answer.split(b"\r\n", 1)[0] for answer in served] == [b"200 OK"] * (MAX_PIPELINED + 1)
    deep = 5000
    answers = await _answers(server, one * deep + last)
    if parser == "httptools":
        # uvicorn queued them all (and read on after each answer); h11 reads one at a time.
        assert len(answers) <= MAX_PIPELINED + 1
    else:
        assert len(answers) == deep + 1
    await _still_serves(server)


async def test_malformed_requests_are_logged_once_per_interval(
    server: HttpServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn warns once per malformed request, whoever sends it: one client sending garbage
    in a loop wrote a line per connection."""
    monkeypatch.setattr(deadline, "_WARNINGS", LogThrottle(deadline.WARN_EVERY))
    with caplog.at_level("WARNING", logger="uvicorn.error"):
        for _ in range(100):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"NOT HTTP\x00\r\n\r\n")
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
    lines = [r.getMessage() for r in caplog.records if "Invalid HTTP request" in r.getMessage()]
    assert lines == ["Invalid HTTP request received."]
    await _still_serves(server)
