"""The debug HTTP endpoints (15014): readiness, sync status, config dumps, config, metrics.
`/ready` and `/metrics` are open; the rest only to loopback or a bearer token (`debug_access`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from control.plane.debug_access import DebugAccess
from control.plane.metrics import Metrics
from control.plane.model.state import ConfigProblem
from control.plane.sync_status import SyncRegistry
from control.plane.xds.cache.snapshot_cache import SnapshotCache
from control.plane.xds.translate.proxy import ProxyIdError, parse_node
from control.plane.xds.translate.resources import PUSH_ORDER, SHORT_NAMES


class CostlyPage:
    """A JSON page whose rendering grows with the mesh (`/debug/syncz`: megabytes at thousands
    of proxies, built on the event loop), reused for `reuse` times as long as it took to render:
    repeated requests then cost the loop a bounded share of its time, while a small mesh's page
    (rendered in a millisecond) is as good as fresh."""

    def __init__(
        self,
        render: Callable[[], Any],
        reuse: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.render, self.reuse, self.clock = render, reuse, clock
        self.body: bytes | None = None
        self.until = 0.0

    def response(self) -> Response:
        started = self.clock()
        if self.body is None or started >= self.until:
            self.body = bytes(JSONResponse(self.render()).body)
            finished = self.clock()
            self.until = finished + self.reuse * (finished - started)
        return Response(self.body, media_type="application/json")


def build_app(
    cache: SnapshotCache,
    sync: SyncRegistry,
    metrics: Metrics,
    ready: Callable[[], bool],
    source_problems: Callable[[], tuple[ConfigProblem, ...]] = tuple,
    token: str | None = None,
) -> ASGIApp:
    async def readiness(_: Request) -> Response:
        return PlainTextResponse("ok\n" if ready() else "starting\n", 200 if ready() else 503)

    syncz_page = CostlyPage(sync.syncz)

    async def syncz(_: Request) -> Response:
        return syncz_page.response()

    async def pushz(_: Request) -> Response:
        """The latest push: its version, how many proxies it changed, translations it made."""
        return JSONResponse(cache.last_push.as_json())

    async def configz(_: Request) -> Response:
        state = cache.state
        return JSONResponse(
            {
                "summary": state.summary(),
                "mesh": state.mesh.model_dump(mode="json", by_alias=True),
                "problems": [
                    {"origin": p.origin, "kind": p.kind, "name": p.name,
                     "severity": p.severity, "message": p.message}
                    for p in (*source_problems(), *state.problems)
                ],
            }
        )  # fmt: skip

    async def config_dump(request: Request) -> Response:
        wanted = request.query_params.get("proxy")
        watches = sorted(cache.watches, key=lambda w: w.proxy.key)
        if not wanted:
            return JSONResponse({"proxies": sorted({w.proxy.node_id for w in watches})})
        for watch in watches:
            if wanted in (watch.proxy.node_id, watch.proxy.key) and watch.snapshot is not None:
                snapshot = watch.snapshot
                body: dict[str, Any] = {
                    "proxy": watch.proxy.node_id,
                    "connected": True,
                    "versions": {SHORT_NAMES[t]: snapshot.version(t) for t in PUSH_ORDER},
                    "error": watch.last_error,
                }
                body.update(snapshot.resources.to_json())
                return JSONResponse(body)
        try:
            proxy = parse_node(wanted)
        except ProxyIdError:
            message = f"no connected proxy {wanted!r}; give a connected one or a full node id"
            return JSONResponse({"error": message}, status_code=404)
        try:
            resources = cache.snapshot_for(proxy)
        except Exception as error:  # a translation bug: say so, as the push loop does
            message = f"translation failed: {type(error).__name__}: {error}"
            return JSONResponse({"proxy": proxy.node_id, "error": message}, status_code=500)
        body = {"proxy": proxy.node_id, "connected": False}
        body.update(resources.to_json())
        return JSONResponse(body)

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/ready", readiness),
            Route("/debug/syncz", syncz),
            Route("/debug/pushz", pushz),
            Route("/debug/configz", configz),
            Route("/debug/config_dump", config_dump),
            Route("/metrics", prometheus),
        ]
    )
    return DebugAccess(app, token)
