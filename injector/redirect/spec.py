"""What `mizzen init` is asked to do, as one validated value.

The injector builds a `RedirectSpec` from a pod's annotations and renders it as the init
container's argv (`to_args`); `mizzen init` parses the argv back (its flags map one to one onto
`from_flags`) and turns the spec into an iptables ruleset (`rules.py`). Both directions go
through the same validators, so a value that reaches iptables has been checked twice and was
never text from a user that skipped validation.

List semantics follow Istio: `*` means "everything", the empty string means "nothing".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Final, TypeVar

from pydantic import BaseModel, ConfigDict

_T = TypeVar("_T")
WILDCARD: Final = "*"
_PORT_RE: Final = re.compile(r"^[0-9]{1,5}$")
# Not "-..." (iptables would read it as an option), not "." or ".." (the kernel refuses them).
_INTERFACE_RE: Final = re.compile(r"^(?!\.\.?$)[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,14}$")
# What a CIDR is written with. `ipaddress` also takes an IPv6 zone id after `%` (any text, spaces
# and newlines included: "fe80::%x\n-A ... /10"), which has no meaning in a CIDR and must never
# reach iptables.
_CIDR_CHARS_RE: Final = re.compile(r"^[0-9A-Fa-f.:]+/[0-9]{1,3}$")
# Istio's defaults: Envoy's Prometheus port, the agent's health and status ports.
DEFAULT_EXCLUDED_INBOUND_PORTS: Final = (15090, 15021, 15020)


class InterceptionMode(StrEnum):
    REDIRECT = "REDIRECT"
    TPROXY = "TPROXY"
    NONE = "NONE"


class RedirectSpecError(ValueError):
    """A flag or annotation value that cannot be used; `field` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_port(text: str, field: str, *, allow_zero: bool = True) -> int:
    """One port, digits only (Python's int() also takes '٨٠' and '8_0': we do not)."""
    item = text.strip()
    if not _PORT_RE.fullmatch(item) or not item.isascii():
        raise RedirectSpecError(field, f"{item!r} is not a port number")
    port = int(item)
    if port > 65535 or (port == 0 and not allow_zero):
        raise RedirectSpecError(field, f"port {port} is out of range")
    return port


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_port_list(text: str, field: str, *, wildcard: bool = False) -> tuple[int, ...] | None:
    """Comma-separated ports, trimmed as Istio trims them. `None` means `*` (all ports)."""
    if text.strip() == WILDCARD:
        if not wildcard:
            raise RedirectSpecError(field, "'*' is not allowed here")
        return None
    return tuple(parse_port(item, field) for item in _items(text))


def parse_cidr_list(text: str, field: str) -> tuple[str, ...] | None:
    """Comma-separated CIDRs (IPv4 or IPv6), strictly parsed. `None` means `*` (all)."""
    if text.strip() == WILDCARD:
        return None
    cidrs = []
    for item in _items(text):
        shown = repr(item[:64])
        if "%" in item:
            raise RedirectSpecError(field, f"{shown} is not a CIDR (no IPv6 zone ids)")
        if "/" not in item:
            raise RedirectSpecError(field, f"{shown} is not a CIDR (missing /prefix)")
        try:
            if not _CIDR_CHARS_RE.fullmatch(item):
                raise ValueError(item)
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise RedirectSpecError(field, f"{shown} is not a CIDR") from None
        cidrs.append(str(network))
    return tuple(cidrs)


def parse_interface_list(text: str, field: str) -> tuple[str, ...]:
    """Interface names: letters, digits, `_.-` (not first), at most 15 characters (IFNAMSIZ)."""
    names = _items(text)
    for name in names:
        if not _INTERFACE_RE.fullmatch(name):
            raise RedirectSpecError(field, f"{name!r} is not an interface name")
    return tuple(names)


def _join(values: Sequence[object] | None) -> str:
    return WILDCARD if values is None else ",".join(str(v) for v in values)


