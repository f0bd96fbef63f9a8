"""The fake API server answers as kube-apiserver does, checked with a plain HTTP client, so the
source's tests rest on honest behaviour (not on a fake shaped after the code it tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.control_kube.conftest import TOKEN
from tests.control_kube.fake_apiserver import FakeApiServer

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _service(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": {}}  # fmt: skip


@pytest.fixture
def http(fake: FakeApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, headers=AUTH, timeout=5) as client:
        yield client


def _events(http: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    """A whole watch (the caller makes it end: timeoutSeconds, or an error)."""
    with http.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        return [json.loads(line) for line in response.iter_lines() if line]


def test_lists_carry_the_version_and_omit_type_meta_for_builtin_items(
    fake: FakeApiServer, http: httpx.Client
) -> None:
    stored = fake.apply(_service("a"))
    fake.apply(_service("b", namespace="other"))
    body = http.get("/api/v1/services").json()
    assert body["kind"] == "ServiceList"
    assert body["metadata"]["resourceVersion"] == str(
        int(stored["metadata"]["resourceVersion"]) + 1
    )
    assert [i["metadata"]["name"] for i in body["items"]] == ["b", "a"]  # by namespace, name
    assert "kind" not in body["items"][0]
    assert [
        i["metadata"]["name"] for i in http.get("/api/v1/namespaces/shop/services").json()["items"]
    ] == ["a"]
    fake.apply(
        {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "s"}}
    )
    [custom] = http.get("/apis/networking.istio.io/v1/sidecars").json()["items"]
    assert custom["kind"] == "Sidecar"  # custom resources keep theirs


def test_pages_come_from_one_consistent_snapshot(fake: FakeApiServer, http: httpx.Client) -> None:
    for name in "abc":
        fake.apply(_service(name))
    first = http.get("/api/v1/services", params={"limit": "2"}).json()
    fake.apply(_service("0-added-between-pages"))
    fake.delete("v1", "Service", "c", "shop")
    second = http.get(
        "/api/v1/services", params={"limit": "2", "continue": first["metadata"]["continue"]}
    ).json()
    names = [i["metadata"]["name"] for i in first["items"] + second["items"]]
    assert names == ["a", "b", "c"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "continue" not in second["metadata"]


def test_a_watch_replays_what_came_after_its_version(
    fake: FakeApiServer, http: httpx.Client
) -> None:
    version = fake.apply(_service("a"))["metadata"]["resourceVersion"]
    fake.apply(_service("b"))
    fake.apply({**_service("a"), "spec": {"clusterIP": "10.0.0.1"}})
    fake.delete("v1", "Service", "b", "shop")
    events = _events(http, "/api/v1/services", resourceVersion=version, timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b"),
    ]  # fmt: skip
    assert all(e["object"]["kind"] == "Service" for e in events)  # events carry type meta
    assert _events(http, "/api/v1/services", timeoutSeconds="1")[0]["type"] == "ADDED"


def test_a_compacted_version_is_gone(fake: FakeApiServer, http: httpx.Client) -> None:
    old = fake.apply(_service("a"))["metadata"]["resourceVersion"]
    fake.apply(_service("b"))
    fake.compact()
    [event] = _events(http, "/api/v1/services", resourceVersion=old)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    fake.expired_as_http_status = True
    response = http.get("/api/v1/services", params={"watch": "1", "resourceVersion": old})
    assert response.status_code == 410


def test_bookmarks_only_when_asked(fake: FakeApiServer, http: httpx.Client) -> None:
    since = fake.apply(_service("a"))["metadata"]["resourceVersion"]
    latest = fake.apply(_service("b"))["metadata"]["resourceVersion"]  # not a pod
    fake.bookmark()
    plain = _events(http, "/api/v1/pods", resourceVersion=since, timeoutSeconds="1")
    asked = _events(
        http, "/api/v1/pods", resourceVersion=since, timeoutSeconds="1",
        allowWatchBookmarks="true",
    )  # fmt: skip
    assert plain == []
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in asked] == [
        ("BOOKMARK", latest)  # the pods' watcher may resume from here
    ]


def test_credentials_and_unknown_resources(fake: FakeApiServer, http: httpx.Client) -> None:
    assert httpx.get(f"{fake.url}/api/v1/pods").status_code == 401
    missing = http.get("/apis/example.com/v1/widgets")
    assert missing.status_code == 404
    assert missing.json()["kind"] == "Status"


def test_down_means_refused_and_up_keeps_the_data(fake: FakeApiServer) -> None:
    fake.apply(_service("a"))
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.url}/api/v1/services", headers=AUTH)
    fake.start()
    items = httpx.get(f"{fake.url}/api/v1/services", headers=AUTH).json()["items"]
    assert [i["metadata"]["name"] for i in items] == ["a"]
