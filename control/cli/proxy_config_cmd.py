"""`mizzen proxy-config <listeners|clusters|routes|endpoints> POD[.NAMESPACE]`: one proxy's Envoy
config as the control plane sent it (`/debug/config_dump?proxy=`) and, with `--envoy-admin`, as
that Envoy holds it (its admin `/config_dump`, `/clusters` for endpoints): istioctl's
`proxy-config`. Comparing the two views shows a proxy that did not take what it was sent.
`secret` shows the certificates Envoy holds (`proxy_config_secret`), from its admin only
(default http://127.0.0.1:15000, i.e. run in the pod's network namespace)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from control.cli.proxy_config_secret import show_secrets
from control.cli.proxy_config_tables import (
    DUMP_KEYS,
    HEADERS,
    Json,
    control_rows,
    envoy_resources,
    envoy_rows,
    resource_names,
)
from control.cli.proxy_status_cmd import DEFAULT_CONTROL, CommandError, fetch_json, render_table

KINDS = ("listeners", "clusters", "routes", "endpoints", "secret")
ENVOY_ADMIN = "http://127.0.0.1:15000"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="which resources to show")
    parser.add_argument(
        "pod", metavar="POD[.NAMESPACE]",
        help="a connected proxy (as `mizzen proxy-status` names it), or a full node id",
    )  # fmt: skip
    parser.add_argument(
        "--control", default=DEFAULT_CONTROL, metavar="URL",
        help=f"the control plane's debug address (default {DEFAULT_CONTROL})",
    )  # fmt: skip
    parser.add_argument(
        "--envoy-admin", metavar="URL",
        help="also show what this proxy's Envoy holds, from its admin (e.g. http://127.0.0.1:15000)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def resolve_proxy(wanted: str, syncz: Mapping[str, Any]) -> str:
    """`POD.NAMESPACE` as syncz keys it, `POD` when only one namespace has it, or a node id."""
    if "~" in wanted or wanted in syncz:
        return wanted
    matches = sorted(
        key for key, entry in syncz.items()
        if isinstance(entry, Mapping) and entry.get("pod") == wanted
    )  # fmt: skip
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CommandError(f"pod {wanted!r} is in several namespaces; give one of: "
                           + ", ".join(matches))  # fmt: skip
    raise CommandError(
        f"no connected proxy {wanted!r} ({len(syncz)} connected; see `mizzen proxy-status`)"
    )


def _control_view(args: argparse.Namespace) -> tuple[str, list[Json]]:
    syncz = fetch_json(args.control, "/debug/syncz")
    if not isinstance(syncz, Mapping):
        raise CommandError(f"{args.control}/debug/syncz: expected a JSON object")
    proxy = resolve_proxy(args.pod, syncz)
    dump = fetch_json(args.control, "/debug/config_dump", {"proxy": proxy})
    if not isinstance(dump, Mapping):
        raise CommandError(f"{args.control}/debug/config_dump: expected a JSON object")
    resources = dump.get(DUMP_KEYS[args.kind])
    if not isinstance(resources, list):
        raise CommandError(f"the control plane has no {args.kind} for {proxy}")
    return proxy, [r for r in resources if isinstance(r, Mapping)]


def _envoy_view(kind: str, admin: str) -> tuple[list[Json], list[Json]]:
    """Everything Envoy holds of `kind`, and the part of it that came over xDS."""
    if kind == "endpoints":
        document = fetch_json(admin, "/clusters", {"format": "json"})
    else:
        document = fetch_json(admin, "/config_dump")
    if not isinstance(document, Mapping):
        raise CommandError(f"{admin}: unexpected admin output")
    return envoy_resources(kind, document), envoy_resources(kind, document, dynamic_only=True)


def _difference(kind: str, control: list[Json], envoy: list[Json]) -> str:
    """Names sent and not held (rejected, or not yet taken), and held but no longer sent.
    Endpoints: Envoy's `/clusters` lists every cluster's hosts (bootstrap, original-dst), so
    only clusters the control plane sent hosts for are compared, one way."""
    if kind == "endpoints":
        control = [c for c in control if control_rows(kind, [c])]
    sent = resource_names(kind, control, envoy=False)
    held = resource_names(kind, envoy, envoy=True)
    if kind == "endpoints":
        held &= sent
    lines = []
    if sent - held:
        lines.append(f"sent but not held by Envoy: {', '.join(sorted(sent - held))}")
    if held - sent:
        lines.append(f"held by Envoy, no longer sent (stale): {', '.join(sorted(held - sent))}")
    return "\n".join(lines) + "\n" if lines else f"Envoy holds every {kind[:-1]} sent\n"


def run(args: argparse.Namespace) -> int:
    if args.kind == "secret":
        try:
            sys.stdout.write(show_secrets(args.pod, args.envoy_admin or ENVOY_ADMIN))
        except CommandError as error:
            sys.stderr.write(f"mizzen proxy-config secret: {error}\n")
            return 1
        return 0
    try:
        proxy, control = _control_view(args)
    except CommandError as error:
        sys.stderr.write(f"mizzen proxy-config: {error}\n")
        return 1
    envoy: list[Json] | None = None
    dynamic: list[Json] = []
    if args.envoy_admin:
        try:
            envoy, dynamic = _envoy_view(args.kind, args.envoy_admin)
        except CommandError as error:
            sys.stderr.write(
                f"mizzen proxy-config: Envoy admin: {error}; showing the control plane's view\n"
            )
    if args.output == "json":
        body: Any = control if envoy is None else {"controlPlane": control, "envoy": envoy}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return 0
    headers = HEADERS[args.kind]
    table = render_table(headers, control_rows(args.kind, control))
    if envoy is None:
        sys.stdout.write(table)
        return 0
    sys.stdout.write(f"# control plane: the {args.kind} it sent to {proxy}\n{table}\n")
    sys.stdout.write(f"# Envoy admin {args.envoy_admin}: the {args.kind} it holds\n")
    sys.stdout.write(render_table(headers, envoy_rows(args.kind, envoy)) + "\n")
    sys.stdout.write(_difference(args.kind, control, dynamic))
    return 0
