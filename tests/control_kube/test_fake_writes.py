"""The fake API server's writes behave as the real server's do where mizzen relies on them:
otherwise the install and leader tests would prove nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.plane.kube.rest import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, KubeError, KubeRest
from tests.control_kube.fake_cluster import FakeCluster, fake_cluster

CM = "/api/v1/namespaces/shop/configmaps"
HOOKS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with fake_cluster(tmp_path) as made:
        made.namespace("shop")
        yield made


def config_map(name: str, data: dict[str, str], version: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "shop"}
    if version:
        metadata["resourceVersion"] = version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def apply(rest: KubeRest, path: str, obj: dict[str, Any], manager: str, force: bool = False):  # type: ignore[no-untyped-def]
    query = [("fieldManager", manager)] + ([("force", "true")] if force else [])
    return rest.call("PATCH", path, query=query, body=obj, content_type=APPLY_PATCH)


def test_create_get_conflicts_and_delete(cluster: FakeCluster) -> None:
    rest = cluster.rest
    created = rest.call("POST", CM, body=config_map("a", {"k": "1"}))
    assert created["metadata"]["resourceVersion"]
    with pytest.raises(KubeError) as exists:
        rest.call("POST", CM, body=config_map("a", {"k": "2"}))
    assert (exists.value.status, exists.value.reason) == (409, "AlreadyExists")
    stale = created["metadata"]["resourceVersion"]
    rest.call("PUT", f"{CM}/a", body=config_map("a", {"k": "2"}, stale))
    with pytest.raises(KubeError) as conflict:  # optimistic concurrency: the version moved
        rest.call("PUT", f"{CM}/a", body=config_map("a", {"k": "3"}, stale))
    assert (conflict.value.status, conflict.value.reason) == (409, "Conflict")
    assert rest.get(f"{CM}/a")["data"] == {"k": "2"}  # type: ignore[index]
    with pytest.raises(KubeError) as missing:
        rest.call("PUT", f"{CM}/nope", body=config_map("nope", {}))
    assert missing.value.not_found
    rest.call("DELETE", f"{CM}/a")
    assert rest.get(f"{CM}/a") is None


def test_deleting_a_namespace_deletes_its_objects(cluster: FakeCluster) -> None:
    cluster.rest.call("POST", CM, body=config_map("a", {}))
    cluster.rest.call("DELETE", "/api/v1/namespaces/shop")
    assert cluster.fake.objects("configmaps") == []


def test_selectors_filter_lists(cluster: FakeCluster) -> None:
    cluster.namespace("other")
    for namespace in ("shop", "other"):
        for name in ("root", "x"):
            body = config_map(name, {})
            body["metadata"].update(namespace=namespace, labels={"team": namespace})
            cluster.rest.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body)
    by_name = cluster.rest.list_items(
        "/api/v1/configmaps", [("fieldSelector", "metadata.name=root")]
    )
    assert sorted(i["metadata"]["namespace"] for i in by_name) == ["other", "shop"]
    by_label = cluster.rest.list_items("/api/v1/configmaps", [("labelSelector", "team=shop")])
    assert sorted(i["metadata"]["name"] for i in by_label) == ["root", "x"]


def test_apply_creates_merges_and_drops_what_it_stops_applying(cluster: FakeCluster) -> None:
    rest = cluster.rest
    apply(rest, f"{CM}/a", config_map("a", {"one": "1", "two": "2"}), "mizzen")
    rest.call("PATCH", f"{CM}/a", body={"data": {"mine": "x"}}, content_type=MERGE_PATCH,
              query=[("fieldManager", "kubectl-edit")])  # fmt: skip
    apply(rest, f"{CM}/a", config_map("a", {"one": "1"}), "mizzen")
    # "two" was only mizzen's and is no longer applied; "mine" is another manager's: kept.
    assert rest.get(f"{CM}/a")["data"] == {"one": "1", "mine": "x"}  # type: ignore[index]


def test_apply_conflicts_unless_forced(cluster: FakeCluster) -> None:
    rest = cluster.rest
    apply(rest, f"{CM}/a", config_map("a", {"k": "1"}), "helm")
    with pytest.raises(KubeError) as conflict:
        apply(rest, f"{CM}/a", config_map("a", {"k": "2"}), "mizzen")
    assert conflict.value.status == 409
    assert "helm" in conflict.value.message
    apply(rest, f"{CM}/a", config_map("a", {"k": "1"}), "mizzen")  # same value: shared, fine
    apply(rest, f"{CM}/a", config_map("a", {"k": "2"}), "mizzen", force=True)
    assert rest.get(f"{CM}/a")["data"] == {"k": "2"}  # type: ignore[index]


def test_apply_needs_a_field_manager(cluster: FakeCluster) -> None:
    with pytest.raises(KubeError) as error:
        cluster.rest.call("PATCH", f"{CM}/a", body=config_map("a", {}), content_type=APPLY_PATCH)
    assert error.value.status == 400


def webhook_config(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "hooks"},
        "webhooks": entries,
    }


def test_a_field_patched_by_another_manager_survives_a_reapply(cluster: FakeCluster) -> None:
    """The webhook's caBundle, patched in by the leader, must survive `mizzen install` again:
    lists of named items merge by name, and the applier never owned caBundle."""
    rest = cluster.rest
    entry = {"name": "a.mizzen.io", "clientConfig": {"service": {"name": "mizzen"}}}
    apply(rest, f"{HOOKS}/hooks", webhook_config([entry]), "mizzen")
    patch = [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Q0E="}]
    rest.call("PATCH", f"{HOOKS}/hooks", body=patch, content_type=JSON_PATCH,
              query=[("fieldManager", "mizzen-leader")])  # fmt: skip
    apply(rest, f"{HOOKS}/hooks", webhook_config([entry]), "mizzen")
    [stored] = rest.get(f"{HOOKS}/hooks")["webhooks"]  # type: ignore[index]
    assert stored["clientConfig"] == {"service": {"name": "mizzen"}, "caBundle": "Q0E="}
    second = {"name": "b.mizzen.io", "clientConfig": {"service": {"name": "mizzen"}}}
    apply(rest, f"{HOOKS}/hooks", webhook_config([second, entry]), "mizzen")
    by_name = {w["name"]: w for w in rest.get(f"{HOOKS}/hooks")["webhooks"]}  # type: ignore[index]
    assert by_name["a.mizzen.io"]["clientConfig"]["caBundle"] == "Q0E="
    assert "caBundle" not in by_name["b.mizzen.io"]["clientConfig"]


def test_a_failed_json_patch_test_changes_nothing(cluster: FakeCluster) -> None:
    rest = cluster.rest
    rest.call("POST", CM, body=config_map("a", {"k": "1"}))
    patch = [{"op": "test", "path": "/data/k", "value": "other"},
             {"op": "replace", "path": "/data/k", "value": "2"}]  # fmt: skip
    with pytest.raises(KubeError) as error:
        rest.call("PATCH", f"{CM}/a", body=patch, content_type=JSON_PATCH)
    assert error.value.status == 422
    assert rest.get(f"{CM}/a")["data"] == {"k": "1"}  # type: ignore[index]


def deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": 99},
    }


def test_generation_and_status_as_the_real_server_keeps_them(cluster: FakeCluster) -> None:
    rest, path = cluster.rest, "/apis/apps/v1/namespaces/shop/deployments/web"
    first = apply(rest, path, deployment(1), "mizzen")
    assert first["metadata"]["generation"] == 1
    assert "status" not in first  # the status subresource is not written through the object
    cluster.fake.set_status("apps/v1", "Deployment", "web", "shop", {"replicas": 1})
    labelled = deployment(1)
    labelled["metadata"]["labels"] = {"a": "b"}
    assert apply(rest, path, labelled, "mizzen")["metadata"]["generation"] == 1
    changed = apply(rest, path, deployment(2), "mizzen")
    assert changed["metadata"]["generation"] == 2
    assert changed["status"] == {"replicas": 1}
