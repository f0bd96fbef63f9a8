"""Checks several kinds share: hosts, ports, regexes, string matches, labels, exportTo, IPs.

Messages follow Istio's wording (pkg/config/validation) so a user can search for them.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Final

import re2

from control.api.errors import shown
from control.api.models.base import Percent, StringMatch
from control.api.rules.context import Findings

# Envoy's safe_regex is RE2; Istio caps the pattern length because RE2's program size (what
# Envoy limits) always exceeds it. Checked before compiling, so a huge pattern costs nothing.
MAX_REGEX_LENGTH: Final = 1024
_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False

# Istio's labels.IsDNS1123Label accepts either case (`ISTIOD-HOST.DOMAIN`, port name `HTTP`);
# a wildcard label is `*`, or a label led by `*` or `*-` (`*-foo`).
_DNS1123_LABEL: Final = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
_WILDCARD_LABEL: Final = re.compile(r"\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
# Kubernetes label keys: optional DNS subdomain prefix, then a name of up to 63 characters.
_LABEL_NAME: Final = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_HEADER_NAME: Final = re.compile(r"[-_A-Za-z0-9]+")
# RFC 7230 tchar: what a header name in a match may be (Istio's validHeaderNameRegex), and the
# HTTP/2 pseudo-headers a match may name.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~A-Za-z0-9]+")
PSEUDO_HEADERS: Final = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
_PORT_NAME: Final = _DNS1123_LABEL
# Istio's protocol names (case-insensitive), as protocol.Parse knows them.
PROTOCOLS: Final = frozenset(
    {"http", "http2", "https", "grpc", "grpc-web", "http_proxy", "tcp", "tls", "udp", "mongo",
     "redis", "mysql", "thrift"}
)  # fmt: skip
HTTP_PROTOCOLS: Final = frozenset({"http", "http2", "grpc", "grpc-web", "http_proxy"})
TLS_PROTOCOLS: Final = frozenset({"https", "tls"})


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def _dns_labels_error(domain: str, rest: str) -> str | None:
    """Istio's ValidateDNS1123Labels: a trailing dot is allowed (`istio.io.`); an all-numeric
    top-level label is not."""
    labels = rest.split(".")
    top = labels[-1]
    if top.isascii() and top.isdigit():
        return (
            f"domain name {shown(domain)} invalid (top level domain {shown(top)} "
            "cannot be all-numeric)"
        )
    for index, label in enumerate(labels):
        if index == len(labels) - 1 and not label:
            return None
        if not is_dns1123_label(label):
            return f"domain name {shown(domain)} invalid (label {shown(label)} invalid)"
    return None


def wildcard_domain_error(domain: str) -> str | None:
    """Istio's ValidateWildcardDomain: an FQDN whose first label may be (or start with) `*`."""
    if len(domain) > 255:
        return f"domain name {shown(domain)} too long (max 255)"
    if not domain:
        return "empty domain name not allowed"
    first, _, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.fullmatch(first):
        return f"domain name {shown(domain)} invalid (label {shown(first)} invalid)"
    return _dns_labels_error(domain, rest) if rest else None


def fqdn_error(domain: str) -> str | None:
    """Istio's ValidateFQDN: DNS-1123 labels, no wildcard."""
    if len(domain) > 255:
        return f"domain name {shown(domain)} too long (max 255)"
    if not domain:
        return "empty domain name not allowed"
    return _dns_labels_error(domain, domain)


def is_ip(value: str) -> bool:
    """An IP address, without an IPv6 zone id (`fe80::1%eth0`: meaningless in mesh config)."""
    if "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def subnet_error(value: str) -> str | None:
    """An IP address or a CIDR block (Istio's ValidateIPSubnet); no IPv6 zone ids, which
    `ipaddress` accepts with any text after the `%`."""
    if "%" in value:
        return f"{shown(value)} is not a valid IP address or CIDR block (no IPv6 zone ids)"
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return f"{shown(value)} is not a valid IP address or CIDR block"
    return None


