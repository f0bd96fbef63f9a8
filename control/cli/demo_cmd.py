"""`mizzen demo`: mizzen's main job on its embedded default, no cluster needed.

For now: preview the injection of the bundled bookinfo-like sample (the injected YAML, then the
JSON patch of each workload)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from control.cli import inject_cmd


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preview-only", action="store_true", help="only preview the injection of the sample"
    )


def sample_manifest() -> str:
    return resources.files("control.cli").joinpath("data/bookinfo.yaml").read_text()


def run(args: argparse.Namespace) -> int:
    text = sample_manifest()
    out = sys.stdout
    out.write("# mizzen demo: injection preview of the embedded bookinfo sample\n")
    out.write("# --- injected manifests (mizzen inject -f bookinfo.yaml) ---\n")
    status = inject_cmd.preview(text, source="bookinfo.yaml", out=out)
    if status:
        return status
    out.write("# --- JSON patches (mizzen inject --patch -f bookinfo.yaml) ---\n")
    return inject_cmd.preview(text, source="bookinfo.yaml", out=out, patch=True)
