"""What policy adds to a sidecar's inbound chains: the public API of this package.

`MeshPolicies(state, known_host)` indexes one state's policies; `.for_workload(namespace,
labels)` gives the `InboundPolicy` of a workload (hashable: proxies under equal policies share
one translation). Its three methods are the hook points of the inbound listener:

- `http_filters()`: HTTP filters to put, in this order, before the router of every inbound
  HTTP filter chain (after any filter that sets the peer identity, e.g. after mTLS
  termination, which is a transport socket and needs no filter): CUSTOM (an RBAC filter in
  shadow mode + ext_authz) -> jwt_authn -> AUDIT (RBAC LOG) -> DENY -> ALLOW.
- `network_filters()`: network filters to put, in this order, before `tcp_proxy` on every
  inbound TCP filter chain: CUSTOM (gRPC providers) -> AUDIT -> DENY -> ALLOW.
- Both give protobuf JSON, or with `packed=True` (the listener's form) the RBAC filters'
  configs as serialized Anys (`rbac`): the same bytes, made once for every chain.
- `hcm_options()`: fields for every HTTP connection manager (path normalisation and the number
  of trusted proxies in X-Forwarded-For); `path_settings(mesh)` gives the former alone, for
  outbound HTTP connection managers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# Every message type these filters put in an Any, registered for parsing.
from envoy.extensions.access_loggers.stats.v3 import stats_pb2  # noqa: F401
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2  # noqa: F401
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2  # noqa: F401
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2  # noqa: F401
from envoy.extensions.filters.network.ext_authz.v3 import ext_authz_pb2 as _n  # noqa: F401
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as _nr  # noqa: F401
from envoy.extensions.path.match.uri_template.v3 import uri_template_match_pb2  # noqa: F401

from control.api.models.security import AuthorizationPolicy, RequestAuthentication
from control.config.mesh_config import MeshConfig
from control.plane.model.jwks import jwks_location
from control.plane.model.state import MeshState
from control.plane.xds.translate.authz import rbac
from control.plane.xds.translate.authz.authn import jwt_filter, jwt_rules
from control.plane.xds.translate.authz.extauthz import (
    BAD_SUFFIX,
    MATCH_PREFIX,
    SHADOW_STAT_PREFIX,
    ResolvedProvider,
    http_ext_authz,
    network_ext_authz,
)
from control.plane.xds.translate.authz.matchers import Json
from control.plane.xds.translate.authz.normalize import hcm_path_settings
from control.plane.xds.translate.authz.select import PolicyIndex, Selected

# The access-log field (and its Envoy command) that shows an AUDIT match: Envoy's RBAC LOG
# action sets `access_log_hint` in the `envoy.common` dynamic metadata.
AUDIT_LOG_FIELD: Final = "policy_audit"
AUDIT_LOG_COMMAND: Final = "%DYNAMIC_METADATA(envoy.common:access_log_hint)%"
# The counter of audited requests (every HTTP chain of the proxy): Envoy's stats access logger,
# filtered on that hint, so it is a plain Envoy counter on :15090 (`istio.policy_audit`).
AUDIT_STAT_PREFIX: Final = "istio"
AUDIT_STAT: Final = "policy_audit"
_STATS_LOGGER: Final = "type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config"
_HINT: Final = {
    "filter": "envoy.common",
    "path": [{"key": "access_log_hint"}],
    "value": {"bool_match": True},
}


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The mesh-wide settings policy translation reads."""

    trust_domains: tuple[str, ...] = ("cluster.local",)
    normalization: str = "DEFAULT"
    trusted_hops: int = 0
    providers: tuple[ResolvedProvider, ...] = ()

    def provider(self, name: str) -> ResolvedProvider:
        for resolved in self.providers:
            if resolved.name == name:
                return resolved
        return ResolvedProvider(name, error=f"extension provider {name!r} is not defined")


