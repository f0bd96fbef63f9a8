"""`mizzen control`: the control plane (xDS over gRPC, debug endpoints) on a config directory
or, with `--kube`, on the Kubernetes API."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from control.model.mesh_config import MeshConfig
from control.sources.base import ConfigSource
from control.sources.kube import KubeSource, KubeSyncError, kube_client
from control.xds.plane import ControlPlane, ControlSettings


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config-dir", type=Path,
        help="directory of Kubernetes YAML/JSON (Services, Pods, mesh CRDs), watched for changes",
    )  # fmt: skip
    source.add_argument(
        "--kube", action="store_true",
        help="read the config from the Kubernetes API (list+watch)",
    )  # fmt: skip
    parser.add_argument(
        "--kubeconfig", type=Path,
        help="kubeconfig file for --kube (default: the pod's in-cluster service account)",
    )  # fmt: skip
    parser.add_argument("--xds-port", type=_port, default=15010, help="ADS gRPC port (0: any)")
    parser.add_argument("--debug-port", type=_port, default=15014, help="debug HTTP port (0: any)")
    parser.add_argument(
        "--mesh-config", type=Path, help="MeshConfig YAML (e.g. outboundTrafficPolicy.mode)"
    )
    parser.add_argument(
        "--no-push-scoping", dest="push_scoping", action="store_false",
        help="push every change to every proxy, translating each alone (benchmark baseline)",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def load_mesh_config(path: Path | None) -> MeshConfig:
    """Raises ValueError with a readable message naming the file and field."""
    if path is None:
        return MeshConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read: {error}") from error
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: invalid YAML: {error}") from error
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{path}: a mesh config must be a mapping")
    try:
        return MeshConfig.from_mapping(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(f"{path}: {problems}") from error


async def _serve(settings: ControlSettings, source: ConfigSource | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    plane = ControlPlane(settings, source=source)
    try:
        await plane.start()
    except OSError as error:
        sys.stderr.write(f"mizzen control: cannot listen: {error}\n")
        await plane.stop()
        return 1
    except KubeSyncError as error:  # the initial list failed (unreachable, forbidden, ...)
        sys.stderr.write(f"mizzen control: {error}\n")
        await plane.stop()
        return 1
    sys.stdout.write(f"mizzen control: xds={plane.xds_port} debug={plane.debug_port}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await plane.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config_dir: Path | None = args.config_dir
    if config_dir is not None and not config_dir.is_dir():
        sys.stderr.write(f"mizzen control: --config-dir {config_dir}: not a directory\n")
        return 2
    if args.kubeconfig is not None and not args.kube:
        sys.stderr.write("mizzen control: --kubeconfig needs --kube\n")
        return 2
    try:
        mesh = load_mesh_config(args.mesh_config)
        # With --kube the directory is unused (the plane logs it): name the source instead.
        settings = ControlSettings(
            config_dir=config_dir or Path("(kubernetes)"),
            xds_port=args.xds_port, debug_port=args.debug_port, mesh=mesh,
            scoping=args.push_scoping,
        )  # fmt: skip
        source = KubeSource(kube_client(args.kubeconfig), mesh) if args.kube else None
    except ValueError as error:  # KubeConfigError included: one line naming the file
        sys.stderr.write(f"mizzen control: {error}\n")
        return 2
    return asyncio.run(_serve(settings, source))
