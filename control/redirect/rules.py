"""The nat-table ruleset for a `RedirectSpec`, as `iptables-restore` text (pure).

The rules follow istio-init's REDIRECT mode (its `iptables` ruleset) with mizzen's chain names:

- PREROUTING → MIZZEN_INBOUND: excluded interfaces and ports return, the rest (or only the
  included ports) → MIZZEN_IN_REDIRECT (REDIRECT to the inbound port, 15006).
- OUTPUT → MIZZEN_OUTPUT: excluded interfaces return; on `lo`, the inbound passthrough source
  (127.0.0.6) returns, the proxy's calls to an address other than localhost take the inbound path
  (a pod calling its own service through the mesh meets its own inbound policy), everything else
  on `lo` (the app talking to itself) returns; the rest of the proxy's traffic returns; localhost
  and excluded CIDRs/ports return; the rest (or only the included CIDRs/ports) →
  MIZZEN_REDIRECT (REDIRECT to the outbound port, 15001).

Every owner rule is written for the proxy's uid and again for its gid. Both inbound-path rules
come before the `lo` return rules, so a proxy that shares only the gid (e.g. a random uid under
OpenShift) still takes the inbound path.

Only the mesh's own chains hold rules; the built-in chains get one jump each. That keeps a re-run
and a clean-up simple (see `nat_state.py`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

from injector.redirect.spec import (
    DEFAULT_EXCLUDED_INBOUND_PORTS,
    InterceptionMode,
    RedirectSpec,
    RedirectSpecError,
    parse_interface_list,
)

_T = TypeVar("_T")

CHAIN_PREFIX: Final = "MIZZEN_"
INBOUND: Final = "MIZZEN_INBOUND"
IN_REDIRECT: Final = "MIZZEN_IN_REDIRECT"
OUTPUT: Final = "MIZZEN_OUTPUT"
REDIRECT: Final = "MIZZEN_REDIRECT"
MESH_CHAINS: Final = (INBOUND, IN_REDIRECT, OUTPUT, REDIRECT)
# The agent's status port, Envoy's health and Prometheus ports: never captured inbound.
NEVER_CAPTURED_INBOUND: Final = DEFAULT_EXCLUDED_INBOUND_PORTS
# Every token a rule may carry: digits, letters, CIDRs, interface names, flags. No blanks, no
# quotes, no newlines: a value that could change the restore file's structure never gets in.
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_.:/!\-]+$")


class IpFamily(StrEnum):
    V4 = "ipv4"
    V6 = "ipv6"

    @property
    def localhost(self) -> str:
        return "127.0.0.1/32" if self is IpFamily.V4 else "::1/128"

    @property
    def passthrough_source(self) -> str:
        """The source Envoy binds for inbound passthrough (Istio's 127.0.0.6 and ::6)."""
        return "127.0.0.6/32" if self is IpFamily.V4 else "::6/128"

    def holds(self, cidr: str) -> bool:
        version = ipaddress.ip_network(cidr).version
        return version == (4 if self is IpFamily.V4 else 6)


@dataclass(frozen=True)
class Rule:
    """One `-A CHAIN args...` line."""

    chain: str
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        for token in (self.chain, *self.args):
            if not _TOKEN_RE.fullmatch(token):
                raise ValueError(f"unsafe iptables token {token!r}")

    def render(self) -> str:
        return " ".join(("-A", self.chain, *self.args))


@dataclass(frozen=True)
class Ruleset:
    """The mesh's nat chains and their rules for one IP family."""

    family: IpFamily
    chains: tuple[str, ...]
    rules: tuple[Rule, ...]

    @property
    def empty(self) -> bool:
        return not self.chains and not self.rules

    def render(self) -> str:
        """`iptables-restore --noflush` text for a netns where the mesh's chains do not exist yet
        (declaring a chain creates it, or flushes it if it exists)."""
        lines = ["*nat"]
        lines += [f":{chain} - [0:0]" for chain in self.chains]
        lines += [rule.render() for rule in self.rules]
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"


def build_ruleset(spec: RedirectSpec, family: IpFamily) -> Ruleset:
    """The ruleset for `spec` in one IP family; NONE gives an empty one, TPROXY is refused."""
    if spec.mode is InterceptionMode.TPROXY:
        raise RedirectSpecError(
            "mode",
            "TPROXY interception is not supported yet; use REDIRECT (or NONE for no redirect)",
        )
    if spec.mode is InterceptionMode.NONE:
        return Ruleset(family, (), ())
    for name in spec.exclude_interfaces:  # a spec built without `from_flags` is checked too
        if parse_interface_list(name, "exclude-interfaces") != (name,):
            raise RedirectSpecError("exclude-interfaces", f"{name!r} is not an interface name")
    rules = [
        Rule(IN_REDIRECT, _tcp("-j", "REDIRECT", "--to-ports", str(spec.inbound_port))),
        Rule(REDIRECT, _tcp("-j", "REDIRECT", "--to-ports", str(spec.outbound_port))),
        *_inbound_rules(spec),
        *_outbound_rules(spec, family),
    ]
    return Ruleset(family, MESH_CHAINS, tuple(rules))


def _tcp(*args: str) -> tuple[str, ...]:
    return ("-p", "tcp", *args)


def _unique(values: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(values))


def _inbound_rules(spec: RedirectSpec) -> list[Rule]:
    """PREROUTING's part. An empty include list captures nothing: no jump at all (as Istio)."""
    include = spec.include_inbound_ports
    if include == ():
        return []
    rules = [Rule(INBOUND, ("-i", name, "-j", "RETURN")) for name in spec.exclude_interfaces]
    excluded = _unique((*spec.exclude_inbound_ports, *NEVER_CAPTURED_INBOUND))
    if include is None:
        rules += [Rule(INBOUND, _tcp("--dport", str(p), "-j", "RETURN")) for p in excluded]
        rules.append(Rule(INBOUND, _tcp("-j", IN_REDIRECT)))
    else:
        skipped = set(excluded)
        captured = [port for port in _unique(include) if port not in skipped]
        rules += [Rule(INBOUND, _tcp("--dport", str(p), "-j", IN_REDIRECT)) for p in captured]
    rules.append(Rule("PREROUTING", _tcp("-j", INBOUND)))
    return rules


def _owners(spec: RedirectSpec) -> Sequence[tuple[str, str]]:
    return (("--uid-owner", str(spec.proxy_uid)), ("--gid-owner", str(spec.proxy_gid)))


def _outbound_rules(spec: RedirectSpec, family: IpFamily) -> list[Rule]:
    """OUTPUT's part, in istio-init's order; see the module docstring."""
    owners = _owners(spec)
    rules = [Rule(OUTPUT, ("-o", name, "-j", "RETURN")) for name in spec.exclude_interfaces]
    rules.append(Rule(OUTPUT, ("-o", "lo", "-s", family.passthrough_source, "-j", "RETURN")))
    rules += [
        Rule(OUTPUT, ("-o", "lo", "!", "-d", family.localhost, "-m", "owner", flag, owner_id,
                      "-j", IN_REDIRECT))
        for flag, owner_id in owners
    ]  # fmt: skip
    rules += [
        Rule(OUTPUT, ("-o", "lo", "-m", "owner", "!", flag, owner_id, "-j", "RETURN"))
        for flag, owner_id in owners
    ]
    rules += [
        Rule(OUTPUT, ("-m", "owner", flag, owner_id, "-j", "RETURN")) for flag, owner_id in owners
    ]
    rules.append(Rule(OUTPUT, ("-d", family.localhost, "-j", "RETURN")))
    rules += [
        Rule(OUTPUT, ("-d", cidr, "-j", "RETURN"))
        for cidr in _unique(spec.exclude_outbound_cidrs)
        if family.holds(cidr)
    ]
    rules += [
        Rule(OUTPUT, _tcp("--dport", str(port), "-j", "RETURN"))
        for port in _unique(spec.exclude_outbound_ports)
    ]
    if spec.include_outbound_cidrs is None:
        rules.append(Rule(OUTPUT, ("-j", REDIRECT)))
    else:
        rules += [
            Rule(OUTPUT, _tcp("--dport", str(port), "-j", REDIRECT))
            for port in _unique(spec.include_outbound_ports)
        ]
        rules += [
            Rule(OUTPUT, ("-d", cidr, "-j", REDIRECT))
            for cidr in _unique(spec.include_outbound_cidrs)
            if family.holds(cidr)
        ]
    rules.append(Rule("OUTPUT", _tcp("-j", OUTPUT)))
    return rules