def check_port(findings: Findings, path: str, port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        findings.error(path, f"port number {port} must be in the range 1..65535")


def check_port_name(findings: Findings, path: str, name: str) -> None:
    if not is_dns1123_label(name):
        findings.error(path, f"invalid port name: {shown(name)}")


def check_protocol(findings: Findings, path: str, protocol: str | None) -> None:
    if protocol and protocol.lower() not in PROTOCOLS:
        findings.error(path, f"unsupported protocol: {shown(protocol)}")


@functools.lru_cache(maxsize=4096)
def regex_error(pattern: str) -> str | None:
    """Why an RE2 pattern is refused, or None. The length cap comes first."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"regex is too large, max length allowed is {MAX_REGEX_LENGTH}"
    try:
        re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else "invalid"
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return (
            f"{text}; Istio uses RE2 style regex-based match "
            "(https://github.com/google/re2/wiki/Syntax)"
        )
    return None


def check_regex(findings: Findings, path: str, pattern: str) -> None:
    if not pattern:
        findings.error(path, "regex string match should not be empty")
        return
    problem = regex_error(pattern)
    if problem:
        findings.error(path, problem)


def check_string_match(findings: Findings, path: str, match: StringMatch) -> None:
    """Exactly one of exact/prefix/regex; a prefix is not empty; a regex is valid RE2."""
    kinds = [k for k in ("exact", "prefix", "regex") if getattr(match, k) is not None]
    if len(kinds) > 1:
        findings.error(path, f"only one of exact, prefix or regex may be set, found {kinds}")
    if match.prefix == "":
        findings.error(f"{path}.prefix", "prefix string match should not be empty")
    if match.regex is not None:
        check_regex(findings, f"{path}.regex", match.regex)


def check_labels(findings: Findings, path: str, labels: Mapping[str, str]) -> None:
    """Kubernetes label syntax for keys and values (Istio's labels.Instance.Validate)."""
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (
            not name
            or len(name) > 63
            or not _LABEL_NAME.fullmatch(name)
            or (prefix and (len(prefix) > 253 or fqdn_error(prefix)))
        ):
            findings.error(f"{path}[{key}]", f"invalid label key: {shown(key)}")
        if len(value) > 63 or not _LABEL_NAME.fullmatch(value):
            findings.error(f"{path}[{key}]", f"invalid label value: {shown(value)}")


def check_selector_labels(findings: Findings, path: str, labels: Mapping[str, str]) -> None:
    """Workload selectors: no empty keys, no wildcards; an empty selector only warns."""
    for key, value in labels.items():
        if not key:
            findings.error(path, f"empty key is not supported in selector: {shown(key)}")
        if "*" in key or "*" in value:
            pair = f"{key}={value}"
            findings.error(
                f"{path}[{key}]", f"wildcard is not supported in selector: {shown(pair)}"
            )
    if not labels:
        findings.warn(path, "workload selector specified without labels")


def check_header_name(findings: Findings, path: str, name: str) -> None:
    """The strict form (Istio's ValidateStrictHTTPHeaderName): letters, digits, `-` (and `_`)."""
    if not name:
        findings.error(path, "header name cannot be empty")
    elif not _HEADER_NAME.fullmatch(name):
        findings.error(path, f"header name {shown(name)} is not a valid header name")


def check_match_header_name(findings: Findings, path: str, name: str) -> None:
    """A header a match names (Istio's ValidateHTTPHeaderNameOrJwtClaimRoute): any RFC 7230
    token (`funky!$#_`), or an HTTP/2 pseudo-header (`:authority`)."""
    if not name:
        findings.error(path, "header name cannot be empty")
    elif name not in PSEUDO_HEADERS and not _TOKEN.fullmatch(name):
        findings.error(path, f"header name {shown(name)} is not a valid header name")


def check_percentage(findings: Findings, path: str, percent: Percent | None) -> None:
    """Istio's validatePercentage: 0, or within [0.0001, 100]."""
    if percent is None or percent.value is None:
        return
    value = percent.value
    if value < 0 or value > 100 or 0 < value < 0.0001:
        findings.error(
            f"{path}.value", f"percentage {value} is neither 0.0, nor in range [0.0001, 100.0]"
        )


def check_export_to(
    findings: Findings, path: str, export_to: Iterable[str], *, service_entry: bool = False
) -> None:
    """`.`, `*`, `~` (ServiceEntry only) or namespace names; no duplicates; `*` alone."""
    entries = list(export_to)
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        if entry in seen:
            findings.error(where, f"duplicate entries in exportTo for entry {shown(entry)}")
        seen.add(entry)
        if entry in {".", "*"} or (entry == "~" and service_entry):
            continue
        if not is_dns1123_label(entry):
            findings.error(
                where,
                f"only . or * or valid DNS 1123 label is allowed as exportTo "
                f"entry, found {shown(entry)}",
            )
    if "*" in seen and len(entries) > 1:
        findings.error(
            path, "cannot have both public (*) and non-public exportTo values for a resource"
        )
    if "~" in seen and service_entry and len(entries) > 1:
        findings.error(path, "cannot export service entry to no one (~) and someone")


def check_unix_address(findings: Findings, path: str, address: str) -> None:
    """The part after `unix://`: an absolute path to a file, or an abstract socket (`@name`)."""
    if not address:
        findings.error(path, "unix address must not be empty")
    elif not address.startswith("@") and (not address.startswith("/") or address.endswith("/")):
        findings.error(path, f"{shown(address)} is not an absolute path to a file")


def is_port_text(value: str) -> bool:
    """ASCII digits naming a port in 1..65535 (str.isdigit alone admits other scripts' digits)."""
    return value.isascii() and value.isdigit() and len(value) <= 5 and 1 <= int(value) <= 65535
