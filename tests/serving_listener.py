"""An `HttpServer` on a loopback port for the listener tests, started and stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from starlette.types import ASGIApp

from control.serving import HttpServer, ListenerLimits, bind

Parser = Literal["httptools", "h11"]
PARSERS: tuple[Parser, ...] = ("httptools", "h11")


async def started(server: HttpServer) -> None:
    """Returns once `server` listens; fails if it does not within 2 s."""
    for _ in range(200):
        if server.started:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server did not start")


@asynccontextmanager
async def listening(
    app: ASGIApp, limits: ListenerLimits, parser: Parser
) -> AsyncIterator[HttpServer]:
    server = HttpServer(app, limits=limits, parser=parser)
    server.start(bind("127.0.0.1", 0))
    try:
        await started(server)
        yield server
    finally:
        await server.stop()
