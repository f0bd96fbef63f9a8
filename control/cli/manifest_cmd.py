"""`mizzen manifest generate`: print the whole install (CRDs, namespace, RBAC, settings,
control plane, webhooks, addons) rendered from one set of values, for `kubectl apply -f -`."""

from __future__ import annotations

import argparse
import sys

from control.cli.install_inputs import InputError, add_value_flags, load_inputs, values_of
from control.install.render import RenderError, render, to_yaml
from control.install.resources import UnknownKindError
from control.install.values import ValuesError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)
    generate = sub.add_parser("generate", help="print the install's objects as YAML")
    add_value_flags(generate)
    generate.add_argument("--no-crds", dest="crds", action="store_false", help="leave the CRDs out")


def run(args: argparse.Namespace) -> int:
    try:
        values = values_of(args)
        objects = render(values, load_inputs(args, values, crds=args.crds))
    except (ValuesError, InputError, RenderError, UnknownKindError) as error:
        sys.stderr.write(f"mizzen manifest: {error}\n")
        return 2
    sys.stdout.write(to_yaml(objects))
    return 0
