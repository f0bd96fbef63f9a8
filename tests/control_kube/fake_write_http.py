"""The HTTP side of the fake API server's writes: requests to `FakeWrites`' verbs, and the list
selectors (`labelSelector`, `fieldSelector`) the real server applies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.control_kube.fake_http import status
from tests.control_kube.fake_writes import WriteError

if TYPE_CHECKING:
    from tests.control_kube.fake_apiserver import FakeApiServer
    from tests.control_kube.fake_http import Handler


# -- list selectors ----------------------------------------------------------------------------


def selector_of(query: dict[str, str]) -> Callable[[dict[str, Any]], bool] | None:
    """`labelSelector` (k=v, k!=v, k, !k; ANDed) and `fieldSelector` (metadata.name,
    metadata.namespace), as the real server filters lists."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for term in filter(None, query.get("labelSelector", "").split(",")):
        tests.append(_label_test(term))
    for term in filter(None, query.get("fieldSelector", "").split(",")):
        field, _, value = term.partition("=")
        key = {"metadata.name": "name", "metadata.namespace": "namespace"}.get(field.rstrip("="))
        if key is None:
            raise WriteError(400, "BadRequest", f"field label not supported: {field}")
        value = value.lstrip("=")
        tests.append(lambda obj, k=key, v=value: obj["metadata"].get(k) == v)
    if not tests:
        return None
    return lambda obj: all(test(obj) for test in tests)


def _label_test(term: str) -> Callable[[dict[str, Any]], bool]:
    def labels(obj: dict[str, Any]) -> dict[str, str]:
        return dict(obj["metadata"].get("labels") or {})

    if "!=" in term:
        key, value = term.split("!=", 1)
        return lambda obj: labels(obj).get(key) != value
    if "=" in term:
        key, value = term.split("=", 1)
        value = value.lstrip("=")
        return lambda obj: labels(obj).get(key) == value
    if term.startswith("!"):
        return lambda obj: term[1:] not in labels(obj)
    return lambda obj: term in labels(obj)


# -- HTTP --------------------------------------------------------------------------------------


def serve_write(handler: Handler, method: str) -> None:
    """POST (create), PUT (replace), PATCH, DELETE and the GET of one object."""
    fake = handler.server.fake
    url = urlsplit(handler.path)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    fake.note_request(method, url.path, query)
    if fake.token is not None and handler.headers.get("Authorization") != f"Bearer {fake.token}":
        handler._send_json(401, status(401, "Unauthorized", "Unauthorized"))
        return
    try:
        code, answer = _dispatch(
            fake, method, url.path, query, body, handler.headers.get("Content-Type", "")
        )
    except WriteError as error:
        handler._send_json(error.code, status(error.code, error.reason, error.message))
        return
    handler._send_json(code, answer)


def _dispatch(
    fake: FakeApiServer,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    content_type: str,
) -> tuple[int, dict[str, Any]]:
    manager = query.get("fieldManager", "unknown")
    content_type = content_type.split(";")[0].strip()
    if method == "POST":
        routed = fake.route(path)
        if routed is None:
            raise WriteError(404, "NotFound", "the server could not find the requested resource")
        resource, namespace = routed
        if resource.namespaced and not namespace:
            raise WriteError(405, "MethodNotAllowed", "create needs a namespace in the path")
        return 201, fake.create_object(resource, namespace, _json(body), manager)
    routed_object = fake.route_object(path)
    if routed_object is None:
        raise WriteError(404, "NotFound", "the server could not find the requested resource")
    resource, namespace, name = routed_object
    if method == "GET":
        return 200, fake.get_object(resource, namespace, name)
    if method == "PUT":
        return 200, fake.replace_object(resource, namespace, name, _json(body), manager)
    if method == "PATCH":
        return fake.patch_object(resource, namespace, name, content_type, body, query)
    if method == "DELETE":
        return 200, fake.delete_object(resource, namespace, name)
    raise WriteError(405, "MethodNotAllowed", method)


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise WriteError(400, "BadRequest", "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise WriteError(400, "BadRequest", "the body is not an object")
    return parsed
