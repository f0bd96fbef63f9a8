"""With `--kube`: the Lease and the singleton duties it gates (`control/plane/leader/`), put
together with the mesh CA. Every replica runs for the Lease; the holder keeps the root
certificate ConfigMap in every namespace and the webhooks' `caBundle` current.

    leadership = build_leadership(client, authority, names, identity=pod_name())
    task = asyncio.create_task(leadership.run())   # cancelled at shutdown: the Lease released
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from control.install.names import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ROOT_CERT_CONFIG_MAP,
    ROOT_CERT_KEY,
    Names,
)
from control.plane.ca.authority import CertificateAuthority
from control.plane.kube.rest import KubeRest
from control.plane.leader.ca_bundle import CaBundleDuty
from control.plane.leader.duties import Leadership
from control.plane.leader.lease_store import KubeLeaseStore
from control.plane.leader.namespace_watch import NamespaceWatch
from control.plane.leader.root_configmaps import RootConfigMapDuty

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

POD_NAME_ENV = "POD_NAME"


class AuthorityRoots:
    """`RootBundleSource` of the mesh CA: its trust bundle (both roots during a rotation)."""

    def __init__(self, authority: CertificateAuthority) -> None:
        self.authority = authority

    def root_bundle(self) -> str:
        return self.authority.issuer.roots_pem


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
