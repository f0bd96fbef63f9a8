"""`mizzen init`: applies the traffic redirect in the current (the pod's) network namespace.

The init container runs it with the flags the injector rendered (`RedirectSpec.to_args`). Every
flag goes through `RedirectSpec.from_flags`; a bad one exits 2 with a message naming it. Runtime
failures (iptables missing, a rejected restore) exit 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from control.redirect.apply import apply_redirect, cleanup_redirect, describe_rulesets, families
from control.redirect.backend import BackendChoice, RedirectError
from control.redirect.ipv6 import netns_has_global_ipv6
from control.redirect.rules import build_ruleset
from control.redirect.runner import LocalRunner
from injector.redirect.spec import InterceptionMode, RedirectSpec, RedirectSpecError

# flag → help; the flag names are those of `RedirectSpec.to_args`, the defaults those of
# `RedirectSpec.from_flags`.
SPEC_FLAGS: dict[str, str] = {
    "proxy-uid": "uid of the proxy, whose traffic is not captured (default 1337)",
    "proxy-gid": "gid of the proxy, whose traffic is not captured (default 1337)",
    "outbound-port": "port of Envoy's outbound capture listener (default 15001)",
    "inbound-port": "port of Envoy's inbound capture listener (default 15006)",
    "mode": "REDIRECT, or NONE to apply nothing (TPROXY is not supported yet)",
    "include-outbound-cidrs": "CIDRs whose outbound traffic is captured; '*' all (default)",
    "exclude-outbound-cidrs": "CIDRs whose outbound traffic is never captured",
    "include-outbound-ports": "outbound ports captured whatever the destination",
    "exclude-outbound-ports": "outbound ports never captured",
    "include-inbound-ports": "inbound ports captured; '*' all (default), '' none",
    "exclude-inbound-ports": "inbound ports never captured (15020, 15021, 15090 never are)",
    "exclude-interfaces": "interfaces whose traffic, in or out, is never captured",
}


def configure(parser: argparse.ArgumentParser) -> None:
    for flag, help_text in SPEC_FLAGS.items():
        parser.add_argument(f"--{flag}", dest=_dest(flag), metavar="VALUE", help=help_text)
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--dry-run", action="store_true", help="print the ruleset instead of applying it"
    )
    action.add_argument(
        "--cleanup", action="store_true", help="remove the mesh's chains and jumps, and exit"
    )
    parser.add_argument(
        "--no-ipv6",
        action="store_true",
        help="leave IPv6 alone (by default it is captured when the pod has a global IPv6 address)",
    )
    parser.add_argument(
        "--iptables-backend",
        choices=[c.value for c in BackendChoice],
        default=BackendChoice.AUTO.value,
        help="auto: the backend already holding the mesh's rules, else nft, else legacy",
    )


def _dest(flag: str) -> str:
    return flag.replace("-", "_")


def parse_spec(args: argparse.Namespace) -> RedirectSpec:
    """The spec from the flags that were given; the rest take `from_flags`'s defaults."""
    given = {
        _dest(flag): value
        for flag in SPEC_FLAGS
        if (value := getattr(args, _dest(flag), None)) is not None
    }
    return RedirectSpec.from_flags(**given)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        spec = parse_spec(args)
        rulesets = [build_ruleset(spec, family) for family in families(not args.no_ipv6)]
    except RedirectSpecError as error:
        err.write(f"mizzen init: --{error.field}: {error.message}\n")
        return 2
    runner = LocalRunner()
    try:
        if args.cleanup:
            cleaned = cleanup_redirect(runner)
            out.write(f"mizzen init: removed the redirect from {', '.join(cleaned) or 'nothing'}\n")
            return 0
        if spec.mode is InterceptionMode.NONE:
            out.write("mizzen init: interception mode NONE: no redirect to apply\n")
            return 0
        if args.dry_run:
            out.write(describe_rulesets(rulesets))
            return 0
        ipv6 = not args.no_ipv6 and netns_has_global_ipv6()
        applied = apply_redirect(
            spec, runner, ipv6=ipv6, choice=BackendChoice(args.iptables_backend)
        )
    except RedirectError as error:
        err.write(f"mizzen init: {error}\n")
        return 1
    out.write(f"mizzen init: applied {applied.describe()}\n")
    return 0
