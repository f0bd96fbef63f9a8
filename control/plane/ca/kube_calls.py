"""The few Kubernetes calls the CA makes (Secrets, TokenReview), as JSON over the `kubernetes`
client's `ApiClient` (which owns the address, TLS and credentials). Blocking: callers run them
off the event loop. Every failure is a `KubeCallError`; status 0 means not reached."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import urllib3

from control.plane.kube.lazy import api_exception

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024


class KubeCallError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


class KubeJson:
    def __init__(self, client: ApiClient, connect_timeout: float = 2, read_timeout: float = 10):
        self.client = client
        self.timeout = (connect_timeout, read_timeout)

    @property
    def host(self) -> str:
        return str(self.client.configuration.host)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The response object of a 2xx answer; raises KubeCallError otherwise."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            method, url, header_params, serialized, _ = self.client.param_serialize(
                method=method, resource_path=path, header_params=headers, body=body,
                auth_settings=["BearerToken"],
            )  # fmt: skip
            rest = self.client.call_api(
                method, url, header_params=header_params, body=serialized,
                _request_timeout=self.timeout,
            )  # fmt: skip
        except api_exception() as error:  # TLS failures surface this way
            raise KubeCallError(0, f"{self.host}: {error.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeCallError(0, f"{self.host} unreachable: {_reason(error)}") from None
        response: urllib3.BaseHTTPResponse = rest.response
        try:
            data = response.read(MAX_RESPONSE_BYTES + 1)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeCallError(0, f"{method} {path}: reading failed: {_reason(error)}") from None
        finally:
            response.release_conn()
        if len(data) > MAX_RESPONSE_BYTES:
            raise KubeCallError(0, f"{method} {path}: response larger than {MAX_RESPONSE_BYTES}")
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = None
        if not 200 <= response.status < 300:
            message = parsed.get("message") if isinstance(parsed, dict) else None
            raise KubeCallError(response.status, str(message or response.reason or "failed"))
        if not isinstance(parsed, dict):
            raise KubeCallError(0, f"{method} {path}: the answer is not a JSON object")
        return parsed


def _reason(error: BaseException) -> str:
    return str(getattr(error, "reason", None) or error)
