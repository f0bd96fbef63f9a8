"""uvicorn's httptools (llhttp) protocol with the same request deadline and coalesced writes as
the h11 one (`deadline.py`), and a cap on a request's head: the HTTP protocol of every listener.

httptools parses a request in C, about half of what serving a small request costs with h11
(hack/bench/bench_webhook.py). Unlike h11, which refuses a head (request line and headers) over
16 KiB, it bounds nothing: a client sending headers without end would be buffered until the
request deadline. Here the bytes received while a head is incomplete are counted, and past
`max_head_bytes` the client is answered 431 (or, with a response of its own in progress, cut
off) and the connection closed. The count covers every read that starts while a head is
awaited, so it overshoots a head only by what one read holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from control.serving.deadline import Coalescing, RequestDeadline, nothing

# h11's limit on an incomplete event (a request's head), which the h11 protocol enforced.
MAX_HEAD_BYTES = 16 * 1024
_TOO_LARGE = b"request head (request line and headers) too large\n"
_REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    request_timeout: float = 5.0
    max_head_bytes: int = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = RequestDeadline(self.request_timeout, lambda: self._received, self.logger)
        self._awaiting_head = True  # between requests, or inside a head
        self._head_bytes = 0
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
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._awaiting_head and self._head_bytes > self.max_head_bytes:
            self._refuse_head()
        elif self._received:
            self._deadline.disarm()

    # Parser callbacks, on top of uvicorn's.
    def on_message_begin(self) -> None:
        self._received = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._received = True
        self._awaiting_head = True
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.disarm()
        try:
            super().connection_lost(exc)
        finally:
            self.on_lost()

    def _refuse_head(self) -> None:
        self.logger.debug("closing a connection whose request head is over the limit")
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_REFUSAL)
        self.transport.close()
