"""JSON requests to the Kubernetes API for the code that writes (the install, the leader's
duties), over the `kubernetes` client's `ApiClient`, which owns the address, TLS and credentials
(and refreshes a rotated service-account token). Objects stay dicts, as everywhere in mizzen.

Every call blocks (callers on an event loop use a thread) and is bounded: connect and read
timeouts, and at most `MAX_BODY` bytes read from an answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import urllib3

from control.plane.kube.lazy import api_exception

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

MAX_BODY: Final = 32 * 1024 * 1024
JSON: Final = "application/json"
JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"  # server-side apply (JSON is YAML)


class KubeError(Exception):
    """A failed call: `status` is the HTTP status (0: not reached, or an unreadable answer),
    `reason` the Status reason (`Conflict`, `AlreadyExists`, `NotFound`, ...)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        """409: AlreadyExists on create, Conflict on a stale update or an apply conflict."""
        return self.status == 409


def _short(text: str, limit: int = 300) -> str:
    """Untrusted text from the server, on one line and bounded, for messages and logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


class KubeRest:
    def __init__(
        self, client: ApiClient, connect_timeout: float = 10.0, read_timeout: float = 30.0
    ) -> None:
        self.client = client
        self.timeouts = (connect_timeout, read_timeout)

    @property
    def host(self) -> str:
        return str(self.client.configuration.host)

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
        content_type: str = JSON,
    ) -> dict[str, Any]:
        """One request; the answer's JSON object. Raises KubeError."""
        headers = {"Accept": JSON}
        if body is not None:  # the client writes it as JSON (which is also YAML, for apply)
            headers["Content-Type"] = content_type
        try:
            _, url, headers, _, _ = self.client.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query),
                header_params=headers,
                auth_settings=["BearerToken"],
            )
            rest = self.client.call_api(
                method, url, header_params=headers, body=body, _request_timeout=self.timeouts
            )
        except api_exception() as error:  # how the client reports TLS failures
            raise KubeError(0, "", f"{self.host}: {_short(str(error.reason))}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise KubeError(0, "", f"{self.host} unreachable: {_short(str(reason))}") from None
        response: urllib3.BaseHTTPResponse = rest.response
        try:
            raw = response.read(MAX_BODY + 1)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeError(0, "", f"{method} {path}: reading the answer: {error}") from None
        finally:
            response.release_conn()
        if len(raw) > MAX_BODY:
            raise KubeError(0, "", f"{method} {path}: answer larger than {MAX_BODY} bytes")
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = None
        if not 200 <= response.status < 300:
            reason, message = response.reason or "", f"status {response.status}"
            if isinstance(parsed, dict):
                reason = str(parsed.get("reason") or reason)
                message = str(parsed.get("message") or message)
            raise KubeError(response.status, reason, f"{method} {path}: {_short(message)}")
        if not isinstance(parsed, dict):
            raise KubeError(0, "", f"{method} {path}: the answer is not a JSON object")
        return parsed

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, or None when there is none."""
        try:
            return self.call("GET", path)
        except KubeError as error:
            if error.not_found:
                return None
            raise

    def list_items(self, path: str, query: Sequence[tuple[str, str]] = ()) -> list[dict[str, Any]]:
        """Every item of a list, all pages (items of built-in kinds lack apiVersion/kind)."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page_query = [*query, ("limit", "500")] + ([("continue", token)] if token else [])
            page = self.call("GET", path, query=page_query)
            found = page.get("items") or []
            if not isinstance(found, list):
                raise KubeError(0, "", f"GET {path}: items is not a list")
            items.extend(i for i in found if isinstance(i, dict))
            metadata = page.get("metadata")
            token = metadata.get("continue", "") if isinstance(metadata, dict) else ""
            if not token:
                return items
