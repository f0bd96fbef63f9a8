"""Bodies held at once are bounded: clients that declare big bodies and stall them take their
share of the byte budget and no more (the next is answered 503 before its body is read), and
the reviews a cluster actually sends (a pod of a few KB) are still answered at once."""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.webhook.conftest import RunningServer, ServerOptions
from tests.webhook.rawhttp import head, read_response
from tests.webhook.samples import body, pod_review
from webhook.settings import MIB, WebhookSettings

VALID = body(pod_review())


@pytest.fixture
def server_options() -> ServerOptions:
    settings = WebhookSettings(max_buffered_bytes=3 * MIB, max_concurrent_reviews=8)
    return ServerOptions(app_settings=settings)


@contextlib.contextmanager
def stalled(server: RunningServer, declared: int, count: int) -> Iterator[list[ssl.SSLSocket]]:
    """`count` reviews declaring `declared` bytes, each sending a first kilobyte only."""
    connections = []
    try:
        for _ in range(count):
            connection = server.connect()
            connection.sendall(head(declared) + b"{" + b" " * 1023)
            connections.append(connection)
        yield connections
    finally:
        for connection in connections:
            connection.close()


def _review(server: RunningServer) -> tuple[int, bytes, float]:
    with server.connect() as connection:
        started = time.monotonic()
        connection.sendall(head(len(VALID)) + VALID)
        status, message = read_response(connection)
        return status, message, time.monotonic() - started


def test_stalled_big_bodies_are_shed_and_small_reviews_still_answered(
    tls_server: RunningServer,
) -> None:
    with stalled(tls_server, 1 * MIB, 3) as held:
        time.sleep(0.2)  # the three are admitted: the budget of 3 MiB is taken
        with tls_server.connect() as extra:
            extra.sendall(head(1 * MIB))
            status, message = read_response(extra)
        assert status == 503
        assert b"bytes of large reviews in progress" in message
        # A pod review is small: it never waits behind the big ones.
        status, _, elapsed = _review(tls_server)
        assert status == 200
        assert elapsed < 0.5
        assert len(held) == 3


def test_too_many_reviews_at_once_are_shed_and_the_server_recovers(
    tls_server: RunningServer,
) -> None:
    with stalled(tls_server, 2000, 8):
        time.sleep(0.2)
        status, message, _ = _review(tls_server)
        assert status == 503
        assert b"8 reviews in progress" in message
    # The stalled ones are gone (closed by their clients): reviews are admitted again.
    deadline = time.monotonic() + 5
    while (status := _review(tls_server)[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 200
