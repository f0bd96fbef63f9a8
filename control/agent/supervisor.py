"""Keeps one Envoy running: restarts it with exponential backoff when it dies, and stops it
gracefully (drain, wait, terminate) when the pod is going away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from control.agent.admin import EnvoyAdmin
from control.agent.envoy_process import EnvoyLaunch, spawn

log = logging.getLogger("mizzen.agent")
Spawner = Callable[[EnvoyLaunch], Awaitable[asyncio.subprocess.Process]]


class Supervisor:
    """Runs Envoy until `stop()`: a death is logged and followed by a restart after a backoff
    that doubles up to `backoff_max` and resets once a run outlives `backoff_max`."""

    def __init__(
        self,
        launch: EnvoyLaunch,
        *,
        backoff_initial: float,
        backoff_max: float,
        spawner: Spawner = spawn,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._launch = launch
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._spawner = spawner
        self._clock = clock
        self._stopping = asyncio.Event()
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Returns after `stop()`; raises OSError if Envoy cannot be executed at all."""
        backoff = self._backoff_initial
        while not self._stopping.is_set():
            started = self._clock()
            self.process = await self._spawner(self._launch)
            self.starts += 1
            log.info("envoy started (pid %d, start %d)", self.process.pid, self.starts)
            if self._stopping.is_set():  # stop() came while it was starting: end it at once
                self.process.send_signal(signal.SIGTERM)
            code = await self.process.wait()
            if self._stopping.is_set():
                log.info("envoy exited with %d while stopping", code)
                return
            if self._clock() - started > self._backoff_max:
                backoff = self._backoff_initial
            log.warning("envoy exited unexpectedly with %d; restarting in %.1fs", code, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2, self._backoff_max)

    def stop(self) -> None:
        """No more restarts; the current Envoy, if any, is left to `terminate()`."""
        self._stopping.set()

    async def drain(self, admin: EnvoyAdmin, duration: float) -> None:
        """Drains the listeners, then waits `duration` (or until Envoy exits by itself)."""
        self.stop()
        if not self.running:
            return
        if await admin.drain_listeners():
            log.info("draining envoy's listeners for %.1fs", duration)
        else:
            log.warning("envoy's admin did not accept the drain; stopping it anyway")
            return
        assert self.process is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), timeout=duration)

    async def terminate(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        self.stop()
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace)
        except TimeoutError:
            log.warning("envoy ignored SIGTERM for %.1fs; killing it", grace)
            process.kill()
            await process.wait()
