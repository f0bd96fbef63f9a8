"""Two (or more) control-plane candidates on the fake API server, each with its own client and
a record of the writes it made, and the Lease holder at the moment of each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from control.plane.kube.rest import KubeRest
from control.plane.leader.ca_bundle import CaBundleDuty
from control.plane.leader.duties import Leadership
from control.plane.leader.lease import ElectionTiming, LeaseRecord
from control.plane.leader.lease_store import KubeLeaseStore, LeaseUnavailableError
from control.plane.leader.namespace_watch import NamespaceWatch
from control.plane.leader.root_configmaps import RootConfigMapDuty
from control.plane.leader.seams import RootBundleSource
from control.plane.sources.kube import kube_client
from tests.control_kube.conftest import FAST
from tests.control_kube.fake_apiserver import FakeApiServer
from tests.control_kube.fake_cluster import FakeCluster, fake_cluster
from tests.leader.ca import SwitchableRoots, TestCA

NAMESPACE = "mizzen-system"
LEASE = "mizzen-leader"
TIMING = ElectionTiming(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with fake_cluster(tmp_path) as made:
        for name in (NAMESPACE, "default", "kube-system"):
            made.namespace(name)
        yield made


@pytest.fixture
def roots(tmp_path: Path) -> SwitchableRoots:
    return SwitchableRoots(TestCA(tmp_path / "ca"))


def lease_holder(fake: FakeApiServer) -> str:
    for lease in fake.objects("leases"):
        if lease["metadata"]["name"] == LEASE:
            return str(lease["spec"].get("holderIdentity") or "")
    return ""


class RecordingRest(KubeRest):
    """Notes each write of the duties, with the Lease holder as the API server has it then."""

    def __init__(self, rest: KubeRest, fake: FakeApiServer, identity: str) -> None:
        super().__init__(rest.client, *rest.timeouts)
        self.fake = fake
        self.identity = identity
        self.writes: list[tuple[str, str, str]] = []  # (method, path, holder then)

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if method in WRITES and "/leases" not in path:
            self.writes.append((method, path, lease_holder(self.fake)))
        return super().call(method, path, **kwargs)


class CuttableStore(KubeLeaseStore):
    """The Lease as one candidate reaches it; `cut` stops its renewals (a partition)."""

    cut = False

    def read(self) -> tuple[LeaseRecord, str] | None:
        if self.cut:
            raise LeaseUnavailableError("partitioned")
        return super().read()

    def write(self, record: LeaseRecord, version: str) -> str:
        if self.cut:
            raise LeaseUnavailableError("partitioned")
        return super().write(record, version)


@dataclass
class Candidate:
    identity: str
    leadership: Leadership
    rest: RecordingRest
    store: CuttableStore
    task: asyncio.Task[None] | None = None
    extra: list[Any] = field(default_factory=list)

    @property
    def leading(self) -> bool:
        return self.leadership.is_leader()


def make_candidate(
    cluster: FakeCluster,
    identity: str,
    roots: RootBundleSource,
    resync: float = 30.0,
    webhooks: Sequence[str] = ("mizzen-sidecar-injector",),
    validators: Sequence[str] = ("mizzen-validator",),
    watch_namespaces: bool = True,
) -> Candidate:
    client = kube_client(cluster.kubeconfig)  # each replica its own connection pool
    rest = RecordingRest(KubeRest(client, 2.0, 5.0), cluster.fake, identity)
    store = CuttableStore(KubeRest(client, 2.0, 5.0), NAMESPACE, LEASE)
    leadership = Leadership(store, identity, TIMING, resync=resync)
    labels = {"app.kubernetes.io/managed-by": "mizzen"}
    leadership.add(
        RootConfigMapDuty(
            rest, roots, leadership.is_leader, "mizzen-ca-root-cert", "root-cert.pem", labels
        )
    )
    leadership.add(CaBundleDuty(rest, roots, leadership.is_leader, webhooks, validators))
    if watch_namespaces:
        leadership.add_trigger(NamespaceWatch(client, FAST))
    return Candidate(identity, leadership, rest, store, extra=[client])


@contextlib.asynccontextmanager
async def running(*candidates: Candidate) -> AsyncIterator[None]:
    for candidate in candidates:
        candidate.task = asyncio.create_task(candidate.leadership.run())
    try:
        yield
    finally:
        for candidate in candidates:
            await stop(candidate)
            for client in candidate.extra:
                client.close()


async def stop(candidate: Candidate) -> None:
    task, candidate.task = candidate.task, None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
