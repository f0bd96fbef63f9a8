"""Misbehaving clients over raw TLS sockets against the real server (default timeouts): they are
answered or cut off well before the API server's 10 s, and never hold up anyone else.

The scenarios that wait on the server's timeouts run all at once, beside a well-behaved client
whose reviews must stay fast: that is the claim (and it keeps the test short)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.webhook.conftest import RunningServer
from tests.webhook.rawhttp import head, read_response, wait_closed
from tests.webhook.samples import body, pod_review

VALID = body(pod_review())
BODY_TIMEOUT = 3.0  # WebhookSettings.body_read_timeout
REQUEST_TIMEOUT = 5.0  # ServerSettings.request_read_timeout
CUT = (BrokenPipeError, ConnectionResetError, ssl.SSLError)


def trickled_body(server: RunningServer) -> None:
    """One body byte every 100 ms: alive, but far too slow -> 408, then closed."""
    with server.connect() as connection:
        connection.sendall(head(len(VALID)))
        started = time.monotonic()
        status, message = 0, b""
        for byte in VALID[:60]:
            try:
                connection.sendall(bytes([byte]))
            except CUT:
                break
            connection.settimeout(0.1)
            try:
                status, message = read_response(connection)
                break
            except TimeoutError:
                continue
        connection.settimeout(10)
        elapsed = time.monotonic() - started
        assert status == 408
        assert b"did not arrive within 3 s" in message
        wait_closed(connection)
    assert BODY_TIMEOUT - 0.5 < elapsed < BODY_TIMEOUT + 1.5, elapsed


def trickled_headers(server: RunningServer) -> None:
    """One header byte every 100 ms, never ending -> closed by the request deadline."""
    with server.connect() as connection:
        started = time.monotonic()
        closed = False
        for byte in head(len(VALID)) * 10:
            try:
                connection.sendall(bytes([byte]))
            except CUT:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > 9:
                break
        if not closed:
            wait_closed(connection)
        elapsed = time.monotonic() - started
    assert elapsed < REQUEST_TIMEOUT + 1.5, elapsed


def silent(server: RunningServer) -> None:
    """Connects (TLS and all) and never sends a request -> closed by the request deadline."""
    with server.connect() as connection:
        started = time.monotonic()
        wait_closed(connection)
        elapsed = time.monotonic() - started
    assert elapsed < REQUEST_TIMEOUT + 1.5, elapsed


def truncated_body(server: RunningServer) -> None:
    """Declares 100 bytes more than it sends, and waits -> 408."""
    with server.connect() as connection:
        connection.sendall(head(len(VALID) + 100) + VALID)
        started = time.monotonic()
        status, _ = read_response(connection)
        assert status == 408
        assert time.monotonic() - started < BODY_TIMEOUT + 1.5


def endless_chunked_body(server: RunningServer) -> None:
    """Streams chunks for ever -> 413 once over 6 MiB, then cut off by the request deadline."""
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    with server.connect() as connection:
        connection.sendall(head(None))
        started = time.monotonic()
        try:
            while time.monotonic() - started < 9:
                connection.sendall(chunk)
        except (*CUT, TimeoutError):
            pass
        elapsed = time.monotonic() - started
    assert elapsed < REQUEST_TIMEOUT + 1.5, f"still sending after {elapsed:.1f} s"


def gone_mid_body(server: RunningServer) -> None:
    """Clients that hang up half-way through their bodies -> nothing to answer, no harm."""
    for _ in range(5):
        connection = server.connect()
        connection.sendall(head(len(VALID) * 2) + VALID)
        connection.close()


def idle_between_reviews(server: RunningServer) -> None:
    """The API server reuses idle connections: the request deadline must not close one that
    waits between reviews (idle connections last 120 s, beyond Go's 90 s idle timeout)."""
    with server.connect() as connection:
        connection.sendall(head(len(VALID)) + VALID)
        assert read_response(connection)[0] == 200
        time.sleep(REQUEST_TIMEOUT + 1)
        connection.sendall(head(len(VALID)) + VALID)
        status, answer = read_response(connection)
        assert status == 200
        assert b'"allowed":true' in answer


SCENARIOS: list[Callable[[RunningServer], None]] = [
    trickled_body, trickled_headers, silent, truncated_body, endless_chunked_body,
    gone_mid_body, idle_between_reviews,
]  # fmt: skip


def test_misbehaving_clients_are_cut_off_without_holding_up_others(
    tls_server: RunningServer,
) -> None:
    failures: dict[str, BaseException] = {}
    latencies: list[float] = []
    stop = threading.Event()

    def guarded(scenario: Callable[[RunningServer], None]) -> None:
        try:
            scenario(tls_server)
        except BaseException as error:  # reported below, by scenario
            failures[scenario.__name__] = error

    def well_behaved() -> None:
        with httpx.Client(verify=tls_server.client_context(), timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                reply = client.post(f"{tls_server.url}/inject", content=VALID,
                                    headers={"content-type": "application/json"})  # fmt: skip
                assert reply.json()["response"]["allowed"] is True
                latencies.append(time.monotonic() - started)
                stop.wait(0.05)

    reviewer = threading.Thread(target=guarded, args=(lambda _: well_behaved(),), daemon=True)
    reviewer.start()
    threads = [threading.Thread(target=guarded, args=(s,), daemon=True) for s in SCENARIOS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    stop.set()
    reviewer.join(timeout=15)
    assert not failures, {name: repr(error) for name, error in failures.items()}
    assert len(latencies) >= 30, "the well-behaved client was held up"
    assert max(latencies) < 1.0, f"a review took {max(latencies):.3f} s"
    with httpx.Client(verify=tls_server.client_context()) as client:
        assert client.get(f"{tls_server.url}/healthz").status_code == 200


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header_block = await reader.readuntil(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    length = next(int(line.partition(":")[2]) for line in lines
                  if line.lower().startswith("content-length:"))  # fmt: skip
    return int(lines[0].split()[1]), await reader.readexactly(length)


@pytest.mark.anyio
async def test_413_is_read_by_a_client_still_sending(tls_server: RunningServer) -> None:
    """The client writes an 8 MiB body in full while reading (as Go's HTTP client does): it
    gets the 413, and the connection serves the next review once the refused body is drained.
    (asyncio, because one TLS connection cannot be written and read from two threads.)"""
    oversize = b" " * (8 * 1024 * 1024)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", tls_server.port, ssl=tls_server.client_context(), server_hostname="localhost"
    )
    try:
        writer.write(head(len(oversize)) + oversize)
        sending = asyncio.ensure_future(writer.drain())
        status, message = await asyncio.wait_for(_response(reader), 10)
        assert status == 413
        assert b"over the 6291456-byte limit" in message
        await asyncio.wait_for(sending, 10)
        writer.write(head(len(VALID)) + VALID)
        status, answer = await asyncio.wait_for(_response(reader), 10)
        assert status == 200
        assert b'"allowed":true' in answer
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def test_413_comes_before_the_body_is_sent(tls_server: RunningServer) -> None:
    """A declared oversize body is refused at once (as with `Expect: 100-continue`)."""
    with tls_server.connect() as connection:
        connection.sendall(head(7 * 1024 * 1024, extra="expect: 100-continue\r\n"))
        started = time.monotonic()
        status, _ = read_response(connection)
        assert status == 413
        wait_closed(connection)  # the body will not come: no point keeping the connection
        assert time.monotonic() - started < 1.0
