"""uvicorn's httptools (llhttp) protocol with the same request deadline and coalesced writes as
the h11 one (`deadline.py`), and caps on what a request's framing and a pipeline may hold: the
HTTP protocol of every listener.

httptools parses a request in C, about half of what serving a small request costs with h11
(hack/bench/bench_webhook.py). Unlike h11, which refuses an incomplete event (a head, a chunked
body's trailers) over 16 KiB and reads one request at a time, it bounds nothing:

- **Framing.** Bytes received outside a body's data (a head, a chunk's size line and
  extensions, a chunked body's trailers) are counted, and past `max_head_bytes` the client is
  answered 431 (or, inside a request, cut off) and the connection closed. Without it, headers
  or trailers without end were buffered until the request deadline: one client sending tiny
  trailers made the process hold 2 GiB in 4 s. The count covers every read that starts outside
  a body and restarts at each piece of body, so it overshoots only by what one read holds.
  Trailers are never given to the app (ASGI has no place for them; uvicorn appended them to the
  request's headers, which RFC 9110 6.5.1 forbids).
- **Pipelining.** uvicorn queues every request received while one is in progress, and resumes
  reading after each response even with requests still queued: a client pipelining small
  requests made it hold ~180 MiB in a second. Beyond `max_pipelined` queued requests the
  connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from control.serving.deadline import Coalescing, RequestDeadline, ThrottledWarnings, nothing

# h11's limit on an incomplete event (a request's head, trailers), which the h11 protocol
# enforced.
MAX_HEAD_BYTES = 16 * 1024
# Requests queued behind the one in progress on a connection (h11 reads one at a time).
MAX_PIPELINED = 16
_TOO_LARGE = b"request head (request line and headers) too large\n"
_REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    request_timeout: float = 5.0
    max_head_bytes: int = MAX_HEAD_BYTES
    max_pipelined: int = MAX_PIPELINED

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = cast(logging.Logger, ThrottledWarnings(self.logger))  # duck-typed
        self._deadline = RequestDeadline(self.request_timeout, lambda: self._received, self.logger)
        self._in_body = False  # inside a body's data: its bytes are not framing
        self._headed = False  # between a request's head and its end (a body, trailers)
        self._framing_bytes = 0  # received since the last head's end or piece of body
        self._received = False  # the current request arrived whole: waiting is on our side
        # Called once the connection is gone: gives its slot back to the listener's guard.
        self.on_lost: Callable[[], None] = nothing

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = Coalescing(transport, asyncio.get_running_loop())
        super().connection_made(coalescing)
        self._deadline.arm(self.loop, self.transport)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if not self._deadline.armed:
            self._deadline.arm(self.loop, self.transport)
        if not self._in_body:
            self._framing_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._framing_bytes > self.max_head_bytes:
            self._refuse_framing()
        elif self._received:
            self._deadline.disarm()

    # Parser callbacks, on top of uvicorn's.
    def on_message_begin(self) -> None:
        self._received = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._headed = True
        self._framing_bytes = 0
        if self.transport.is_closing():
            return  # the rest of a read that overflowed the pipeline: not queued
        super().on_headers_complete()
        self.headers = []  # a chunked body's trailers land here, not in the request's headers
        if len(self.pipeline) > self.max_pipelined:
            self.logger.debug("closing a connection with too many requests pipelined")
            self.pipeline.clear()
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self._in_body = True
        self._framing_bytes = 0
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        self._in_body = False

    def on_message_complete(self) -> None:
        self._received = True
        self._in_body = False
        self._headed = False
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.disarm()
        try:
            super().connection_lost(exc)
        finally:
            self.on_lost()

    def _refuse_framing(self) -> None:
        self.logger.debug("closing a connection whose request framing is over the limit")
        if not self._headed and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_REFUSAL)
        self.transport.close()
