"""Misbehaving clients over raw TLS sockets against the real server (default timeouts): they are
answered or cut off well before the API server's 10 s, and never hold up anyone else."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.webhook.conftest import RunningServer
from tests.webhook.rawhttp import head, read_response, wait_closed
from tests.webhook.samples import body, pod_review

VALID = body(pod_review())
BODY_TIMEOUT = 3.0  # WebhookSettings.body_read_timeout
REQUEST_TIMEOUT = 5.0  # ServerSettings.request_read_timeout


@pytest.fixture
def review_latency(tls_server: RunningServer) -> Iterator[list[float]]:
    """Well-behaved reviews sent all along the test: their latencies."""
    latencies: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(verify=tls_server.client_context(), timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                reply = client.post(
                    f"{tls_server.url}/inject", content=VALID,
                    headers={"content-type": "application/json"},
                )  # fmt: skip
                assert reply.json()["response"]["allowed"] is True
                latencies.append(time.monotonic() - started)
                stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield latencies
    stop.set()
    thread.join(timeout=15)


def assert_others_served(latencies: list[float]) -> None:
    assert len(latencies) >= 10, "the well-behaved client was held up"
    assert max(latencies) < 1.0, f"a review took {max(latencies):.3f} s"


def test_a_trickled_body_is_answered_408_and_cut_off(
    tls_server: RunningServer, review_latency: list[float]
) -> None:
    with tls_server.connect() as connection:
        connection.sendall(head(len(VALID)))
        started = time.monotonic()
        status = 0
        for byte in VALID[:40]:  # one byte every 100 ms: alive, but far too slow
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
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
    assert BODY_TIMEOUT - 0.5 < elapsed < BODY_TIMEOUT + 1.5
    assert_others_served(review_latency)


def test_trickled_headers_are_cut_off(
    tls_server: RunningServer, review_latency: list[float]
) -> None:
    with tls_server.connect() as connection:
        started = time.monotonic()
        closed = False
        for byte in head(len(VALID)) * 10:  # a header byte every 100 ms, never ending
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > 9:
                break
        if not closed:
            wait_closed(connection)
        elapsed = time.monotonic() - started
    assert elapsed < REQUEST_TIMEOUT + 1.5
    assert_others_served(review_latency)


def test_a_silent_connection_is_closed(tls_server: RunningServer) -> None:
    with tls_server.connect() as connection:
        started = time.monotonic()
        wait_closed(connection)
        assert time.monotonic() - started < REQUEST_TIMEOUT + 1.5


def test_a_truncated_body_gets_408_when_the_client_waits(tls_server: RunningServer) -> None:
    with tls_server.connect() as connection:
        connection.sendall(head(len(VALID) + 100) + VALID)  # 100 bytes short
        started = time.monotonic()
        status, _ = read_response(connection)
        assert status == 408
        assert time.monotonic() - started < BODY_TIMEOUT + 1.5


def test_a_client_that_goes_away_mid_body_does_not_hurt(tls_server: RunningServer) -> None:
    for _ in range(5):
        connection = tls_server.connect()
        connection.sendall(head(len(VALID) * 2) + VALID)
        connection.close()
    with httpx.Client(verify=tls_server.client_context()) as client:
        reply = client.post(
            f"{tls_server.url}/inject", content=VALID, headers={"content-type": "application/json"}
        )
    assert reply.json()["response"]["allowed"] is True


def test_413_is_read_by_a_client_still_sending(tls_server: RunningServer) -> None:
    """The client sends an 8 MiB body in full, reading meanwhile: it gets the 413, and the
    connection serves the next review once the refused body has been drained."""
    oversize = b" " * (8 * 1024 * 1024)
    with tls_server.connect() as connection:
        sender = threading.Thread(
            target=connection.sendall, args=(head(len(oversize)) + oversize,), daemon=True
        )
        sender.start()
        status, message = read_response(connection)
        assert status == 413
        assert b"over the 6291456-byte limit" in message
        sender.join(timeout=10)
        connection.sendall(head(len(VALID)) + VALID)
        status, answer = read_response(connection)
        assert status == 200
        assert b'"allowed":true' in answer


def test_413_comes_before_the_body_is_sent(tls_server: RunningServer) -> None:
    """A declared oversize body is refused at once (as with `Expect: 100-continue`)."""
    with tls_server.connect() as connection:
        connection.sendall(head(7 * 1024 * 1024, extra="expect: 100-continue\r\n"))
        started = time.monotonic()
        status, _ = read_response(connection)
        assert status == 413
        assert time.monotonic() - started < 1.0


def test_an_endless_chunked_body_is_refused_and_cut_off(tls_server: RunningServer) -> None:
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    with tls_server.connect() as connection:
        connection.sendall(head(None))
        started = time.monotonic()
        sent = 0
        try:
            while time.monotonic() - started < 9:
                connection.sendall(chunk)
                sent += 0x10000
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            pass
        elapsed = time.monotonic() - started
    assert elapsed < REQUEST_TIMEOUT + 1.5, f"still sending after {elapsed:.1f} s ({sent} bytes)"
