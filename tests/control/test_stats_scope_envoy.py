"""Istio's series outlive a config change, in a real Envoy: translation's stats loggers share
one stats scope (`sharing_name`), so when a policy change replaces a filter chain and the old
chain's drain ends, the series only that chain had recorded are kept. With a scope per logger
they were freed with the chain: an idle series' counters restarted from zero at its next
request (a counter reset, and lost counts, at every policy change)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.agent.telemetry.exposition import split_sample
from control.plane.xds.translate.telemetry import (
    ChainSecurity,
    Direction,
    Telemetry,
    http_telemetry,
)
from tests.control.envoy_proc import Envoy, run_envoy_config

pytestmark = [pytest.mark.envoy, pytest.mark.anyio]

_T = "type.googleapis.com/"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_COUNTED = ("envoy_istio_requests_total", "envoy_istio_request_duration_milliseconds_count")


def _listener(port: int, body: str) -> dict[str, Any]:
    """The inbound side of a sidecar, reduced: mizzen's telemetry and a direct answer whose
    body tells the config's versions apart."""
    telemetry = http_telemetry(Telemetry(), Direction.INBOUND, ChainSecurity.PLAINTEXT)
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": _T + "envoy.extensions.filters.http.router.v3.Router"},
    }
    manager = {
        "@type": _T + _HCM, "stat_prefix": "inbound", "access_log": telemetry.access_log,
        "http_filters": [*telemetry.filters, router],
        "route_config": {"virtual_hosts": [{
            "name": "app", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": body}}}],
        }]},
    }  # fmt: skip
    return {
        "@type": _T + "envoy.config.listener.v3.Listener", "name": "inbound",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager", "typed_config": manager,
        }]}],
    }  # fmt: skip


def _write_listeners(path: Path, port: int, version: int) -> None:
    """LDS from a file, replaced whole (Envoy watches the directory for the move)."""
    staged = path.with_suffix(".tmp")
    resources = {"version_info": str(version), "resources": [_listener(port, f"v{version}")]}
    staged.write_text(json.dumps(resources))
    os.replace(staged, path)


async def _stats(envoy: Envoy) -> dict[str, float]:
    text = (await envoy.http.get("/stats/prometheus")).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        sample = split_sample(line)
        if sample is not None and not line.startswith("#"):
            values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
    return values


async def _until(envoy: Envoy, done: Callable[[dict[str, float]], bool], what: str) -> None:
    for _ in range(200):
        if done(await _stats(envoy)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}; {envoy.log_tail()}")


async def test_series_outlive_the_drain_of_the_chain_that_recorded_them(tmp_path: Path) -> None:
    port = _free_port()
    lds = tmp_path / "lds" / "listeners.json"
    lds.parent.mkdir()
    _write_listeners(lds, port, 1)
    bootstrap = {
        "node": {"id": "sidecar~127.0.0.1~app.demo~demo.svc.cluster.local", "cluster": "app"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        # histograms published at once, not at the 5 s flush
        "stats_flush_interval": "0.1s",
        "dynamic_resources": {"lds_config": {
            "path_config_source": {
                "path": str(lds), "watched_directory": {"path": str(lds.parent)},
            },
            "resource_api_version": "V3",
        }},
    }  # fmt: skip
    async with run_envoy_config(tmp_path, bootstrap, ("--drain-time-s", "1")) as envoy:
        url = f"http://127.0.0.1:{port}/"
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            for _ in range(100):  # the listener is up
                try:
                    await client.get(url)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            for _ in range(2):
                assert (await client.get(url)).text == "v1"
            counted = dict.fromkeys(_COUNTED, 3.0)
            await _until(envoy, lambda s: all(s.get(n) == 3.0 for n in _COUNTED), "3 counted")

            _write_listeners(lds, port, 2)  # a policy change: the chain is replaced
            draining = "envoy_listener_manager_total_filter_chains_draining"
            await _until(envoy, lambda s: s.get(draining) == 1.0, "the old chain draining")
            await _until(envoy, lambda s: s.get(draining) == 0.0, "its drain ended")
            after = await _stats(envoy)
            assert {n: after.get(n) for n in _COUNTED} == counted, "the series were dropped"

            assert (await client.get(url)).text == "v2"
            await _until(envoy, lambda s: all(s.get(n) == 4.0 for n in _COUNTED), "4 counted")
        envoy.process.terminate()
        assert await asyncio.wait_for(envoy.process.wait(), 10) == 0, envoy.log_tail()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
