"""Trust-domain migration for AuthorizationPolicy values, with Istio's rules (a mesh's trust
domain and its MeshConfig `trustDomainAliases` name one set of identities; `bundle` is the
trust domain first, then its aliases):

- a principal `<td>/ns/<ns>/sa/<sa>` (exactly five `/`-separated parts) whose trust domain is
  in the bundle (exactly, as `prefix*`/`*suffix` either way, or a `*` alias), or is
  `cluster.local` (a pointer to the local trust domain, whatever it is), stands for the same
  identity under every trust domain of the bundle. A `*suffix` trust domain stays as written for
  the bundle entries it already matches. Principals of another form (`*`, `*/ns/..`, a prefix
  such as `cluster.local/ns/foo/*`) and foreign trust domains are kept as written;
- a `trustDomains` value equal to a bundle entry stands for every entry of the bundle.

Both return values in order, without duplicates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

LOCAL_DOMAIN: Final = "cluster.local"


def _prefix_match(text: str, pattern: str) -> bool:
    return pattern.endswith("*") and text.startswith(pattern[:-1])


def _suffix_match(text: str, pattern: str) -> bool:
    return pattern.startswith("*") and text.endswith(pattern[1:])


def _in_bundle(domain: str, bundle: Sequence[str]) -> bool:
    """Istio's loose test: either side may be the pattern."""
    return any(
        domain == entry or entry == "*"
        or _prefix_match(domain, entry) or _prefix_match(entry, domain)
        or _suffix_match(domain, entry) or _suffix_match(entry, domain)
        for entry in bundle
    )  # fmt: skip


def principal_aliases(principals: Sequence[str], bundle: Sequence[str]) -> list[str]:
    """Every principal, those naming a local trust domain expanded over the bundle."""
    if not bundle:
        return list(dict.fromkeys(principals))
    out: list[str] = []
    for principal in principals:
        parts = principal.split("/")
        domain = parts[0]
        if len(parts) != 5 or domain == "*":
            out.append(principal)  # the trust domain is not checked
        elif domain == LOCAL_DOMAIN or _in_bundle(domain, bundle):
            rest = "/".join(parts[1:])
            for entry in bundle:
                out.append(principal if _suffix_match(entry, domain) else f"{entry}/{rest}")
        else:
            out.append(principal)  # a foreign trust domain
    return list(dict.fromkeys(out))


def trust_domain_aliases(values: Sequence[str], bundle: Sequence[str]) -> list[str]:
    """`trustDomains` values, a bundle entry standing for the whole bundle."""
    out: list[str] = []
    for value in values:
        out += bundle if value in bundle else [value]
    return list(dict.fromkeys(out))
