"""`mizzen describe pod POD[.NAMESPACE] --config-dir DIR`: what applies to one pod (istioctl's
`x describe pod`): its Services and ports, the effective mTLS mode of each port and the
PeerAuthentication that set it, the TLS meshed clients use (DestinationRule or auto-mTLS), the
DestinationRules and VirtualServices. Reads the same directory as `mizzen control`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from control.config.mesh_config import load_mesh_config
from control.config.settings import SettingsFileError
from control.plane.sources.file import FileSource
from control.plane.xds.translate.describe import DescribeError, describe_pod, render


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("pod",), help="what to describe")
    parser.add_argument("pod", metavar="POD[.NAMESPACE]", help="the pod (namespace: default)")
    parser.add_argument(
        "--config-dir", type=Path, required=True, help="the control plane's config directory"
    )
    parser.add_argument("--mesh-config", type=Path, help="MeshConfig YAML")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    if not args.config_dir.is_dir():
        sys.stderr.write(f"mizzen describe: --config-dir {args.config_dir}: not a directory\n")
        return 2
    try:
        mesh = load_mesh_config(args.mesh_config)
    except SettingsFileError as error:
        sys.stderr.write(f"mizzen describe: {error}\n")
        return 2
    name, _, namespace = args.pod.partition(".")
    state = FileSource(args.config_dir, mesh).load()
    try:
        view = describe_pod(state, namespace or "default", name)
    except DescribeError as error:
        sys.stderr.write(f"mizzen describe: {error}\n")
        return 1
    if args.output == "json":
        sys.stdout.write(json.dumps(view.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render(view))
    for problem in state.problems:
        sys.stderr.write(f"warning: {problem}\n")
    return 0
