"""A real Envoy for tests: a minimal ADS bootstrap pointing at a control plane on 127.0.0.1,
admin on an ephemeral localhost port (found through --admin-address-path)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.control.envoy_static import envoy_binary

_H2 = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def ads_bootstrap(
    node_id: str,
    xds_port: int,
    labels: dict[str, str],
    api_type: str = "GRPC",
    more_xds_ports: tuple[int, ...] = (),
) -> dict[str, Any]:
    """`more_xds_ports`: other control plane replicas, in the same `xds-grpc` cluster."""
    pod, namespace = node_id.split("~")[2].rsplit(".", 1)
    ads = {"ads": {}, "resource_api_version": "V3", "initial_fetch_timeout": "0s"}
    return {
        "node": {
            "id": node_id,
            "cluster": f"{pod}.{namespace}",
            "metadata": {"NAME": pod, "NAMESPACE": namespace, "LABELS": labels},
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
                "set_node_on_first_message_only": True,
            },
            "cds_config": ads,
            "lds_config": ads,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "xds-grpc",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "xds-grpc",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": "127.0.0.1",
                                                    "port_value": port,
                                                }
                                            }
                                        }
                                    }
                                    for port in (xds_port, *more_xds_ports)
                                ]
                            }
                        ],
                    },
                    "typed_extension_protocol_options": {
                        _H2: {
                            "@type": "type.googleapis.com/" + _H2,
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                }
            ]
        },
    }


class Envoy:
    def __init__(self, process: asyncio.subprocess.Process, admin: str, log: Path) -> None:
        self.process = process
        self.admin = admin
        self.log = log
        self.http = httpx.AsyncClient(base_url=admin, trust_env=False, timeout=5)

    async def config_dump(self) -> dict[str, Any]:
        response = await self.http.get("/config_dump", params={"include_eds": ""})
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def clusters(self) -> str:
        response = await self.http.get("/clusters")
        response.raise_for_status()
        return response.text

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextlib.asynccontextmanager
async def run_envoy(
    workdir: Path,
    node_id: str,
    xds_port: int,
    labels: dict[str, str],
    api_type: str = "GRPC",
    more_xds_ports: tuple[int, ...] = (),
) -> AsyncIterator[Envoy]:
    bootstrap = ads_bootstrap(node_id, xds_port, labels, api_type, more_xds_ports)
    async with run_envoy_config(workdir, bootstrap) as envoy:
        yield envoy


@contextlib.asynccontextmanager
async def run_envoy_config(
    workdir: Path, bootstrap: dict[str, Any], args: tuple[str, ...] = ()
) -> AsyncIterator[Envoy]:
    """Envoy on `bootstrap` (admin on an ephemeral localhost port), with more command-line
    `args`; stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "envoy.json"
    config.write_text(json.dumps(bootstrap))
    admin_path = workdir / "admin-address"
    log = workdir / "envoy.log"
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            envoy_binary(), "-c", str(config), "--admin-address-path", str(admin_path),
            "--disable-hot-restart", "--log-level", "info", "--concurrency", "1", *args,
            stdout=out, stderr=out,
        )  # fmt: skip
    try:
        for _ in range(200):
            if admin_path.exists() and admin_path.read_text().strip():
                break
            if process.returncode is not None:
                raise RuntimeError(f"envoy exited: {log.read_text()[-3000:]}")
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"envoy admin never came up: {log.read_text()[-3000:]}")
        envoy = Envoy(process, "http://" + admin_path.read_text().strip(), log)
        try:
            yield envoy
        finally:
            await envoy.http.aclose()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def dump_section(dump: dict[str, Any], suffix: str) -> dict[str, Any]:
    """One section of Envoy's /config_dump by its @type suffix (e.g. "ListenersConfigDump")."""
    for config in dump["configs"]:
        if config["@type"].endswith(suffix):
            section: dict[str, Any] = config
            return section
    raise KeyError(suffix)
