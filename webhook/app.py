"""The webhook's ASGI app: the admission routes, health and metrics.

Built by `create_app` from frozen settings and seams; it opens no sockets and reads no files.
`POST /inject` and `POST /validate` go straight to their `ReviewRoute` (plain ASGI, the hot
path); everything else, the same paths with other methods included (405), is Starlette's.
"""

from __future__ import annotations

from collections.abc import Callable

from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from control.api import validate_resource
from injector import InjectionConfig, inject
from webhook.budget import ReviewBudget
from webhook.handlers import Injector, PodInjection, ResourceValidation, Validator
from webhook.metrics import WebhookMetrics
from webhook.route import Handler, ReviewRoute
from webhook.settings import WebhookSettings

Readiness = Callable[[], bool]


class WebhookApp:
    """The ASGI app: admission POSTs to their route, the rest to Starlette (`others`)."""

    def __init__(self, reviews: dict[str, ReviewRoute], others: ASGIApp) -> None:
        self._reviews = reviews
        self._others = others

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self._reviews.get(scope["path"])
            if route is not None:
                await route(scope, receive, send)
                return
        await self._others(scope, receive, send)


def create_app(
    settings: WebhookSettings,
    injection_config: InjectionConfig,
    *,
    readiness: Readiness,
    validator: Validator | None = None,
    injector: Injector = inject,
    metrics: WebhookMetrics | None = None,
) -> WebhookApp:
    """The webhook app. `readiness` says whether a serving certificate is loaded; `validator`
    defaults to the mesh API's `validate_resource`; `metrics` may be shared with a process that
    serves them elsewhere (a fresh registry otherwise)."""
    metrics = metrics or WebhookMetrics()
    limiter = CapacityLimiter(settings.offload_threads)
    budget = ReviewBudget(settings)
    reviews: dict[str, Handler] = {
        "/inject": PodInjection(injection_config, injector),
        "/validate": ResourceValidation(validator or validate_resource),
    }
    routes = {
        path: ReviewRoute(path, handler, settings, metrics, limiter, budget)
        for path, handler in reviews.items()
    }

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if readiness():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready: no valid serving certificate loaded\n", 503)

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"content-type": content_type})

    others = Starlette(
        routes=[
            *(Route(path, route, methods=["POST"]) for path, route in routes.items()),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )
    return WebhookApp(routes, others)