class RedirectSpec(BaseModel):
    """The redirect, as `mizzen init` applies it. `None` in a list field means `*` (everything)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proxy_uid: int = 1337
    proxy_gid: int = 1337
    outbound_port: int = 15001
    inbound_port: int = 15006
    mode: InterceptionMode = InterceptionMode.REDIRECT
    include_outbound_cidrs: tuple[str, ...] | None = None
    exclude_outbound_cidrs: tuple[str, ...] = ()
    include_outbound_ports: tuple[int, ...] = ()
    exclude_outbound_ports: tuple[int, ...] = ()
    include_inbound_ports: tuple[int, ...] | None = None
    exclude_inbound_ports: tuple[int, ...] = DEFAULT_EXCLUDED_INBOUND_PORTS
    exclude_interfaces: tuple[str, ...] = ()

    def to_args(self) -> list[str]:
        """The argv (after `mizzen init`) that reproduces this spec; every flag explicit."""
        return [
            f"--proxy-uid={self.proxy_uid}",
            f"--proxy-gid={self.proxy_gid}",
            f"--outbound-port={self.outbound_port}",
            f"--inbound-port={self.inbound_port}",
            f"--mode={self.mode.value}",
            f"--include-outbound-cidrs={_join(self.include_outbound_cidrs)}",
            f"--exclude-outbound-cidrs={_join(self.exclude_outbound_cidrs)}",
            f"--include-outbound-ports={_join(self.include_outbound_ports)}",
            f"--exclude-outbound-ports={_join(self.exclude_outbound_ports)}",
            f"--include-inbound-ports={_join(self.include_inbound_ports)}",
            f"--exclude-inbound-ports={_join(self.exclude_inbound_ports)}",
            f"--exclude-interfaces={_join(self.exclude_interfaces)}",
        ]

    @classmethod
    def from_flags(
        cls,
        *,
        proxy_uid: str = "1337",
        proxy_gid: str = "1337",
        outbound_port: str = "15001",
        inbound_port: str = "15006",
        mode: str = "REDIRECT",
        include_outbound_cidrs: str = WILDCARD,
        exclude_outbound_cidrs: str = "",
        include_outbound_ports: str = "",
        exclude_outbound_ports: str = "",
        include_inbound_ports: str = WILDCARD,
        exclude_inbound_ports: str = ",".join(map(str, DEFAULT_EXCLUDED_INBOUND_PORTS)),
        exclude_interfaces: str = "",
    ) -> RedirectSpec:
        """Builds a spec from flag text, validating every value; raises `RedirectSpecError`."""
        try:
            interception = InterceptionMode(mode.strip())
        except ValueError:
            allowed = ", ".join(m.value for m in InterceptionMode)
            raise RedirectSpecError("mode", f"{mode!r} is not one of {allowed}") from None
        return cls(
            proxy_uid=_parse_id(proxy_uid, "proxy-uid"),
            proxy_gid=_parse_id(proxy_gid, "proxy-gid"),
            outbound_port=parse_port(outbound_port, "outbound-port", allow_zero=False),
            inbound_port=parse_port(inbound_port, "inbound-port", allow_zero=False),
            mode=interception,
            include_outbound_cidrs=parse_cidr_list(
                include_outbound_cidrs, "include-outbound-cidrs"
            ),
            exclude_outbound_cidrs=_no_wildcard(
                parse_cidr_list(exclude_outbound_cidrs, "exclude-outbound-cidrs"),
                "exclude-outbound-cidrs",
            ),
            include_outbound_ports=_no_wildcard(
                parse_port_list(include_outbound_ports, "include-outbound-ports"),
                "include-outbound-ports",
            ),
            exclude_outbound_ports=_no_wildcard(
                parse_port_list(exclude_outbound_ports, "exclude-outbound-ports"),
                "exclude-outbound-ports",
            ),
            include_inbound_ports=parse_port_list(
                include_inbound_ports, "include-inbound-ports", wildcard=True
            ),
            exclude_inbound_ports=_no_wildcard(
                parse_port_list(exclude_inbound_ports, "exclude-inbound-ports"),
                "exclude-inbound-ports",
            ),
            exclude_interfaces=parse_interface_list(exclude_interfaces, "exclude-interfaces"),
        )


def _no_wildcard(values: tuple[_T, ...] | None, field: str) -> tuple[_T, ...]:
    if values is None:
        raise RedirectSpecError(field, "'*' is not allowed here")
    return values


def _parse_id(text: str, field: str) -> int:
    item = text.strip()
    if not item.isascii() or not item.isdigit() or len(item) > 10 or int(item) > 2**31 - 1:
        raise RedirectSpecError(field, f"{item!r} is not a uid/gid")
    return int(item)
