"""`mizzen demo`: mizzen's main job on its embedded default, no cluster needed.

Where the machine allows it (root, `ip netns`, iptables, an Envoy binary), the local mesh: the
control plane, sample workloads in network namespaces, a client whose traffic the redirect hands
to a real Envoy sidecar, and requests showing the routing (a weighted split, a header match, a
fault, a live config edit); then everything is torn down. Elsewhere, or with `--preview-only`,
the injection preview of the bundled bookinfo-like sample (the injected YAML, then the JSON
patch of each workload)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import resources
from typing import TextIO

from control.cli import inject_cmd


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preview-only", action="store_true", help="only preview the injection of the sample"
    )
    parser.add_argument(
        "--requests", type=int, default=200, help="requests sent to show the weighted split"
    )


def sample_manifest() -> str:
    return resources.files("control.cli").joinpath("data/bookinfo.yaml").read_text()


def local_mesh_unavailable() -> str | None:
    """Why the local mesh cannot run here, or None."""
    from control.agent.envoy_binary import EnvoyNotFoundError, find_envoy
    from control.cli.demo.netns import can_run_netns

    reason = can_run_netns()
    if reason:
        return reason
    try:
        find_envoy()
    except EnvoyNotFoundError as error:
        return str(error)
    return None


def preview(out: TextIO) -> int:
    text = sample_manifest()
    out.write("# mizzen demo: injection preview of the embedded bookinfo sample\n")
    out.write("# --- injected manifests (mizzen inject -f bookinfo.yaml) ---\n")
    status = inject_cmd.preview(text, source="bookinfo.yaml", out=out)
    if status:
        return status
    out.write("# --- JSON patches (mizzen inject --patch -f bookinfo.yaml) ---\n")
    return inject_cmd.preview(text, source="bookinfo.yaml", out=out, patch=True)


def demo(
    out: TextIO,
    *,
    preview_only: bool = False,
    requests: int = 200,
    unavailable: Callable[[], str | None] = local_mesh_unavailable,
) -> int:
    """The local mesh where `unavailable()` finds nothing missing, else the preview."""
    if preview_only:
        return preview(out)
    reason = unavailable()
    if reason:
        out.write(f"# mizzen demo: the local mesh cannot run on this machine: {reason}.\n")
        out.write("# Falling back to the injection preview (run as root to see the mesh).\n")
        return preview(out)
    from control.cli.demo.run import run_local_mesh

    out.write("# mizzen demo: a local mesh in network namespaces (control plane, Envoy sidecar)\n")
    return run_local_mesh(out, requests=requests)


def run(args: argparse.Namespace) -> int:
    if args.requests < 1:
        sys.stderr.write("mizzen demo: --requests must be at least 1\n")
        return 2
    return demo(sys.stdout, preview_only=args.preview_only, requests=args.requests)
