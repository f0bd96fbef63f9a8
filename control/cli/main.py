"""`mizzen`: the composition root. Each subcommand lives in its own module, imported only when
it runs, so `mizzen inject` does not pay for grpc or starlette at start-up."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol

from control.config.loader import LibyamlMissingError


class Command(Protocol):
    """What a subcommand module provides."""

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("control.cli.demo_cmd", "run mizzen's main job on its embedded default"),
    "inject": ("control.cli.inject_cmd", "preview sidecar injection of Kubernetes manifests"),
    "validate": ("control.cli.validate_cmd", "validate mesh resources (Istio CRDs) offline"),
    "webhook": ("control.cli.webhook_cmd", "serve the admission webhooks over TLS"),
    "control": ("control.cli.control_cmd", "run the control plane (xDS, debug endpoints)"),
    "agent": ("control.cli.agent_cmd", "the proxy container's agent: bootstrap, run Envoy"),
    "init": ("control.cli.init_cmd", "apply the traffic redirect in the pod's netns"),
    "proxy-status": ("control.cli.proxy_status_cmd", "is each proxy in sync (xDS status)"),
    "proxy-config": ("control.cli.proxy_config_cmd", "show a proxy's Envoy config (xDS)"),
    "describe": ("control.cli.describe_cmd", "what applies to a pod: mTLS, services, rules"),
    "ca": ("control.cli.ca_cmd", "the mesh CA: inspect, rotate the root, serve the CSR API"),
    "token": ("control.cli.token_cmd", "tokens for local mode (like service-account tokens)"),
    "manifest": ("control.cli.manifest_cmd", "render the Kubernetes install (YAML)"),
    "install": ("control.cli.install_cmd", "apply the install to a cluster and wait for it"),
    "uninstall": ("control.cli.uninstall_cmd", "remove the install from a cluster"),
}


def _load(name: str) -> Command:
    module: Command = importlib.import_module(COMMANDS[name][0])
    return module


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mizzen", description="A compact service mesh that speaks Istio's API."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).configure(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(arguments)
    try:
        return _load(args.command).run(args)
    except LibyamlMissingError as error:
        sys.stderr.write(f"mizzen {args.command}: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
