"""`mizzen token create`: a token for local mode, shaped like a projected service-account token.

    mizzen token create --ca-dir DIR --namespace NS --service-account SA \
        [--audience mizzen-ca] [--ttl 12h]

Signed with the token key in `--ca-dir` (made on first use), which the control plane started on
the same directory accepts; hand it to an agent as its `MIZZEN_TOKEN_PATH` file.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from control.api.duration import DurationError, parse_millis
from control.identity.spiffe import IdentityError, SpiffeId
from control.plane.ca.local_tokens import DEFAULT_AUDIENCE, issue_token, load_or_create_token_key
from control.plane.ca.store import CaStoreError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="print a token for a service account (local mode)")
    create.add_argument("--ca-dir", type=Path, required=True, help="the control plane's --ca-dir")
    create.add_argument("--namespace", required=True)
    create.add_argument("--service-account", required=True)
    create.add_argument("--audience", default=DEFAULT_AUDIENCE)
    create.add_argument("--ttl", default="12h", help="lifetime, e.g. 12h, 30m (at most 8784h)")


def run(args: argparse.Namespace) -> int:
    try:
        ttl = timedelta(milliseconds=parse_millis(args.ttl))
    except DurationError as error:
        sys.stderr.write(f"mizzen token: --ttl: {error}\n")
        return 2
    if not args.audience or len(args.audience) > 256:
        sys.stderr.write("mizzen token: --audience: 1 to 256 characters\n")
        return 2
    try:
        # The trust domain does not travel in the token; any valid one serves to check names.
        identity = SpiffeId("cluster.local", args.namespace, args.service_account)
    except IdentityError as error:
        flag = "--namespace" if "namespace" in str(error) else "--service-account"
        sys.stderr.write(f"mizzen token: {flag}: {error}\n")
        return 2
    try:
        key = load_or_create_token_key(args.ca_dir)
        token = issue_token(key, identity, args.audience, ttl, datetime.now(UTC))
    except CaStoreError as error:
        sys.stderr.write(f"mizzen token: --ca-dir: {error}\n")
        return 1
    except ValueError as error:
        sys.stderr.write(f"mizzen token: --ttl: {error}\n")
        return 2
    sys.stdout.write(token + "\n")
    return 0
