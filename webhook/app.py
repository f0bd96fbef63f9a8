"""The webhook's Starlette app: routes, the review pipeline, health and metrics.

Built by `create_app` from frozen settings and seams; it opens no sockets and reads no files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from anyio import CapacityLimiter, to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from control.api import validate_resource
from injector import InjectionConfig, inject
from webhook import metrics as m
from webhook.framing import admission_request, check_content_type, parse_json, read_body, review_uid
from webhook.handlers import Injector, PodInjection, ResourceValidation, Validator
from webhook.metrics import WebhookMetrics
from webhook.outcome import FramingError, Verdict, verdict_for_failure
from webhook.review import AdmissionRequest, review_response
from webhook.settings import WebhookSettings

log = logging.getLogger("mizzen.webhook")

Handler = Callable[[AdmissionRequest], Verdict]
Readiness = Callable[[], bool]


class ReviewBudget:
    """What reviews in progress may hold (`WebhookSettings.max_concurrent_reviews` and
    `max_buffered_bytes`), shared by the routes; a review over it is shed before its body is
    read."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.reviews = 0
        self.big_bytes = 0

    def admit(self, size: int) -> str | None:
        """None: admitted (`release(size)` when done). Otherwise why not."""
        settings = self.settings
        if self.reviews >= settings.max_concurrent_reviews:
            return f"{self.reviews} reviews in progress, the limit"
        big = size >= settings.offload_threshold_bytes
        if big and self.big_bytes + size > settings.max_buffered_bytes:
            return f"{self.big_bytes} bytes of large reviews in progress, the limit"
        self.reviews += 1
        if big:
            self.big_bytes += size
        return None

    def release(self, size: int) -> None:
        self.reviews -= 1
        if size >= self.settings.offload_threshold_bytes:
            self.big_bytes -= size


def _declared_size(request: Request, limit: int) -> int:
    """The body's declared length, or `limit` when it is not declared usably (chunked; an
    invalid or oversize value is refused by `read_body` anyway)."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and len(declared) <= 18:
        return min(int(declared), limit)
    return limit


class _ReviewRoute:
    """One admission route: read, parse, decide, answer, count. Every failure ends here."""

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

    async def endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        size = _declared_size(request, self._settings.max_body_bytes)
        refused = self._budget.admit(size)
        if refused is not None:
            self._metrics.observe(self.path, m.REJECTED, time.perf_counter() - started)
            # The body is not read: the connection is closed after the answer, not drained.
            headers = {"retry-after": "1", "connection": "close"}
            return PlainTextResponse(f"overloaded: {refused}; retry\n", 503, headers=headers)
        try:
            return await self._review(request, started)
        finally:
            self._budget.release(size)

    async def _review(self, request: Request, started: float) -> Response:
        try:
            check_content_type(request)
            body = await read_body(request, self._settings)
            if len(body) >= self._settings.offload_threshold_bytes:
                answer = await to_thread.run_sync(self._answer, body, limiter=self._limiter)
            else:
                answer = self._answer(body)
            if isinstance(answer, FramingError):
                raise answer
        except FramingError as error:
            self._metrics.observe(self.path, m.REJECTED, time.perf_counter() - started)
            headers = {"connection": "close"} if error.close else None
            return PlainTextResponse(f"{error.message}\n", error.status, headers=headers)
        except Exception as error:  # a bug before the review's uid was known
            log.error("unexpected error reading a review on %s", self.path, exc_info=error)
            self._metrics.observe(self.path, m.ERROR, time.perf_counter() - started)
            return PlainTextResponse("could not read the AdmissionReview\n", 400)
        payload, verdict = answer
        outcome = m.ALLOWED if verdict.allowed else m.DENIED
        if verdict.is_bug:
            outcome = m.ERROR
        decision = verdict.decision if self._counts_decisions else ""
        self._metrics.observe(self.path, outcome, time.perf_counter() - started, decision)
        return Response(payload, media_type="application/json")

    def _answer(self, body: bytes) -> tuple[bytes, Verdict] | FramingError:
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


def create_app(
    settings: WebhookSettings,
    injection_config: InjectionConfig,
    *,
    readiness: Readiness,
    validator: Validator | None = None,
    injector: Injector = inject,
    metrics: WebhookMetrics | None = None,
) -> Starlette:
    """The webhook app. `readiness` says whether a serving certificate is loaded; `validator`
    defaults to the mesh API's `validate_resource`; `metrics` may be shared with a process that
    serves them elsewhere (a fresh registry otherwise)."""
    metrics = metrics or WebhookMetrics()
    limiter = CapacityLimiter(settings.offload_threads)
    budget = ReviewBudget(settings)
    inject_route = _ReviewRoute(
        "/inject", PodInjection(injection_config, injector), settings, metrics, limiter, budget
    )
    validate_route = _ReviewRoute(
        "/validate",
        ResourceValidation(validator or validate_resource),
        settings,
        metrics,
        limiter,
        budget,
    )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if readiness():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready: no valid serving certificate loaded\n", 503)

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"content-type": content_type})

    routes = [
        Route(inject_route.path, inject_route.endpoint, methods=["POST"]),
        Route(validate_route.path, validate_route.endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes)
