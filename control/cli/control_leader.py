"""With `--kube`: the Lease and the singleton duties it gates (`control/plane/leader/`), put
together with the mesh CA. Every replica runs for the Lease; the holder keeps the root
certificate ConfigMap in every namespace and the webhooks' `caBundle` current.

    leadership = build_leadership(client, authority, names, identity=pod_name())
    task = asyncio.create_task(leadership.run())   # cancelled at shutdown: the Lease released
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from control.identity.keys import KeySpec, generate_key, private_key_pem
from control.identity.pem import general_name
from control.install.names import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ROOT_CERT_CONFIG_MAP,
    ROOT_CERT_KEY,
    Names,
)
from control.plane.ca.authority import CertificateAuthority
from control.plane.ca.refusals import Refusal
from control.plane.kube.rest import KubeRest
from control.plane.leader.ca_bundle import CaBundleDuty
from control.plane.leader.duties import Leadership
from control.plane.leader.lease_store import KubeLeaseStore
from control.plane.leader.namespace_watch import NamespaceWatch
from control.plane.leader.root_configmaps import RootConfigMapDuty
from control.plane.leader.seams import IssuedCertificate

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

POD_NAME_ENV = "POD_NAME"


class AuthorityRoots:
    """`RootBundleSource` of the mesh CA: its trust bundle (both roots during a rotation)."""

    def __init__(self, authority: CertificateAuthority) -> None:
        self.authority = authority

    def root_bundle(self) -> str:
        return self.authority.issuer.roots_pem


class AuthorityIssuer:
    """`ServingCertIssuer` of the mesh CA: a fresh key and a certificate for DNS names."""

    def __init__(self, authority: CertificateAuthority, key_spec: KeySpec | None = None) -> None:
        self.authority = authority
        self.key_spec = key_spec or KeySpec()

    def issue(self, dns_names: Sequence[str], lifetime: timedelta) -> IssuedCertificate:
        key = generate_key(self.key_spec)
        result = self.authority.issue(key, [general_name(n) for n in dns_names], lifetime)
        if isinstance(result, Refusal):
            raise RuntimeError(f"the mesh CA refused a serving certificate: {result}")
        _, chain = result
        return IssuedCertificate("".join(chain).encode(), private_key_pem(key))


def pod_name() -> str:
    """Who runs for the Lease: the pod's name (the Downward API's POD_NAME), else the host."""
    return os.environ.get(POD_NAME_ENV, "").strip()[:253] or socket.gethostname()


def build_leadership(
    client: ApiClient, authority: CertificateAuthority, names: Names, identity: str
) -> Leadership:
    rest = KubeRest(client, 10.0, 30.0)
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    store = KubeLeaseStore(rest, names.namespace, names.lease, labels)
    leadership = Leadership(store, identity)
    roots = AuthorityRoots(authority)
    leadership.add(
        RootConfigMapDuty(
            rest, roots, leadership.is_leader, ROOT_CERT_CONFIG_MAP, ROOT_CERT_KEY, labels
        )
    )
    leadership.add(
        CaBundleDuty(
            rest, roots, leadership.is_leader, [names.mutating_webhook], [names.validating_webhook]
        )
    )
    leadership.add_trigger(NamespaceWatch(client))
    return leadership
