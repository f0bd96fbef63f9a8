"""One admission route (`POST /inject`, `POST /validate`) as a plain ASGI callable: read, parse,
decide, answer, count. Every failure ends here.

The two routes carry all of the webhook's traffic, so they are served without Starlette's
routing, middleware, `Request` and `Response` objects, which cost as much per review as reading
and answering it (measured in hack/bench/bench_webhook.py); the other routes stay Starlette's
(`webhook.app`). Every limit is kept: the concurrent-reviews and large-body budget (503 before
the body is read), the body cap (413) and its deadline (408), and the metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from anyio import CapacityLimiter, to_thread
from starlette.types import Receive, Scope, Send

from webhook import metrics as m
from webhook.budget import ReviewBudget
from webhook.framing import (
    admission_request,
    check_content_type,
    check_declared_length,
    parse_json,
    read_body,
    review_uid,
)
from webhook.metrics import WebhookMetrics
from webhook.outcome import FramingError, Verdict, verdict_for_failure
from webhook.review import AdmissionRequest, review_response
from webhook.settings import WebhookSettings

log = logging.getLogger("mizzen.webhook")

Handler = Callable[[AdmissionRequest], Verdict]

_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_CLOSE = [(b"connection", b"close")]
_OVERLOADED = [(b"retry-after", b"1"), *_CLOSE]


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case, as ASGI servers give them)."""
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _declared_size(declared: str | None, limit: int) -> int:
    """The body's declared length, or `limit` when it is not declared usably (chunked; an
    invalid or oversize value is refused by `check_declared_length` anyway)."""
    declared = (declared or "").strip()
    if declared.isascii() and declared.isdigit() and len(declared) <= 18:
        return min(int(declared), limit)
    return limit


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    length = [(b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": headers + length})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, message: str, *, close: bool = False) -> None:
    body = f"{message}\n".encode()
    await _answer(send, status, body, _TEXT + _CLOSE if close else _TEXT)


class ReviewRoute:
    """`path`'s POSTs: an ASGI app (`scope`, `receive`, `send`) for HTTP requests only."""

    def __init__(
        self,
        path: str,
        handler: Handler,
        settings: WebhookSettings,
        metrics: WebhookMetrics,
        limiter: CapacityLimiter,
        budget: ReviewBudget,
    ) -> None:
        self.path = path
        self._budget = budget
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self._limiter = limiter
        self._counts_decisions = path == "/inject"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        declared = _header(scope, b"content-length")
        size = _declared_size(declared, self._settings.max_body_bytes)
        refused = self._budget.admit(size)
        if refused is not None:
            self._metrics.observe(self.path, m.REJECTED, time.perf_counter() - started)
            # The body is not read: the connection is closed after the answer, not drained.
            body = f"overloaded: {refused}; retry\n".encode()
            await _answer(send, 503, body, _TEXT + _OVERLOADED)
            return
        try:
            await self._review(scope, receive, send, declared, started)
        finally:
            self._budget.release(size)

    async def _review(
        self, scope: Scope, receive: Receive, send: Send, declared: str | None, started: float
    ) -> None:
        try:
            check_content_type(_header(scope, b"content-type"))
            settings = self._settings
            check_declared_length(declared, _header(scope, b"expect"), settings.max_body_bytes)
            body = await read_body(receive, settings)
            if len(body) >= settings.offload_threshold_bytes:
                answer = await to_thread.run_sync(self._decide, body, limiter=self._limiter)
            else:
                answer = self._decide(body)
            if isinstance(answer, FramingError):
                raise answer
        except FramingError as error:
            self._metrics.observe(self.path, m.REJECTED, time.perf_counter() - started)
            await _refuse(send, error.status, error.message, close=error.close)
            return
        except Exception as error:  # a bug before the review's uid was known
            log.error("unexpected error reading a review on %s", self.path, exc_info=error)
            self._metrics.observe(self.path, m.ERROR, time.perf_counter() - started)
            await _refuse(send, 400, "could not read the AdmissionReview")
            return
        payload, verdict = answer
        outcome = m.ALLOWED if verdict.allowed else m.DENIED
        if verdict.is_bug:
            outcome = m.ERROR
        decision = verdict.decision if self._counts_decisions else ""
        self._metrics.observe(self.path, outcome, time.perf_counter() - started, decision)
        await _answer(send, 200, payload, _JSON)

    def _decide(self, body: bytes) -> tuple[bytes, Verdict] | FramingError:
        """Parse and decide; CPU only, so it may run in a worker thread. Once the uid is known,
        every failure becomes an answer to that review.

        A framing error is returned, not raised, and without its traceback: the traceback's
        frames hold the parsed document, and an exception carried back from a worker thread
        ends up in reference cycles that keep such documents (hundreds of MiB, for a body of
        millions of tiny objects) alive until a full garbage collection."""
        try:
            document = parse_json(body)
            uid = review_uid(document)
        except FramingError as error:
            return error.with_traceback(None)
        assert isinstance(document, dict)
        try:
            verdict = self._handler(admission_request(document))
            return self._encode(uid, verdict), verdict
        except Exception as error:
            verdict = verdict_for_failure(error, uid=uid, route=self.path)
            return self._encode(uid, verdict), verdict

    @staticmethod
    def _encode(uid: str, verdict: Verdict) -> bytes:
        return review_response(
            uid,
            allowed=verdict.allowed,
            patch=verdict.patch,
            code=verdict.code,
            message=verdict.message,
            warnings=verdict.warnings,
        )
