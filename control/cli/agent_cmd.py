"""`mizzen agent`: the proxy container's command.

- `mizzen agent run`: render Envoy's bootstrap from the pod's environment, run and supervise
  Envoy, serve readiness (:15021) and status (:15020), drain on SIGTERM.
- `mizzen agent bootstrap`: print the bootstrap the agent would give Envoy (YAML, or `--json`).
- `mizzen agent wait`: block until the proxy is ready (the postStart hook of
  holdApplicationUntilProxyStarts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

import httpx
from pydantic import ValidationError

from control.agent.bootstrap import bootstrap_yaml, render_bootstrap
from control.agent.envoy_binary import EnvoyNotFoundError
from control.agent.node import mizzen_version
from control.agent.settings import AgentOptions, AgentSettings, SettingsError
from control.cli.agent_identity import add_identity_flags, identity_options
from injector import contract


def _add_options(parser: argparse.ArgumentParser) -> None:
    defaults = AgentOptions()
    add = parser.add_argument
    add("--admin-port", type=int, default=defaults.admin_port, help="Envoy admin (localhost)")
    add("--readiness-port", type=int, default=defaults.readiness_port, help="/healthz/ready")
    add("--status-port", type=int, default=None, help="$MIZZEN_STATUS_PORT or 15020; 0: none")
    add("--prometheus-port", type=int, default=defaults.prometheus_port, help="0: no listener")
    add("--outbound-port", type=int, default=defaults.outbound_port)
    add("--inbound-port", type=int, default=defaults.inbound_port)
    add("--proxy-uid", type=int, default=defaults.proxy_uid, help="Envoy's uid when run as root")
    add("--proxy-gid", type=int, default=defaults.proxy_gid, help="Envoy's gid when run as root")
    add("--base-id", type=int, default=None, help="Envoy hot-restart base id (default: disabled)")
    add(
        "--drain-duration",
        type=float,
        default=None,
        help=f"seconds (default: terminationDrainDuration, else {defaults.drain_duration:g})",
    )
    add(
        "--concurrency",
        type=int,
        default=None,
        help=f"Envoy's worker threads (default: the proxy config's, else {defaults.concurrency})",
    )
    add("--log-level", default=defaults.log_level, help="Envoy's log level")
    add("--envoy-path", type=Path, default=None, help="the Envoy binary (default: discovered)")
    add("--config-dir", type=Path, default=None, help="where the bootstrap is written")
    add(
        "--xds-api",
        choices=("DELTA_GRPC", "GRPC"),
        default=None,
        help="ADS variant Envoy asks for: Delta (default) or State of the World",
    )
    add_identity_flags(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    run_parser = sub.add_parser("run", help="run and supervise Envoy, serve health, drain")
    _add_options(run_parser)
    boot = sub.add_parser("bootstrap", help="print Envoy's bootstrap for this pod")
    _add_options(boot)
    boot.add_argument("--json", action="store_true", help="JSON instead of YAML")
    wait = sub.add_parser("wait", help="block until the proxy is ready")
    wait.add_argument("--readiness-port", type=int, default=contract.READINESS_PORT)
    wait.add_argument("--timeout", type=float, default=60.0, help="seconds")


def _settings(args: argparse.Namespace) -> AgentSettings:
    flags = {
        "admin_port": args.admin_port,
        "readiness_port": args.readiness_port,
        "status_port": args.status_port,
        "prometheus_port": args.prometheus_port,
        "outbound_port": args.outbound_port,
        "inbound_port": args.inbound_port,
        "proxy_uid": args.proxy_uid,
        "proxy_gid": args.proxy_gid,
        "base_id": args.base_id,
        "drain_duration": args.drain_duration,
        "concurrency": args.concurrency,
        "log_level": args.log_level,
        "envoy_path": args.envoy_path,
        "config_dir": args.config_dir,
        "xds_api": args.xds_api,
    }
    try:
        # Only the flags given count as set, so the pod's proxy config can fill the others.
        given = {k: v for k, v in flags.items() if v is not None}
        options = AgentOptions(**given, identity=identity_options(args))
    except ValidationError as error:
        first = error.errors()[0]
        flag = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "flags"
        raise SettingsError(flag, first["msg"]) from None
    return AgentSettings.from_env(os.environ, options)


def _wait(args: argparse.Namespace) -> int:
    url = f"http://127.0.0.1:{args.readiness_port}{contract.READINESS_PATH}"
    deadline = time.monotonic() + args.timeout
    reason = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=1.0, trust_env=False)  # localhost: no proxy
            if response.status_code == 200:
                return 0
            reason = response.text.strip()
        except httpx.HTTPError as error:
            reason = type(error).__name__
        time.sleep(0.2)
    sys.stderr.write(f"mizzen agent wait: proxy not ready after {args.timeout}s: {reason}\n")
    return 1


def run(args: argparse.Namespace) -> int:
    if args.agent_command == "wait":
        return _wait(args)
    try:
        settings = _settings(args)
        if args.agent_command == "bootstrap":
            if args.json:
                bootstrap = render_bootstrap(settings, mizzen_version())
                sys.stdout.write(json.dumps(bootstrap, indent=2) + "\n")
            else:
                sys.stdout.write(bootstrap_yaml(settings, mizzen_version()))
            return 0
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        for noisy in ("httpx", "uvicorn.error"):  # one line per probe/start-up otherwise
            logging.getLogger(noisy).setLevel(logging.WARNING)
        from control.agent.run import run_agent  # grpc/uvicorn only when actually running

        return asyncio.run(run_agent(settings))
    except SettingsError as error:
        sys.stderr.write(f"mizzen agent: {error}\n")
        return 2
    except (EnvoyNotFoundError, OSError) as error:
        sys.stderr.write(f"mizzen agent: {error}\n")
        return 1
