"""RequestAuthentication -> Envoy's `jwt_authn` HTTP filter (Istio's semantics): every JWT rule
of every applying RequestAuthentication is a provider; a request with no token passes (an
AuthorizationPolicy with `requestPrincipals` is how to require one); a token that fails to
verify against any provider is refused with 401. Keys come inline (`jwks`) or from the control
plane's fetch of `jwksUri` (or the issuer's OpenID discovery), handed in as data; a JWKS that
could never be fetched is replaced by `UNAVAILABLE_JWKS`, a key whose private half was never
kept, so every token of that issuer fails (never accepted)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from control.api.duration import parse_millis
from control.api.models.security import JWTRule, RequestAuthentication
from control.plane.model.jwks import jwks_location
from control.plane.xds.translate.authz.matchers import JWT_FILTER, JWT_PAYLOAD_KEY, Json
from control.plane.xds.translate.authz.select import Selected

_T: Final = "type.googleapis.com/"
JWT_TYPE: Final = _T + "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
# An RSA public key generated once for this purpose; its private key was discarded at once.
UNAVAILABLE_KID: Final = "mizzen-jwks-unavailable"
UNAVAILABLE_JWKS: Final = json.dumps(
    {
        "keys": [
            {
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": UNAVAILABLE_KID,
                "e": "AQAB",
                "n": "k3-HLnRqV23nrOKkosj44I78OYxXFaNL4YdO9rkdOqEZY8KI8KdMMLxGNdQhgsCuukhVDw_oWeSk"
                "3y_D78UbXBUkK0mZbeinOxLonUKhZElJj5E1n5JRMJ6fV0bzxEYcvNiBF8vbY-TUiZZrxfCMmb4jqP8D"
                "CtaXyXTIa7nS2wZ2i6Nq-mRc6VNeTyPb4gmrIIm6CfLEUEp2Fbw_GcNts-CT2XPmWcNFMdFqmtFAAJQD"
                "_xNqpL1f2gbO2j9wdeXMq3CROw2AnyRtu-_bS5c6KbzooQ9d38mcI0kJQ7Bf8uynsW7GhqcNx6FfoF4m"
                "_CNtbgl5OCU6181hfQAzqX-1LQ",
            }
        ]
    },
    separators=(",", ":"),
)


def jwt_rules(policies: Iterable[Selected[RequestAuthentication]]) -> list[JWTRule]:
    """Every rule, the first per issuer (validation warns about the others)."""
    seen: set[str] = set()
    rules: list[JWTRule] = []
    for policy in policies:
        for rule in policy.body.jwt_rules:
            if rule.issuer and rule.issuer not in seen:
                seen.add(rule.issuer)
                rules.append(rule)
    return rules


def _keys(rule: JWTRule, fetched: Mapping[str, str | None]) -> str:
    if rule.jwks:
        return rule.jwks
    location = jwks_location(rule.issuer, rule.jwks_uri)
    keys = fetched.get(location) if location else None
    return keys or UNAVAILABLE_JWKS


def _provider(rule: JWTRule, fetched: Mapping[str, str | None]) -> Json:
    provider: Json = {
        "issuer": rule.issuer,
        "local_jwks": {"inline_string": _keys(rule, fetched)},
        "forward": bool(rule.forward_original_token),
        "payload_in_metadata": JWT_PAYLOAD_KEY,
        # `scope: "a b"` matches a condition on `a` (Istio: "scope", "permission" and the rule's
        # own spaceDelimitedClaims are split on spaces in the metadata policies read).
        "normalize_payload_in_metadata": {
            "space_delimited_claims": list(
                dict.fromkeys(("scope", "permission", *rule.space_delimited_claims))
            )
        },
    }
    if rule.audiences:
        provider["audiences"] = list(rule.audiences)
    if rule.from_headers:
        provider["from_headers"] = [
            {"name": h.name, **({"value_prefix": h.prefix} if h.prefix else {})}
            for h in rule.from_headers
        ]
    if rule.from_params:
        provider["from_params"] = list(rule.from_params)
    if rule.from_cookies:
        provider["from_cookies"] = list(rule.from_cookies)
    if rule.output_payload_to_header:
        provider["forward_payload_header"] = rule.output_payload_to_header
    if rule.output_claim_to_headers:
        provider["claim_to_headers"] = [
            {"header_name": c.header, "claim_name": c.claim} for c in rule.output_claim_to_headers
        ]
    return provider


def jwt_filter(
    policies: Iterable[Selected[RequestAuthentication]], fetched: Mapping[str, str | None]
) -> Json | None:
    """The jwt_authn filter, or None when no RequestAuthentication applies."""
    rules = jwt_rules(policies)
    if not rules:
        return None
    providers = {f"origins-{i}": _provider(rule, fetched) for i, rule in enumerate(rules)}
    requirements: list[Json] = [{"provider_name": name} for name in providers]
    requirements.append({"allow_missing": {}})
    return {
        "name": JWT_FILTER,
        "typed_config": {
            "@type": JWT_TYPE,
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {
                "requirements": requirements}}}],
            "bypass_cors_preflight": True,
        },
    }  # fmt: skip


def fetch_timeout_millis(rule: JWTRule, default: int = 5000) -> int:
    """The rule's `timeout` for fetching its keys (Istio's default: 5 s)."""
    return parse_millis(rule.timeout) if rule.timeout else default
