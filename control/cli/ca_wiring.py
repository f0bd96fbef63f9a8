"""The CA's flags and assembly, shared by `mizzen ca serve` and `mizzen control`.

    add_ca_flags(parser)                       # --ca-dir, --plugin-ca-dir, --ca-key-type, ...
    settings = ca_settings(args, kube=args.kube)         # ValueError naming the flag
    parts = build_identity(settings, kube_client, registry)   # blocking: creates the CA if absent
    server = secure_server(parts, port=15012, registrars=[ads_registrar])
    await server.start(); ...; await server.stop(); parts.close()

`parts.authority.watch(settings.reload_interval)` is the task that follows root rotations.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from control.api.duration import DurationError, parse_millis
from control.identity.keys import generate_key
from control.plane.ca.authn import Authenticator
from control.plane.ca.authority import CertificateAuthority, bootstrap
from control.plane.ca.ca_metrics import CaMetrics, CitadelCounters
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.kube_calls import KubeJson
from control.plane.ca.kube_store import KubeCaStore, KubeSecretSource
from control.plane.ca.local_tokens import LocalTokenAuthenticator, load_or_create_token_key
from control.plane.ca.material import self_signed_root
from control.plane.ca.secure_port import Registrar, SecureGrpcServer, SecureServerOptions
from control.plane.ca.service import CertificateService, ServiceLimits
from control.plane.ca.serving_cert import ServingIdentity, service_names
from control.plane.ca.store import CaSource, CaStore, DirectorySource, FileCaStore
from control.plane.ca.tokenreview import KubeTokenReviewer, TokenReviewAuthenticator
from control.serving.grpc_limits import GrpcLimits

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def utc_now() -> datetime:
    return datetime.now(UTC)


def add_ca_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("identity (the mesh CA)")
    add = group.add_argument
    add("--ca-dir", type=Path, help="local mode: the self-signed CA and token key (made 0700)")
    add("--plugin-ca-dir", type=Path, help="a plug-in CA (Istio's cacerts layout) to sign with")
    add("--ca-key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="a new root's key")
    add("--ca-rsa-bits", type=int, default=2048, help="with --ca-key-type rsa")
    add("--workload-cert-ttl", default="24h", help="default workload certificate lifetime")
    add("--max-workload-cert-ttl", default="2160h", help="longest lifetime granted (90 days)")
    add("--trust-domain", default="cluster.local", help="the SPIFFE trust domain")
    add("--token-audience", default="mizzen-ca", help="audience callers' tokens must carry")
    add("--ca-namespace", default="mizzen-system", help="with --kube: where the CA Secrets are")
    add("--service-name", default="mizzen", help="the control plane's Service (certificate names)")
    add("--cluster-domain", default="cluster.local", help="DNS suffix of Services")
    add(
        "--advertise-address", action="append", default=[], metavar="HOST",
        help="another name or IP clients dial (repeatable); in the serving certificate",
    )  # fmt: skip


def _duration(flag: str, text: str) -> timedelta:
    try:
        return timedelta(milliseconds=parse_millis(text))
    except DurationError as error:
        raise ValueError(f"{flag}: {error}") from None


def ca_settings(args: argparse.Namespace, *, kube: bool) -> CaSettings:
    """Raises ValueError with a message naming the flag."""
    fields = {
        "ca_dir": args.ca_dir,
        "plugin_ca_dir": args.plugin_ca_dir,
        "kube": kube,
        "namespace": args.ca_namespace,
        "key_type": args.ca_key_type,
        "rsa_bits": args.ca_rsa_bits,
        "workload_cert_ttl": _duration("--workload-cert-ttl", args.workload_cert_ttl),
        "max_workload_cert_ttl": _duration("--max-workload-cert-ttl", args.max_workload_cert_ttl),
        "trust_domain": args.trust_domain,
        "token_audience": args.token_audience,
        "service_name": args.service_name,
        "cluster_domain": args.cluster_domain,
        "advertise_addresses": tuple(args.advertise_address),
    }
    try:
        return CaSettings(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(p) for p in first["loc"]]
        flag = _FLAG_OF.get(loc[0], loc[0]) if loc else "flags"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{flag}: {message}" if loc else message) from None


_FLAG_OF = {
    "namespace": "--ca-namespace",
    "rsa_bits": "--ca-rsa-bits",
    "trust_domain": "--trust-domain",
    "token_audience": "--token-audience",
}


@dataclass
class IdentityParts:
    settings: CaSettings
    authority: CertificateAuthority
    authenticator: Authenticator
    metrics: CaMetrics
    service: CertificateService
    serving: ServingIdentity

    def close(self) -> None:
        self.service.close()


def _stores(settings: CaSettings, api: KubeJson | None) -> tuple[CaStore, CaSource | None]:
    plugin: CaSource | None = None
    if settings.plugin_ca_dir is not None:
        plugin = DirectorySource(settings.plugin_ca_dir)
    if api is not None:
        plugin = plugin or KubeSecretSource(api, settings.namespace)
        return KubeCaStore(api, settings.namespace), plugin
    assert settings.ca_dir is not None  # CaSettings requires it without --kube
    return FileCaStore(settings.ca_dir), plugin


def build_identity(
    settings: CaSettings,
    kube_client: ApiClient | None,
    registry: CollectorRegistry,
    *,
    limits: ServiceLimits | None = None,
    citadel: CitadelCounters | None = None,
) -> IdentityParts:
    """Blocking (files, Secrets): run it before the loop starts serving, or in a thread.
    Raises CaStoreError / CaMaterialError with a message naming the place at fault."""
    api = KubeJson(kube_client) if settings.kube and kube_client is not None else None
    if settings.kube and api is None:
        raise ValueError("--kube needs a Kubernetes client")
    store, plugin = _stores(settings, api)
    origin, material = bootstrap(
        store,
        plugin,
        lambda: self_signed_root(generate_key(settings.key_spec), utc_now(), settings.trust_domain),
    )
    authority = CertificateAuthority(
        origin, material, settings.policy, settings.trust_domain, utc_now
    )
    authenticator: Authenticator
    if api is not None:
        authenticator = TokenReviewAuthenticator(
            KubeTokenReviewer(api),
            settings.token_audience,
            settings.trust_domain,
            time.monotonic,
            cache_seconds=settings.review_cache_seconds,
        )
    else:
        assert settings.ca_dir is not None
        key = load_or_create_token_key(settings.ca_dir)
        authenticator = LocalTokenAuthenticator.for_key(
            key, settings.token_audience, settings.trust_domain, utc_now
        )
    metrics = CaMetrics(registry, citadel)
    names = service_names(
        settings.service_name,
        settings.namespace,
        settings.cluster_domain,
        settings.advertise_addresses,
    )
    return IdentityParts(
        settings=settings,
        authority=authority,
        authenticator=authenticator,
        metrics=metrics,
        service=CertificateService(authority, authenticator, metrics, limits),
        serving=ServingIdentity(authority, names),
    )


def secure_server(
    parts: IdentityParts,
    port: int,
    registrars: Sequence[Registrar] = (),
    *,
    host: str = "",
    require_client_cert: bool = False,
    with_certificates: bool = True,
    limits: GrpcLimits | None = None,
) -> SecureGrpcServer:
    """A secure port with the mesh-issued serving certificate: the CSR API (unless
    `with_certificates` is False) plus `registrars` (ADS). With `require_client_cert`, callers
    must present a mesh certificate (`control.plane.ca.peer.peer_spiffe_id` names them); the
    first CSR of a workload has none, so the CSR API needs a port that does not require one."""
    options = SecureServerOptions(
        port=port, host=host, limits=limits or GrpcLimits(), require_client_cert=require_client_cert
    )
    services = [parts.service.register] if with_certificates else []
    return SecureGrpcServer(parts.serving, [*services, *registrars], options)
