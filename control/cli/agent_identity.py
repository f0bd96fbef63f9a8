"""`mizzen agent`'s identity flags (kept apart from the other agent flags)."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from control.agent.identity_settings import IdentityOptions
from control.agent.settings import SettingsError
from control.api.duration import DurationError, parse_millis


def add_identity_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("identity (workload certificate over SDS)")
    add = group.add_argument
    add(
        "--identity", choices=("auto", "on", "off"), default="auto",
        help="auto: on when MIZZEN_TOKEN_PATH is set; off: no certificate, plaintext xDS",
    )  # fmt: skip
    add("--ca-address", help="the CA's host:port (default: CA_ADDR, else the discovery address)")
    add("--cert-ttl", help="lifetime to ask for, e.g. 24h (default: SECRET_TTL, else 24h)")
    add(
        "--xds-plaintext", action="store_true",
        help="keep xDS plaintext while identity is on (a control plane without 15012)",
    )  # fmt: skip
    add("--ca-retry-max", type=float, default=30.0, help="longest wait between CA retries (s)")
    add("--root-poll-interval", type=float, default=5.0, help="seconds between root file reads")


def identity_options(args: argparse.Namespace) -> IdentityOptions:
    ttl = None
    if args.cert_ttl:
        try:
            ttl = max(1, parse_millis(args.cert_ttl) // 1000)
        except DurationError as error:
            raise SettingsError("--cert-ttl", str(error)) from None
    try:
        return IdentityOptions(
            mode=args.identity,
            ca_address=args.ca_address,
            cert_ttl=ttl,
            xds_tls=not args.xds_plaintext,
            retry_initial=min(1.0, args.ca_retry_max),
            retry_max=args.ca_retry_max,
            root_poll_interval=args.root_poll_interval,
        )
    except ValidationError as error:
        first = error.errors()[0]
        flag = {"retry_max": "--ca-retry-max", "root_poll_interval": "--root-poll-interval"}
        name = flag.get(str(first["loc"][0]), "identity flags") if first["loc"] else "flags"
        raise SettingsError(name, first["msg"]) from None
