"""The bad-input catalogue: every way a request can fail to be a usable AdmissionReview, each
answered with its 4xx (or, once the review can be answered, HTTP 200 `allowed: false`). Run
in-process and again against the real server over TLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from tests.webhook.conftest import RunningServer
from tests.webhook.samples import body, pod_review

MIB = 1024 * 1024
VALID = body(pod_review())


def with_request(**changes: Any) -> bytes:
    document = pod_review()
    document["request"].update(changes)
    return body(document)


def without(*path: str) -> bytes:
    document: Any = pod_review()
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body(document)


def swap(old: bytes, new: bytes) -> bytes:
    assert old in VALID
    return VALID.replace(old, new)


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def async_chunks(data: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks(data):
        yield chunk


class Case(NamedTuple):
    name: str
    content: bytes
    content_type: str | None
    status: int
    says: str
    chunked: bool = False


JSON = "application/json"
DRY = b'"dryRun": false'
OVER = "over the 6291456-byte limit"
CATALOGUE = [
    Case("no-content-type", VALID, None, 415, "missing Content-Type"),
    Case("text-plain", VALID, "text/plain", 415, "is not application/json"),
    Case("yaml", VALID, "application/yaml", 415, "is not application/json"),
    Case("json-with-charset", VALID, "application/json; charset=utf-8", 200, '"allowed":true'),
    Case("empty", b"", JSON, 400, "empty body"),
    Case("not-json", b"hello, webhook", JSON, 400, "not valid JSON"),
    Case("truncated", VALID[: len(VALID) // 2], JSON, 400, "not valid JSON"),
    Case("trailing-garbage", VALID + b" {}", JSON, 400, "Extra data"),
    Case("nested-deeply", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "nested too deeply"),
    Case("nested-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON, 400, "nested too"),
    Case("nan", swap(DRY, b'"dryRun": NaN'), JSON, 400, "NaN"),
    Case("infinity", swap(DRY, b'"x": Infinity'), JSON, 400, "Infinity"),
    Case("-infinity", swap(DRY, b'"x": -Infinity'), JSON, 400, "Infinity"),
    Case("float-overflow", swap(DRY, b'"x": 1e999'), JSON, 400, "out of range"),
    Case("huge-integer", swap(DRY, b'"x": ' + b"7" * 5000), JSON, 400, "4300 digits"),
    Case("not-utf8", b'{"kind": "\xff\xfe"}', JSON, 400, "not usable JSON"),
    Case("array", b"[]", JSON, 400, "JSON array, not an AdmissionReview"),
    Case("string", b'"AdmissionReview"', JSON, 400, "JSON string"),
    Case("null", b"null", JSON, 400, "JSON null"),
    Case("number", b"42", JSON, 400, "JSON number"),
    Case("wrong-kind", swap(b'"AdmissionReview"', b'"Pod"'), JSON, 400, "kind must be Admission"),
    Case("no-kind", without("kind"), JSON, 400, "kind must be AdmissionReview"),
    Case("v1beta1", swap(b"k8s.io/v1", b"k8s.io/v1beta1"), JSON, 400, "apiVersion must be"),
    Case("no-request", without("request"), JSON, 400, "request: missing"),
    Case("request-null", body({**pod_review(), "request": None}), JSON, 400, "request: missing"),
    Case("no-uid", without("request", "uid"), JSON, 400, "request.uid"),
    Case("empty-uid", with_request(uid=""), JSON, 400, "request.uid"),
    Case("uid-number", with_request(uid=7), JSON, 400, "request.uid"),
    Case("over-6MiB", b" " * (6 * MIB) + VALID, JSON, 413, OVER),
    Case("over-6MiB-chunked", b" " * (6 * MIB) + VALID, JSON, 413, OVER, chunked=True),
    Case("just-under-6MiB", b" " * (6 * MIB - len(VALID)) + VALID, JSON, 200, '"allowed":true'),
    Case("bad-object", with_request(object=[1, 2]), JSON, 200, '"allowed":false'),
    Case("bad-operation", with_request(operation={"op": 1}), JSON, 200, "request.operation"),
]  # fmt: skip


def _request_args(case: Case, asynchronous: bool = False) -> dict[str, Any]:
    headers = {} if case.content_type is None else {"content-type": case.content_type}
    content: Any = case.content
    if case.chunked:
        content = async_chunks(case.content) if asynchronous else chunks(case.content)
    return {"content": content, "headers": headers}


def _check(reply: httpx.Response, case: Case) -> None:
    assert reply.status_code == case.status, reply.text[:300]
    assert case.says in reply.text, reply.text[:300]
    assert "Traceback" not in reply.text


@pytest.mark.anyio
@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
async def test_in_process(client: httpx.AsyncClient, case: Case) -> None:
    reply = await client.post("/inject", **_request_args(case, asynchronous=True))
    _check(reply, case)


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
def test_over_tls(shared_server: RunningServer, case: Case) -> None:
    with httpx.Client(verify=shared_server.client_context(), timeout=10) as client:
        reply = client.post(f"{shared_server.url}/inject", **_request_args(case))
        _check(reply, case)
        # The connection, or a new one, still serves the next review.
        after = client.post(
            f"{shared_server.url}/inject", content=VALID, headers={"content-type": JSON}
        )
        assert after.status_code == 200
        assert after.json()["response"]["allowed"] is True


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/inject", 405), ("PUT", "/validate", 405), ("POST", "/nothing", 404),
     ("POST", "/healthz", 405)],
)  # fmt: skip
async def test_wrong_method_or_path(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    reply = await client.request(method, path, content=VALID, headers={"content-type": JSON})
    assert reply.status_code == status


@pytest.mark.anyio
@pytest.mark.parametrize(("length", "status"), [("lots", 400), ("-5", 400), ("9" * 5000, 413)])
async def test_a_false_content_length_is_refused(
    client: httpx.AsyncClient, length: str, status: int
) -> None:
    reply = await client.post(
        "/inject", content=VALID, headers={"content-type": JSON, "content-length": length}
    )
    assert reply.status_code == status


def test_the_validate_route_frames_alike(shared_server: RunningServer) -> None:
    with httpx.Client(verify=shared_server.client_context(), timeout=10) as client:
        reply = client.post(
            f"{shared_server.url}/validate", content=b"[", headers={"content-type": JSON}
        )
    assert reply.status_code == 400
    assert json.dumps("not valid JSON")[1:-1] in reply.text
