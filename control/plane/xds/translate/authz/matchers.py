"""Envoy matchers for policy values (protobuf-JSON dicts), Istio's forms, never a regex made of
user text: a value is exact, `prefix*`, `*suffix` or `*`; where a regex is unavoidable (a SPIFFE
id's namespace or service account), every user character is escaped for RE2 first, so a
principal `ns/a.b` can never match `ns/aXb`."""

from __future__ import annotations

import ipaddress
from typing import Any, Final

SPIFFE: Final = "spiffe://"
JWT_FILTER: Final = "envoy.filters.http.jwt_authn"
JWT_PAYLOAD_KEY: Final = "payload"  # jwt_authn `payload_in_metadata` for every provider
ANY_REGEX: Final = ".+"  # Istio's "*": a value is present and not empty

Json = dict[str, Any]


def re2_escape(text: str) -> str:
    """RE2 source that matches exactly `text`: letters, digits and `_` as they are, ASCII
    punctuation behind a backslash, anything else (blanks, non-ASCII) as `\\x{hex}`."""
    out = []
    for char in text:
        if char.isascii() and (char.isalnum() or char == "_"):
            out.append(char)
        elif char.isascii() and char.isprintable() and not char.isspace():
            out.append("\\" + char)
        else:
            out.append(f"\\x{{{ord(char):x}}}")
    return "".join(out)


def regex(pattern: str) -> Json:
    return {"safe_regex": {"regex": pattern}}


def string(value: str, *, prefix: str = "", ignore_case: bool = False) -> Json:
    """Istio's StringMatcherWithPrefix: `*` any non-empty value; `*x` ends with x; `x*` starts
    with `prefix` + x; else exactly `prefix` + value."""
    matcher: Json
    if value == "*":
        return regex(ANY_REGEX)
    if value.startswith("*"):
        rest = value[1:]
        matcher = (
            {"suffix": rest} if not prefix else regex(re2_escape(prefix) + ".*" + re2_escape(rest))
        )
    elif value.endswith("*"):
        matcher = {"prefix": prefix + value[:-1]}
    else:
        matcher = {"exact": prefix + value}
    if ignore_case:
        matcher["ignore_case"] = True
    return matcher


URI_TEMPLATE_TYPE: Final = (
    "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"
)
MATCH_ONE: Final = "{*}"  # Istio's path template operators (validated upstream)
MATCH_ANY: Final = "{**}"


def is_path_template(path: str) -> bool:
    return MATCH_ONE in path or MATCH_ANY in path


def uri_template(path: str) -> Json:
    """Istio's path template as Envoy's uri_template matcher: `{*}` -> `*` (one segment),
    `{**}` -> `**` (the rest, last only). Validation allows only these operators and RFC 3986
    pchars in the literal segments, so nothing else in the template is an operator."""
    template = path.replace(MATCH_ANY, "**").replace(MATCH_ONE, "*")
    return {
        "name": "uri-template",
        "typed_config": {"@type": URI_TEMPLATE_TYPE, "path_template": template},
    }


def header(name: str, value: str, *, ignore_case: bool = False) -> Json:
    """A request header (`*`: present with any value)."""
    if value == "*":
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": string(value, ignore_case=ignore_case)}


def inline_header(name: str, value: str) -> Json:
    """`request.experimental.inline.headers[name]`: the header may carry several values joined
    by commas (as Envoy joins a repeated header); one of them must match `value`. As Istio's
    matcher, the values are split at the commas only: `a, b` holds ` b`, not `b`."""
    if value == "*":
        return {"name": name, "present_match": True}
    if value.startswith("*"):
        element = "[^,]*" + re2_escape(value[1:])
    elif value.endswith("*"):
        element = re2_escape(value[:-1]) + "[^,]*"
    else:
        element = re2_escape(value)
    return {"name": name, "string_match": regex(f"(.*,)?{element}(,.*)?")}


def cidr(value: str) -> Json:
    """An address or CIDR block (validated upstream) as Envoy's CidrRange."""
    network = ipaddress.ip_network(value.strip(), strict=False)
    return {"address_prefix": str(network.network_address), "prefix_len": network.prefixlen}


def namespace_regex(namespace: str) -> Json:
    """The SPIFFE id's `/ns/<namespace>/` segment; `*` in the value matches within a segment."""
    if "*" not in namespace:
        return {"contains": f"/ns/{namespace}/"}
    parts = [re2_escape(part) for part in namespace.split("*")]
    return regex(".*/ns/" + "[^/]*".join(parts) + "/.*")


def trust_domain(domain: str) -> Json:
    """The SPIFFE id's trust domain (`spiffe://<td>/`): exact, `prefix*`, `*suffix` or `*`
    (any), each within the authority segment."""
    if "*" not in domain:
        return {"prefix": f"{SPIFFE}{domain}/"}
    if domain == "*":
        return regex(re2_escape(SPIFFE) + "[^/]+/.*")
    if domain.endswith("*"):
        return regex(re2_escape(SPIFFE + domain[:-1]) + "[^/]*/.*")
    return regex(re2_escape(SPIFFE) + "[^/]*" + re2_escape(domain[1:]) + "/.*")


def service_account_regex(account: str, policy_namespace: str) -> Json:
    """`<ns>/<sa>` or `<sa>` (the policy's namespace), as Istio's regex over the SPIFFE id, with
    the names escaped."""
    namespace, slash, name = account.partition("/")
    if not slash:
        namespace, name = policy_namespace, account
    return regex(f"spiffe://.+/ns/{re2_escape(namespace)}/(.+/|)sa/{re2_escape(name)}(/.+)?")


def jwt_claim(path: tuple[str, ...], value_matcher: Json) -> Json:
    """Dynamic metadata that jwt_authn wrote for the verified token's payload."""
    return {
        "filter": JWT_FILTER,
        "path": [{"key": JWT_PAYLOAD_KEY}, *({"key": key} for key in path)],
        "value": value_matcher,
    }


def claim_values(values: tuple[str, ...] | list[str]) -> Json:
    """A claim equal to one of `values`, or a list claim holding one of them (`aud`, `groups`)."""
    matchers: list[Json] = []
    for value in values:
        one = string(value)
        matchers.append({"string_match": one})
        matchers.append({"list_match": {"one_of": {"string_match": one}}})
    return {"or_match": {"value_matchers": matchers}}