@dataclass(frozen=True, slots=True)
class InboundPolicy:
    authorization: tuple[Selected[AuthorizationPolicy], ...] = ()
    authentication: tuple[Selected[RequestAuthentication], ...] = ()
    jwks: tuple[tuple[str, str | None], ...] = ()  # location -> fetched keys (None: failed)
    settings: PolicySettings = field(default_factory=PolicySettings)

    def _of(self, action: str) -> list[Selected[AuthorizationPolicy]]:
        return [p for p in self.authorization if (p.body.action or "ALLOW") == action]

    def _custom(self, for_tcp: bool, packed: bool) -> tuple[list[Json], list[Json]]:
        """(http filters, network filters) of the CUSTOM policies (dry-run ones are not
        evaluated: a documented deviation, see the README)."""
        custom = [p for p in self._of("CUSTOM") if not p.dry_run]
        if not custom:
            return [], []
        names = sorted({p.body.provider.name or "" if p.body.provider else "" for p in custom})
        resolved = (
            self.settings.provider(names[0]) if len(names) == 1
            else ResolvedProvider(",".join(names), error="one CUSTOM provider per workload")
        )  # fmt: skip
        prefix = f"{MATCH_PREFIX}-{resolved.name}-"
        built = rbac.build(
            custom, "DENY", for_tcp=for_tcp, trust_domains=self.settings.trust_domains,
            name_prefix=prefix, allow_semantics=False,
        )  # fmt: skip
        assert built is not None
        assert built.rules is not None
        if resolved.error is not None or resolved.provider is None:
            deny = rbac.renamed(built, BAD_SUFFIX)
            return (
                [rbac.http_filter(deny, "DENY", packed=packed)],
                [rbac.network_filter(deny, "DENY", packed=packed)],
            )
        marker = rbac.as_shadow(built)
        http = rbac.http_filter(
            marker, "DENY", packed=packed, shadow_stat_prefix=SHADOW_STAT_PREFIX
        )
        network = rbac.network_filter(
            marker, "DENY", packed=packed, shadow_stat_prefix=SHADOW_STAT_PREFIX
        )
        tcp_authz = network_ext_authz(resolved)
        return [http, http_ext_authz(resolved)], ([network, tcp_authz] if tcp_authz else [])

    def _rbac(self, for_tcp: bool, packed: bool) -> list[Json]:
        out: list[Json] = []
        for api_action, action in (("AUDIT", "LOG"), ("DENY", "DENY"), ("ALLOW", "ALLOW")):
            built = rbac.build(
                self._of(api_action), action, for_tcp=for_tcp,
                trust_domains=self.settings.trust_domains,
            )  # fmt: skip
            if built is not None:
                make = rbac.network_filter if for_tcp else rbac.http_filter
                out.append(make(built, action, packed=packed))
        return out

    def http_filters(self, *, packed: bool = False) -> list[Json]:
        """`packed`: the RBAC filters' configs as serialized Anys (`rbac`), the listener's
        form; else protobuf JSON."""
        filters = self._custom(for_tcp=False, packed=packed)[0]
        jwt = jwt_filter(self.authentication, dict(self.jwks))
        if jwt is not None:
            filters.append(jwt)
        return filters + self._rbac(for_tcp=False, packed=packed)

    def network_filters(self, *, packed: bool = False) -> list[Json]:
        return self._custom(for_tcp=True, packed=packed)[1] + self._rbac(True, packed)

    def hcm_options(self) -> Json:
        """Connection-manager fields; `access_log` (the audit counter, when an AUDIT policy
        applies) is to be appended to any other access loggers, never to replace them."""
        options = hcm_path_settings(self.settings.normalization)
        if self.settings.trusted_hops:
            options["xff_num_trusted_hops"] = self.settings.trusted_hops
        if self._of("AUDIT"):
            options["access_log"] = [audit_counter()]
        return options


def audit_counter() -> Json:
    """An access logger that counts the requests an AUDIT policy matched."""
    return {
        "name": "envoy.access_loggers.stats",
        "filter": {"metadata_filter": {"matcher": _HINT}},
        "typed_config": {
            "@type": _STATS_LOGGER,
            "stat_prefix": AUDIT_STAT_PREFIX,
            "counters": [{"stat": {"name": AUDIT_STAT}, "value_fixed": 1}],
        },
    }


NO_POLICY: Final = InboundPolicy()


def path_settings(mesh: MeshConfig) -> Json:
    return hcm_path_settings(mesh.path_normalization.normalization)


def _resolve(mesh: MeshConfig, known_host: Callable[[str], bool]) -> tuple[ResolvedProvider, ...]:
    out = []
    for provider in mesh.extension_providers:
        config = provider.ext_authz
        if config is None:
            continue  # a tracing or metrics provider: not for CUSTOM policies
        # Istio's `[<namespace>/]<hostname>`: the hostname as written (a service's full name,
        # e.g. `foo/authz.foo.svc.cluster.local`); a short name is not a hostname.
        service = config.service
        hostname = service.rpartition("/")[2]
        if service.count("/") > 1 or not known_host(hostname):
            error = f"service {service!r} of extension provider {provider.name!r} not found"
            out.append(ResolvedProvider(provider.name, provider, error=error))
            continue
        cluster = f"outbound|{config.port}||{hostname}"
        out.append(ResolvedProvider(provider.name, provider, hostname, cluster))
    return tuple(out)


class MeshPolicies:
    """One state's policies, indexed once; `for_workload` per proxy."""

    def __init__(self, state: MeshState, known_host: Callable[[str], bool]) -> None:
        root = state.mesh.root_namespace
        authz = [r for r in state.other_config if r.kind == "AuthorizationPolicy"]
        authn = [r for r in state.other_config if r.kind == "RequestAuthentication"]
        self.authorization: PolicyIndex[AuthorizationPolicy] = PolicyIndex(authz, root)
        self.authentication: PolicyIndex[RequestAuthentication] = PolicyIndex(authn, root)
        self.jwks = state.jwks
        mesh = state.mesh
        self.settings = PolicySettings(
            trust_domains=tuple(dict.fromkeys((mesh.trust_domain, *mesh.trust_domain_aliases))),
            normalization=mesh.path_normalization.normalization,
            trusted_hops=mesh.default_config.gateway_topology.num_trusted_proxies,
            providers=_resolve(mesh, known_host),
        )

    def for_workload(self, namespace: str, labels: dict[str, str]) -> InboundPolicy:
        authentication = self.authentication.applying(namespace, labels)
        locations: dict[str, str | None] = {}
        for rule in jwt_rules(authentication):
            location = None if rule.jwks else jwks_location(rule.issuer, rule.jwks_uri)
            if location is not None:
                document = self.jwks.get(location)
                locations[location] = document.keys if document is not None else None
        return InboundPolicy(
            self.authorization.applying(namespace, labels),
            authentication,
            tuple(sorted(locations.items())),
            self.settings,
        )
