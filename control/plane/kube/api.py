"""List and watch calls to the Kubernetes API, over the `kubernetes` client's `ApiClient`.

The ApiClient owns the server address, TLS and credentials (including the refresh of rotated
service-account tokens), so this module only builds paths, reads bodies and classifies failures.
Watches are read as newline-delimited JSON straight from the socket (`read1`: whatever has
arrived), so an event is seen as soon as its line is complete. Every call blocks: callers run
them in threads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import urllib3

from control.config.loader import LoadError, parse_json
from control.plane.kube.lazy import api_exception

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

_READ_SIZE = 64 * 1024
_MAX_LINE = 64 * 1024 * 1024  # one event (a huge object) may be big, but not unbounded


class KubeApiError(Exception):
    """A failed call. `status` is the HTTP status, or the `code` of a watch ERROR event;
    0 when the server was not reached or its answer was unreadable."""

    def __init__(self, status: int, message: str, *, stream_broken: bool = False) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.stream_broken = stream_broken  # a watch that was flowing and then cut off

    @property
    def gone(self) -> bool:
        """410: the resourceVersion (or continue token) is compacted away; relist."""
        return self.status == 410


def _status_message(body: bytes, status: int, reason: str) -> str:
    """The `message` of a Kubernetes Status body, or the HTTP reason when there is none."""
    try:
        parsed = parse_json(body)
    except LoadError:
        parsed = None
    if isinstance(parsed, Mapping) and isinstance(parsed.get("message"), str):
        return str(parsed["message"])
    return reason or f"status {status}"


class WatchStream:
    """One open watch: iterate for events (dicts with `type` and `object`). `interrupt()` may be
    called from another thread to end a blocked read (the owner then sees the stream end)."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._lock = threading.Lock()
        self._closed = False
        self.events_seen = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        buffer = bytearray()  # grows in place: a big event arrives in many reads
        while True:
            try:
                data = self._response.read1(_READ_SIZE)
            except (urllib3.exceptions.HTTPError, OSError) as error:
                raise KubeApiError(0, f"watch stream broken: {error}", stream_broken=True) from None
            if not data:
                if buffer.strip():
                    raise KubeApiError(0, "watch stream ended inside an event", stream_broken=True)
                return
            buffer += data
            if len(buffer) > _MAX_LINE:
                raise KubeApiError(0, "watch event larger than 64 MiB")
            if b"\n" not in data:
                continue
            *lines, rest = buffer.split(b"\n")
            buffer = bytearray(rest)
            for line in lines:
                if line.strip():
                    self.events_seen += 1
                    yield _parse_event(line)

    def interrupt(self) -> None:
        with self._lock:
            if self._closed:
                return
            # ValueError/RuntimeError: released or never connected, so nothing is blocked on it.
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                self._response.shutdown()

    def close(self) -> None:
        """Drop the connection (a half-read stream cannot go back to the pool)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._response.close()
        self._response.release_conn()


def _parse_event(line: bytes | bytearray) -> dict[str, Any]:
    try:
        event = parse_json(bytes(line))
    except LoadError:
        raise KubeApiError(0, "malformed watch event (not JSON)") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("object"), dict)
    ):
        raise KubeApiError(0, "malformed watch event (needs a type and an object)")
    return event


class KubeApi:
    """Blocking list and watch requests with the client's credentials and timeouts."""

    def __init__(self, client: ApiClient, connect_timeout: float, list_timeout: float) -> None:
        self.client = client
        self.connect_timeout = connect_timeout
        self.list_timeout = list_timeout

    @property
    def host(self) -> str:
        return str(self.client.configuration.host)

    def _open(
        self, path: str, params: list[tuple[str, str]], read_timeout: float
    ) -> urllib3.BaseHTTPResponse:
        try:
            method, url, headers, _, _ = self.client.param_serialize(
                method="GET",
                resource_path=path,
                query_params=params,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            rest = self.client.call_api(
                method, url, header_params=headers,
                _request_timeout=(self.connect_timeout, read_timeout),
            )  # fmt: skip
        except api_exception() as error:  # the client reports TLS failures this way
            raise KubeApiError(0, f"{self.host}: {error.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeApiError(0, f"{self.host} unreachable: {_short(error)}") from None
        response: urllib3.BaseHTTPResponse = rest.response
        if response.status != 200:
            try:
                body = response.read(64 * 1024)
            except (urllib3.exceptions.HTTPError, OSError):
                body = b""
            finally:
                response.close()
                response.release_conn()
            message = _status_message(body, response.status, response.reason or "")
            raise KubeApiError(response.status, f"GET {path}: {message}")
        return response

    def list_page(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """One page of a list (`limit`/`continue` in `params`): the parsed List object."""
        response = self._open(path, params, self.list_timeout)
        try:
            body = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeApiError(0, f"GET {path}: reading the list failed: {_short(error)}") from None
        finally:
            response.release_conn()
        try:
            parsed = parse_json(body)
        except LoadError:
            raise KubeApiError(0, f"GET {path}: the list is not JSON") from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("metadata"), dict):
            raise KubeApiError(0, f"GET {path}: not a Kubernetes List")
        if not isinstance(parsed.get("items") or [], list):
            raise KubeApiError(0, f"GET {path}: items must be a list")
        return parsed

    def watch(self, path: str, params: list[tuple[str, str]], read_timeout: float) -> WatchStream:
        """Open a watch (`watch=true` is added). `read_timeout` guards against a half-open
        connection: it must exceed the server's `timeoutSeconds` and bookmark period."""
        return WatchStream(self._open(path, [("watch", "true"), *params], read_timeout))


def _short(error: BaseException) -> str:
    """urllib3 nests the cause in long reprs; the innermost reason reads best."""
    reason = getattr(error, "reason", None)
    return str(reason or error)
