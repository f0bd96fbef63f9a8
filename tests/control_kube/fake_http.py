"""The HTTP side of the fake API server: routes list and watch requests to `FakeApiServer`,
writes lists as JSON and watches as chunked newline-delimited events, ends streams the way the
test asked (cleanly, with an ERROR event, or cut)."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from tests.control_kube.fake_apiserver import FakeApiServer, FakeResource, Watcher


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


def cut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        connection.shutdown(socket.SHUT_RDWR)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128  # a dozen watches connect at once
    fake: FakeApiServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's server
        self.server.fake.track(self.connection, True)

    def finish(self) -> None:
        self.server.fake.track(self.connection, False)
        with contextlib.suppress(OSError):  # the peer is gone; nothing left to flush
            super().finish()

    def _send_json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        fake = self.server.fake
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        # The scheme is case-insensitive, as the API server's bearer authenticator reads it (the
        # in-cluster loader sends "bearer").
        if fake.token is not None and (scheme.lower() != "bearer" or token.strip() != fake.token):
            self._send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return False
        return True

    def _token_review(self) -> None:
        """POST of a TokenReview (`fake_tokens`): authenticated like any call, and noted."""
        fake = self.server.fake
        fake.note_request("POST", urlsplit(self.path).path, {})
        if not self._authorized():
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > 3 * 1024 * 1024:
            self._send_json(413, status(413, "RequestEntityTooLarge", "request is too large"))
            return
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._send_json(400, status(400, "BadRequest", "the body is not JSON"))
            return
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/apis/authentication.k8s.io/v1/tokenreviews":
            if "tokenreviews" in fake.failing:
                code = fake.failing["tokenreviews"]
                self._send_json(code, status(code, "InternalError", "the fake was told to fail"))
                return
            spec = body.get("spec") if isinstance(body, dict) else None
            review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                      "metadata": {"creationTimestamp": None}, "spec": spec or {},
                      "status": fake.tokens.review(spec)}  # fmt: skip
            self._send_json(201, review)
            return
        self._send_json(404, status(404, "NotFound", "the server could not find it"))

    def do_GET(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if fake.route_object(url.path) is not None:  # one object: the write side serves it
            self._write("GET")
            return
        fake.note_request("GET", url.path, query)
        if not self._authorized():
            return
        routed = fake.route(url.path)
        if routed is None:
            fake.note_not_found()
            message = "the server could not find the requested resource"
            self._send_json(404, status(404, "NotFound", message))
            return
        resource, namespace = routed
        if resource.plural in fake.failing:
            code = fake.failing[resource.plural]
            self._send_json(code, status(code, "InternalError", "the fake was told to fail"))
            return
        if query.get("watch") in ("1", "true"):
            self._watch(resource, namespace, query)
            return
        from tests.control_kube.fake_write_http import selector_of
        from tests.control_kube.fake_writes import WriteError

        try:
            keep = selector_of(query)
        except WriteError as error:
            self._send_json(error.code, status(error.code, error.reason, error.message))
            return
        code, body = fake.list_page(
            resource, namespace, int(query.get("limit") or 0), query.get("continue", ""), keep
        )
        self._send_json(code, body)

    # -- writes (fake_writes.py) -------------------------------------------------------------

    def _write(self, method: str) -> None:
        from tests.control_kube.fake_write_http import serve_write

        serve_write(self, method)

    def do_POST(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/apis/authentication.k8s.io/v1/tokenreviews":
            self._token_review()
        else:
            self._write("POST")

    def do_PUT(self) -> None:
        self._write("PUT")

    def do_PATCH(self) -> None:
        self._write("PATCH")

    def do_DELETE(self) -> None:
        self._write("DELETE")

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _event(self, event: dict[str, Any]) -> None:
        self._chunk(json.dumps(event).encode() + b"\n")

    def _watch(self, resource: FakeResource, namespace: str, query: dict[str, str]) -> None:
        from tests.control_kube.fake_write_http import selector_of
        from tests.control_kube.fake_writes import WriteError

        fake = self.server.fake
        try:
            keep = selector_of(query)
        except WriteError as error:
            self._send_json(error.code, status(error.code, error.reason, error.message))
            return
        since = query.get("resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            self._send_json(400, status(400, "BadRequest", f"invalid resourceVersion {since!r}"))
            return
        watcher, cursor, synthetic = fake.watch_start(resource, since)
        too_old = status(410, "Expired", f"too old resource version: {since} ({fake.compacted_at})")
        if watcher is None and fake.expired_as_http_status:
            self._send_json(410, too_old)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if watcher is None:
                self._event({"type": "ERROR", "object": too_old})
                self._chunk(b"")
                return
            self._stream(watcher, resource, namespace, cursor, synthetic, query, keep)
        except OSError:
            self.close_connection = True  # the client went away
        finally:
            if watcher is not None:
                fake.watch_end(watcher)

    def _stream(
        self, watcher: Watcher, resource: FakeResource, namespace: str, cursor: int,
        synthetic: list[dict[str, Any]], query: dict[str, str],
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:  # fmt: skip
        """Events as the real server sends them: those of objects the selectors pick."""
        fake = self.server.fake

        def wanted(event: dict[str, Any]) -> bool:
            return keep is None or event["type"] in ("BOOKMARK", "ERROR") or keep(event["object"])

        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        for event in filter(wanted, synthetic):
            self._event(event)
        while True:
            cursor, events, ending = fake.watch_next(
                watcher, resource, namespace, cursor, deadline, bookmarks, self._client_gone
            )
            for event in filter(wanted, events):
                self._event(event)
            if ending == "client-gone":
                self.close_connection = True
                return
            if ending == "drop":
                self.close_connection = True
                cut(self.connection)
                return
            if ending == "gone":
                message = "too old resource version: the watch cache was reset"
                self._event({"type": "ERROR", "object": status(410, "Expired", message)})
            elif ending == "error-500":
                error = status(500, "InternalError", "etcdserver: request timed out")
                self._event({"type": "ERROR", "object": error})
            elif ending == "garbage":
                self._chunk(b'{"type": "ADDED", "object": {tru\n')
            if ending:
                self._chunk(b"")
                return
