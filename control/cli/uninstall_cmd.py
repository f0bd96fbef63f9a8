"""`mizzen uninstall`: remove one revision's objects (the same values name them as for
`mizzen install`); the shared namespace and the CRDs (and with them every mesh resource) only
with `--purge`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from control.cli.install_cmd import add_cluster_flags
from control.cli.install_inputs import InputError, add_value_flags, load_inputs, values_of
from control.cli.kube_install import InstallError, check_addressable, delete_all
from control.install.names import Names
from control.install.render import RenderError, labels_of, render
from control.install.resources import UnknownKindError
from control.install.values import ValuesError
from control.plane.kube.rest import KubeRest
from control.plane.sources.kube import KubeConfigError, kube_client


def configure(parser: argparse.ArgumentParser) -> None:
    add_value_flags(parser)
    add_cluster_flags(parser)
    parser.add_argument(
        "--purge",
        action="store_true",
        help="also delete the shared namespace and the CRDs: every VirtualService, "
        "DestinationRule, ... of the cluster goes with them",
    )


def run(args: argparse.Namespace) -> int:
    try:
        values = values_of(args)
        objects = render(values, load_inputs(args, values))
        names = Names.of(values)
        # The Lease is the control plane's own, not rendered: it goes with its revision.
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": names.lease,
                "namespace": names.namespace,
                "labels": labels_of(values),
            },
        }
        objects = _namespace_first([lease, *objects])
        check_addressable(objects)
        client = kube_client(args.kubeconfig, context=args.context)
    except (ValuesError, InputError, RenderError, UnknownKindError, KubeConfigError) as error:
        sys.stderr.write(f"mizzen uninstall: {error}\n")
        return 2
    try:
        deleted = delete_all(KubeRest(client), objects, args.purge, sys.stdout)
    except InstallError as error:
        sys.stderr.write(f"mizzen uninstall: {error}\n")
        return 1
    finally:
        client.close()  # type: ignore[no-untyped-call]
    sys.stdout.write(f"mizzen uninstalled ({deleted} objects deleted)\n")
    return 0


def _namespace_first(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CRDs and the namespace first, so that deletion (in reverse) removes them last."""
    namespaces = [o for o in objects if o.get("kind") == "Namespace"]
    crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    rest = [o for o in objects if o not in namespaces and o not in crds]
    return [*crds, *namespaces, *rest]
