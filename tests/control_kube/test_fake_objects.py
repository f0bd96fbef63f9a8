"""The fake API server's single objects and TokenReview, checked with a plain HTTP client
against what kube-apiserver answers, so the CA's Kubernetes tests rest on honest behaviour."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.control_kube.conftest import TOKEN
from tests.control_kube.fake_apiserver import DEFAULT_RESOURCES, SECRETS, FakeApiServer

AUTH = {"Authorization": f"Bearer {TOKEN}"}
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(resources=(*DEFAULT_RESOURCES, SECRETS), token=TOKEN) as server:
        yield server


@pytest.fixture
def http(fake: FakeApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, headers=AUTH, timeout=5) as client:
        yield client


def _review(
    http: httpx.Client, token: str, audiences: list[str] | None = None
) -> dict[str, object]:
    spec: dict[str, object] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    response = http.post(REVIEWS, json={"apiVersion": "authentication.k8s.io/v1",
                                        "kind": "TokenReview", "spec": spec})  # fmt: skip
    assert response.status_code == 201  # a review is created, whatever its verdict
    body = response.json()
    assert body["kind"] == "TokenReview"
    status = body["status"]
    assert isinstance(status, dict)
    return status


def test_token_review_models_audiences_and_authenticated(
    fake: FakeApiServer, http: httpx.Client
) -> None:
    token = fake.tokens.issue("shop", "web", audiences=("mizzen-ca", "vault"))
    ok = _review(http, token, ["other", "mizzen-ca"])
    assert ok["authenticated"] is True
    assert ok["audiences"] == ["mizzen-ca"]  # the intersection, in the requested order
    assert ok["user"] == {
        "username": "system:serviceaccount:shop:web",
        "uid": "uid-shop-web",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:shop",
                   "system:authenticated"],
    }  # fmt: skip
    wrong = _review(http, token, ["istio-ca"])
    assert wrong["authenticated"] is False
    assert "invalid for the target audiences" in str(wrong["error"])
    assert _review(http, token)["authenticated"] is False  # default: the API server's audience
    api_token = fake.tokens.issue("shop", "web")
    assert _review(http, api_token)["authenticated"] is True
    assert _review(http, "garbage", ["mizzen-ca"])["authenticated"] is False
    fake.tokens.revoke(token)
    assert _review(http, token, ["mizzen-ca"])["authenticated"] is False


def test_token_review_needs_the_callers_own_credentials(fake: FakeApiServer) -> None:
    with httpx.Client(base_url=fake.url, timeout=5) as anonymous:
        assert anonymous.post(REVIEWS, json={"spec": {"token": "x"}}).status_code == 401


def test_objects_are_created_once_and_read_by_name(http: httpx.Client) -> None:
    path = "/api/v1/namespaces/mizzen-system/secrets"
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mizzen-ca"},
            "data": {"a": "Yg=="}}  # fmt: skip
    missing = http.get(f"{path}/mizzen-ca")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound"
    created = http.post(path, json=body)
    assert created.status_code == 201
    assert created.json()["metadata"]["namespace"] == "mizzen-system"
    again = http.post(path, json=body)
    assert again.status_code == 409
    assert again.json()["reason"] == "AlreadyExists"
    read = http.get(f"{path}/mizzen-ca").json()
    assert read["data"] == {"a": "Yg=="}
    assert read["metadata"]["resourceVersion"]
    assert http.post(path, json={"kind": "Secret", "metadata": {}}).status_code == 422
