"""The Kubernetes source against the fake API server: the initial list, watch events, 410 Gone,
cut streams, an API server that goes away and comes back, and invalid mesh documents."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from control.plane.kube.reflector import WATCHED_KINDS
from control.plane.model.state import MeshState
from control.plane.sources.file import FileSource
from control.plane.sources.kube import KubeSource, KubeSyncError
from tests.control_kube.conftest import (
    FAST,
    TESTDATA,
    TOKEN,
    client_for,
    eventually,
    mesh_documents,
    running,
)
from tests.control_kube.fake_apiserver import DEFAULT_RESOURCES, FakeApiServer, FakeResource

pytestmark = pytest.mark.anyio

NETWORKING = "networking.istio.io/v1"


def service(name: str, octet: int, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": f"10.96.7.{octet}", "selector": {"app": name},
                 "ports": [{"name": "http", "port": 80}]},
    }  # fmt: skip


def pod(name: str, app: str, ip: str, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "status": {"podIP": ip, "phase": "Running"},
    }


def virtual_service(name: str, host: str, weight: Any = 100) -> dict[str, Any]:
    route = [{"destination": {"host": host}, "weight": weight}]
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"hosts": [host], "http": [{"route": route}]},
    }


def services(state: MeshState) -> set[str]:
    return {name for _, name in state.services}


def endpoint_ips(state: MeshState, name: str) -> set[str]:
    return {e.ip for port in state.endpoints[("shop", name)].values() for e in port}


def seeded(fake: FakeApiServer) -> None:
    for document in mesh_documents():
        fake.apply(document)


@pytest.fixture
def source(fake: FakeApiServer, client: ApiClient) -> KubeSource:
    """A source that has listed the seeded mesh (`load()`), not yet watching."""
    seeded(fake)
    loaded = KubeSource(client, settings=FAST)
    loaded.load()
    return loaded


async def all_watching(fake: FakeApiServer) -> None:
    await eventually(lambda: fake.open_watches() == len(WATCHED_KINDS), what="every watch open")


async def test_initial_list_builds_the_state_the_file_source_builds(
    fake: FakeApiServer, client: ApiClient
) -> None:
    seeded(fake)
    state = KubeSource(client, settings=FAST).load()
    # The rest of the plane cannot tell them apart, but that this one serves credentialName.
    assert state.reads_secrets
    assert dataclasses.replace(state, reads_secrets=False) == FileSource(TESTDATA).load()
    assert state.summary() == {
        "namespaces": 2, "services": 2, "pods": 3, "serviceEntries": 1, "virtualServices": 1,
        "destinationRules": 1, "otherMeshConfig": 4, "problems": 0,
    }  # fmt: skip
    assert endpoint_ips(state, "reviews") == {"10.244.0.21", "10.244.0.22"}
    assert fake.counters.lists["pods"] == 2  # three pods in pages of two: the continue token works


async def test_watch_events_update_the_state_within_a_second(
    fake: FakeApiServer, source: KubeSource
) -> None:
    lists = dict(fake.counters.lists)
    async with running(source) as states:
        await all_watching(fake)
        fake.apply(service("details", 40))
        took = await eventually(lambda: "details" in services(source.current()), what="ADDED")
        assert took < 1.0
        assert states[-1] is source.current()

        fake.apply(pod("details-1", "details", "10.244.3.1"))
        took = await eventually(lambda: endpoint_ips(source.current(), "details"), what="pod")
        assert took < 1.0
        assert endpoint_ips(source.current(), "details") == {"10.244.3.1"}

        fake.apply(virtual_service("reviews", "reviews", weight=100))  # MODIFIED
        took = await eventually(
            lambda: len(source.current().virtual_services[0].spec.http[0].route) == 1,
            what="MODIFIED",
        )
        assert took < 1.0

        fake.delete("v1", "Pod", "reviews-v2-bbb", "shop")
        took = await eventually(
            lambda: endpoint_ips(source.current(), "reviews") == {"10.244.0.21"}, what="DELETED"
        )
        assert took < 1.0
    assert fake.counters.lists == lists  # all of it came through the watches, no relist


async def test_an_event_larger_than_one_read_arrives_whole(
    fake: FakeApiServer, client: ApiClient
) -> None:
    source = KubeSource(client, settings=FAST)
    source.load()
    big = service("big", 47)
    big["metadata"]["annotations"] = {"note": "x" * 3_000_000}  # ~46 reads of 64 KiB
    async with running(source):
        await all_watching(fake)
        fake.apply(big)
        fake.apply(service("next", 48))
        await eventually(lambda: {"big", "next"} <= services(source.current()))


async def test_changes_that_do_not_touch_the_mesh_are_not_reported(
    fake: FakeApiServer, source: KubeSource
) -> None:
    slices = next(r for r in source.reflectors if r.resource.kind == "EndpointSlice")
    async with running(source) as states:
        await all_watching(fake)
        await asyncio.sleep(0.2)
        before = len(states)
        slice_ = next(d for d in mesh_documents() if d["kind"] == "EndpointSlice")
        slice_["endpoints"][0]["conditions"] = {"ready": False}
        stored = fake.apply(slice_)
        reviews = next(d for d in mesh_documents() if d["metadata"]["name"] == "reviews-v1-aaa")
        reviews["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
        fake.apply(reviews)  # a pod change routing does not read
        fake.apply(service("marker", 41))
        await eventually(lambda: "marker" in services(source.current()))
        assert len(states) == before + 1  # the marker only
        version = stored["metadata"]["resourceVersion"]
        await eventually(lambda: slices.resource_version == version, what="the slice stored")
        pod = source.current().workloads[("shop", "reviews-v1-aaa")]
        assert pod.ready  # and the annotated pod is unchanged


@pytest.mark.parametrize("how", ["error-event-on-open-watch", "error-event-on-rewatch", "http-410"])
async def test_gone_relists_and_the_state_stays_correct(
    fake: FakeApiServer, client: ApiClient, source: KubeSource, how: str
) -> None:
    fake.expired_as_http_status = how == "http-410"
    lists = dict(fake.counters.lists)
    async with running(source) as states:
        await all_watching(fake)
        fake.apply(service("moves-the-version-on", 42))
        await eventually(lambda: "moves-the-version-on" in services(source.current()))
        expired = set(lists)  # the kinds whose last version is now older than the compaction
        if how == "error-event-on-open-watch":
            fake.force_gone()  # every open watch ends with an ERROR event, code 410
        else:
            expired.discard("services")  # its watch saw the newest version: it may resume
            fake.compact()
            fake.drop_watches()  # they watch again from their last version: 410
        fake.delete("v1", "Pod", "reviews-v1-aaa", "shop")
        fake.apply(service("after", 43))

        def relisted() -> bool:
            return all(fake.counters.lists[p] > lists[p] for p in expired)

        await eventually(relisted, what="the expired kinds relisted")
        await eventually(lambda: "after" in services(source.current()))
        await eventually(lambda: endpoint_ips(source.current(), "reviews") == {"10.244.0.22"})
    assert all({"reviews", "ratings"} <= services(s) for s in states)  # never an emptied state
    final = KubeSource(client, settings=FAST).load()
    assert source.current() == final  # the same as a fresh list


async def test_a_cut_stream_resumes_from_its_version_without_a_relist(
    fake: FakeApiServer, source: KubeSource
) -> None:
    lists = dict(fake.counters.lists)
    watches = dict(fake.counters.watches)
    async with running(source):
        await all_watching(fake)
        fake.drop_watches()
        fake.apply(service("during-reconnect", 44))
        fake.delete("v1", "Pod", "reviews-v2-bbb", "shop")
        await eventually(lambda: "during-reconnect" in services(source.current()))
        await eventually(lambda: endpoint_ips(source.current(), "reviews") == {"10.244.0.21"})
        await all_watching(fake)
    assert fake.counters.lists == lists  # resumed from the last resourceVersion: nothing relisted
    assert all(fake.counters.watches[p] > watches[p] for p in watches)


@pytest.mark.parametrize("how", ["garbage", "error-500"])
async def test_a_sick_watch_relists_and_recovers(
    fake: FakeApiServer, source: KubeSource, how: str
) -> None:
    lists = dict(fake.counters.lists)
    async with running(source) as states:
        await all_watching(fake)
        fake.break_watches(how)
        fake.delete("v1", "Service", "ratings", "shop")
        await eventually(lambda: all(fake.counters.lists[p] > lists[p] for p in lists))
        await eventually(lambda: "ratings" not in services(source.current()))
        await all_watching(fake)
        fake.apply(service("after-recovery", 46))
        await eventually(lambda: "after-recovery" in services(source.current()))
    assert all("reviews" in services(s) for s in states)


async def test_bookmarks_move_the_resume_point(fake: FakeApiServer, source: KubeSource) -> None:
    async with running(source):
        await all_watching(fake)
        for octet in range(50, 53):  # the services' version moves on; the pods' does not
            fake.apply(service(f"s{octet}", octet))
        await eventually(lambda: "s52" in services(source.current()))
        fake.bookmark()
        newest = str(fake.version)
        # Every watch must have read the bookmark before the compaction, or that kind would
        # rightly get a 410 (each reflector reads its own stream, in its own time).
        await eventually(
            lambda: all(r.resource_version == newest for r in source.reflectors), what="bookmark"
        )
        lists = dict(fake.counters.lists)
        watches = dict(fake.counters.watches)
        fake.compact()
        fake.drop_watches()
        await eventually(
            lambda: all(fake.counters.watches[p] > watches[p] for p in watches), what="rewatch"
        )
        await all_watching(fake)
    assert fake.counters.lists == lists  # the bookmark's version was recent enough: no 410


async def test_api_server_down_keeps_the_last_state_and_catches_up(
    fake: FakeApiServer, source: KubeSource
) -> None:
    async with running(source) as states:
        await all_watching(fake)
        known = source.current()
        fake.stop()
        # Meanwhile, in etcd (through another API server, or before this one died):
        fake.delete("v1", "Pod", "reviews-v2-bbb", "shop")
        fake.delete(NETWORKING, "VirtualService", "reviews", "shop")
        fake.delete("v1", "Service", "ratings", "shop")
        fake.apply(service("new-while-down", 45))
        fake.compact()
        await asyncio.sleep(1.0)  # several failed relists (backoff up to 0.3 s)
        assert source.current() is known  # nothing deleted, nothing reported
        assert states == [] or states[-1] is known
        reported = len(states)

        fake.start()  # each kind relists on its own schedule: wait for every one of them

        def caught_up() -> bool:
            state = source.current()
            return (
                services(state) == {"reviews", "new-while-down"}
                and not state.virtual_services
                and endpoint_ips(state, "reviews") == {"10.244.0.21"}
            )

        await eventually(caught_up, what="the deletions and additions made while down")
        assert len(states) > reported
    assert all("reviews" in services(s) for s in states)  # never an empty state on the way


async def test_no_state_is_reported_before_every_kind_is_listed(
    fake: FakeApiServer, client: ApiClient
) -> None:
    seeded(fake)
    fake.failing["pods"] = 500
    source = KubeSource(client, settings=FAST)  # no load(): run() lists by itself
    async with running(source) as states:
        await asyncio.sleep(0.5)
        assert states == []
        assert source.current().services == {}  # still the empty initial state, not published
        del fake.failing["pods"]
        await eventually(lambda: states, what="a state once pods list")
        assert states[0].workloads
        assert states[0].services


async def test_invalid_mesh_documents_are_reported_and_skipped_like_the_file_source(
    fake: FakeApiServer, client: ApiClient, tmp_path: Path
) -> None:
    seeded(fake)
    broken = virtual_service("broken", "ratings", weight="lots")
    fake.apply(broken)
    source = KubeSource(client, settings=FAST)
    state = source.load()
    [problem] = state.problems
    assert problem.origin == "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/broken"
    assert problem.kind == "VirtualService"
    assert "weight" in problem.message
    assert [vs.name for vs in state.virtual_services] == ["reviews"]  # the rest still applies

    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    [file_problem] = FileSource(tmp_path).load().problems
    assert file_problem.message == problem.message  # the same words, only the origin differs

    async with running(source):
        fake.apply(virtual_service("broken", "ratings", weight=100))  # fixed
        await eventually(lambda: not source.current().problems, what="the fix")
        assert [vs.name for vs in source.current().virtual_services] == ["broken", "reviews"]


async def test_kinds_not_served_are_empty_until_their_crd_is_installed(
    client: ApiClient, fake: FakeApiServer
) -> None:
    security = [r for r in fake.resources if r.group == "security.istio.io"]
    fake.resources = tuple(r for r in fake.resources if r.group != "security.istio.io")
    seeded_docs = [d for d in mesh_documents() if not d["apiVersion"].startswith("security.")]
    for document in seeded_docs:
        fake.apply(document)
    source = KubeSource(client, settings=FAST)
    state = source.load()
    assert state.virtual_services
    assert [r.kind for r in state.other_config] == ["Sidecar"]
    async with running(source):
        for resource in security:
            fake.install(resource)
        fake.apply(next(d for d in mesh_documents() if d["kind"] == "PeerAuthentication"))
        await eventually(lambda: len(source.current().other_config) == 2, what="the new CRD")


async def test_a_core_kind_answering_404_keeps_its_objects(
    fake: FakeApiServer, source: KubeSource
) -> None:
    """Only an API group's kind can be unserved; a 404 for Services (a broken proxy in front
    of the API server) must not delete every Service from the mesh."""
    known = source.current()
    served = fake.resources
    async with running(source) as states:
        await all_watching(fake)
        fake.resources = tuple(r for r in served if r.plural != "services")
        fake.drop_watches()  # the services' watch and relists now meet 404s
        await eventually(lambda: fake.counters.not_found >= 3, what="404s for services")
        assert source.current() is known
        assert states == [] or states[-1] is known
        fake.resources = served
        fake.apply(service("after-the-404s", 49))
        await eventually(lambda: "after-the-404s" in services(source.current()))
    assert all({"reviews", "ratings"} <= services(s) for s in states)


async def test_an_older_served_version_of_a_crd_is_used(tmp_path: Path) -> None:
    """Clusters with older Istio CRDs serve v1beta1 only: the source falls back to it."""
    resources = tuple(r for r in DEFAULT_RESOURCES if r.kind != "VirtualService")
    old = FakeResource("networking.istio.io", "v1beta1", "virtualservices", "VirtualService")
    document = virtual_service("reviews", "reviews")
    document["apiVersion"] = "networking.istio.io/v1beta1"
    with FakeApiServer((*resources, old), token=TOKEN) as server:
        server.apply(document)
        with client_for(server, tmp_path) as api:
            state = KubeSource(api, settings=FAST).load()
    [vs] = state.virtual_services
    assert (vs.version, vs.name) == ("v1beta1", "reviews")


async def test_load_fails_clearly_when_the_api_server_is_unreachable(
    fake: FakeApiServer, client: ApiClient
) -> None:
    fake.stop()
    settings = FAST.model_copy(update={"sync_timeout": 0.5})
    started = time.monotonic()
    with pytest.raises(KubeSyncError) as raised:
        KubeSource(client, settings=settings).load()
    assert time.monotonic() - started < 3
    message = str(raised.value)
    assert fake.url in message
    assert "services: " in message
    assert "unreachable" in message


async def test_stopping_ends_every_watch_thread(fake: FakeApiServer, source: KubeSource) -> None:
    async with running(source):
        await all_watching(fake)
    assert not any(r.running for r in source.reflectors)
    await eventually(lambda: fake.open_watches() == 0, what="the server sees the watches close")


async def test_a_rebuild_revalidates_only_the_objects_that_changed(
    fake: FakeApiServer, source: KubeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from control.plane.model import build

    validated: list[str] = []
    original = build.inspect_resource

    def counting(obj: Any) -> Any:
        validated.append(obj["metadata"]["name"])
        return original(obj)

    monkeypatch.setattr(build, "inspect_resource", counting)
    async with running(source):
        await all_watching(fake)
        fake.apply(virtual_service("reviews", "reviews", weight=100))  # MODIFIED
        await eventually(
            lambda: len(source.current().virtual_services[0].spec.http) == 1, what="MODIFIED"
        )
    assert validated == ["reviews"], validated  # not the other mesh objects of the store


def endpoint_slice(name: str, service_name: str, ips: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 5432, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip]} for ip in ips],
    }  # fmt: skip


async def test_a_selectorless_service_follows_its_endpoint_slices(
    fake: FakeApiServer, source: KubeSource
) -> None:
    external = service("external-db", 50)
    del external["spec"]["selector"]
    fake.apply(external)
    fake.apply(endpoint_slice("external-db-1", "external-db", ["198.18.5.1"]))
    async with running(source):
        await all_watching(fake)
        await eventually(
            lambda: endpoint_ips(source.current(), "external-db") == {"198.18.5.1"}, what="ADDED"
        )
        fake.apply(endpoint_slice("external-db-1", "external-db", ["198.18.5.2", "198.18.5.3"]))
        await eventually(
            lambda: endpoint_ips(source.current(), "external-db") == {"198.18.5.2", "198.18.5.3"},
            what="MODIFIED",
        )
        fake.delete("discovery.k8s.io/v1", "EndpointSlice", "external-db-1", "shop")
        await eventually(lambda: not endpoint_ips(source.current(), "external-db"), what="DELETED")
