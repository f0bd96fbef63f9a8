"""`mizzen install`: render the install from its values, apply it with server-side apply (field
manager `mizzen`), and wait for the control plane's rollout and its leader's `caBundle` on the
webhook configurations (the API server can call the webhooks only then)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from control.cli.install_inputs import InputError, add_value_flags, load_inputs, values_of
from control.cli.kube_install import (
    InstallError,
    Waiting,
    apply_all,
    check_addressable,
    wait_for_ca_bundles,
    wait_for_rollout,
)
from control.install.render import RenderError, render
from control.install.resources import UnknownKindError
from control.install.values import ValuesError
from control.plane.kube.rest import KubeRest
from control.plane.sources.kube import KubeConfigError, kube_client


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: in-cluster)")
    parser.add_argument("--context", help="the kubeconfig context (default: its current one)")


def configure(parser: argparse.ArgumentParser) -> None:
    add_value_flags(parser)
    add_cluster_flags(parser)
    parser.add_argument(
        "--force-conflicts",
        action="store_true",
        help="take over fields another manager (kubectl, helm) set to other values",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0,
        help="seconds to wait for the rollout, then as long for the webhooks' caBundle",
    )  # fmt: skip
    parser.add_argument("--no-wait", dest="wait", action="store_false", help="apply only")


def run(args: argparse.Namespace) -> int:
    try:
        values = values_of(args)
        objects = render(values, load_inputs(args, values))
        check_addressable(objects)
        client = kube_client(args.kubeconfig, context=args.context)
    except (ValuesError, InputError, RenderError, UnknownKindError, KubeConfigError) as error:
        sys.stderr.write(f"mizzen install: {error}\n")
        return 2
    rest = KubeRest(client)
    out = sys.stdout
    try:
        out.write(f"installing revision {values.revision} into {values.namespace} on {rest.host}\n")
        apply_all(rest, objects, args.force_conflicts, out)
        if args.wait:
            [deployment] = [
                o
                for o in objects
                if o["kind"] == "Deployment" and o["metadata"]["namespace"] == values.namespace
            ]
            wait_for_rollout(rest, deployment, Waiting(args.timeout), out)
            hooks = [o for o in objects if o["kind"].endswith("WebhookConfiguration")]
            wait_for_ca_bundles(rest, hooks, values.namespace, Waiting(args.timeout), out)
    except InstallError as error:
        sys.stderr.write(f"mizzen install: {error}\n")
        return 1
    finally:
        client.close()  # type: ignore[no-untyped-call]
    out.write("mizzen installed\n")
    return 0
