"""Every HTTP listener's limits, attacked over real sockets: too many connections, headers
trickled byte by byte, TLS handshakes that never start. Each time the bound holds and a
well-behaved client is still served."""

from __future__ import annotations

import asyncio
import resource
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from control.serving import HttpServer, ListenerLimits, bind
from tests import serving_listener
from webhook import devcerts
from webhook.tls import CertificateStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app() -> Starlette:
    async def hello(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/", hello)])


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection (EOF or reset) within `seconds`."""
    try:
        return await asyncio.wait_for(reader.read(1024), seconds) == b""
    except (ConnectionError, TimeoutError):
        return False


async def _get(url: str, verify: ssl.SSLContext | bool = False) -> str:
    async with httpx.AsyncClient(trust_env=False, verify=verify, timeout=5) as client:
        return (await client.get(url)).text


async def test_connections_over_the_cap_are_closed_at_once_and_good_clients_served_later() -> None:
    limits = ListenerLimits(max_connections=4, request_timeout=1.0)
    server = HttpServer(_app(), limits=limits)
    server.start(bind("127.0.0.1", 0))
    await serving_listener.started(server)
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(4)]
    await asyncio.sleep(0.1)
    assert server.guard is not None
    assert server.guard.open == 4
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    assert (await reader.read(1024)) == b""  # over the cap: closed at once
    assert time.monotonic() - started < 0.5
    writer.close()
    # The idle ones send no request: cut at the request deadline, and their slots come back.
    for idle_reader, _ in idle:
        assert await _closed_within(idle_reader, 3)
    assert await _get(f"http://127.0.0.1:{server.port}/") == "ok"
    assert server.guard.refused >= 1
    for _, idle_writer in idle:
        idle_writer.close()
    await server.stop()


async def test_one_client_cannot_take_the_slots_of_another() -> None:
    """The agent's probe ports: a neighbour holding connections open is capped on its own
    address, and the kubelet (another address) is still answered."""
    limits = ListenerLimits(max_connections=64, max_connections_per_client=4)
    server = HttpServer(_app(), limits=limits)
    server.start(bind("127.0.0.1", 0))
    await serving_listener.started(server)
    neighbour = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(10)]
    over = await asyncio.gather(*(_closed_within(r, 0.5) for r, _ in neighbour))
    assert sum(over) == 6, over
    kubelet = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=kubelet, trust_env=False, timeout=5) as client:
        assert (await client.get(f"http://127.0.0.1:{server.port}/")).text == "ok"
    assert server.guard is not None
    assert server.guard.per_client.get("127.0.0.1") == 4
    for _, writer in neighbour:
        writer.close()
    await server.stop()


async def test_a_megabyte_of_headers_is_refused_without_being_held() -> None:
    server = HttpServer(_app())
    server.start(bind("127.0.0.1", 0))
    await serving_listener.started(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    try:
        for index in range(1024):  # 1 KiB headers, never ending
            writer.write(b"X-%d: %s\r\n" % (index, b"a" * 1024))
            await writer.drain()
    except ConnectionError:
        pass
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        answer = b""  # reset: the server closed with our headers unread
    # The 16 KiB cap on a head (h11: 400; httptools: 431, tests/test_serving_heads.py), or a
    # reset when the server closed with our headers unread.
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")) or answer == b""
    writer.close()
    assert await _get(f"http://127.0.0.1:{server.port}/") == "ok"
    await server.stop()


async def test_headers_trickled_byte_by_byte_are_cut_off_at_the_request_deadline() -> None:
    server = HttpServer(_app(), limits=ListenerLimits(request_timeout=0.5))
    server.start(bind("127.0.0.1", 0))
    await serving_listener.started(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed = False
    for _ in range(40):  # one header byte every 50 ms: never a complete request
        try:
            writer.write(b"X")
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        if reader.at_eof() or await _closed_within(reader, 0.05):
            closed = True
            break
    assert closed, "the connection outlived its request deadline"
    assert time.monotonic() - started < 1.5
    assert await _get(f"http://127.0.0.1:{server.port}/") == "ok"
    writer.close()
    await server.stop()


async def test_stalled_tls_handshakes_time_out_and_do_not_block_an_honest_client(
    tmp_path: Path,
) -> None:
    certs = devcerts.issue(tmp_path, ["localhost"])
    store = CertificateStore(certs.cert_file, certs.key_file)
    store.load()
    limits = ListenerLimits(max_connections=64, max_handshakes=2, handshake_timeout=0.5)
    server = HttpServer(_app(), limits=limits, tls=store.server_context)
    server.start(bind("127.0.0.1", 0))
    await serving_listener.started(server)
    # Ten clients connect and never send a ClientHello: two hold the handshake turns, the
    # others wait for one; all are cut at the handshake deadline.
    stalled = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(10)]
    await asyncio.sleep(0.1)
    assert server.guard is not None
    assert server.guard.handshaking == 10
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    started = time.monotonic()
    assert await _get(f"https://localhost:{server.port}/", verify=context) == "ok"
    assert time.monotonic() - started < 2.0
    for reader, _ in stalled:
        assert await _closed_within(reader, 2)
    assert server.guard.handshaking == 0
    assert server.guard.open == 0 or server.guard.open == 1  # the honest client's keep-alive
    for _, writer in stalled:
        writer.close()
    await server.stop()


async def test_a_tls_client_that_sends_its_request_with_the_handshake_is_answered(
    tmp_path: Path,
) -> None:
    """Data that arrives with the handshake's last flight is kept for HTTP, not lost."""
    certs = devcerts.issue(tmp_path, ["localhost"])
    store = CertificateStore(certs.cert_file, certs.key_file)
    store.load()
    server = HttpServer(_app(), tls=store.server_context)
    server.start(bind("127.0.0.1", 0))
    await serving_listener.started(server)
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    for _ in range(20):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname="localhost"
        )
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(), 5)
        assert reply.startswith(b"HTTP/1.1 200")
        assert reply.endswith(b"ok")
        writer.close()
    await server.stop()


def test_the_fd_limit_is_raised_to_the_hard_limit() -> None:
    """In a child whose soft limit was lowered: raised back to the hard limit, and judged
    against what the caps need."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    code = (
        "import resource; from control.serving.limits import raise_fd_limit;"
        f"print(raise_fd_limit(10), raise_fd_limit({hard} + 1))"
    )

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    out = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=lower, capture_output=True, text=True, check=True
    ).stdout
    if hard == resource.RLIM_INFINITY:
        assert out.startswith("(256, True)")
    else:
        assert out.strip() == f"({hard}, True) ({hard}, False)"
