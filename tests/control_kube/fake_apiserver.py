"""A small, honest stand-in for kube-apiserver over HTTP, for tests (no real one runs here).

It does what the source relies on, the way the real server does it:
- one global resourceVersion counter, bumped by every write, stamped on the object;
- lists (cluster-wide or per namespace) as a `<Kind>List` with `metadata.resourceVersion`,
  paginated with `limit`/`continue` from a consistent snapshot; items of built-in kinds carry no
  apiVersion/kind (as the real server's are), custom resources do;
- watches (`?watch=true&resourceVersion=N`) as chunked newline-delimited JSON events: the history
  after N, then live events; no version (or "0") starts with synthetic ADDED events; BOOKMARKs
  when asked for; `timeoutSeconds` ends the stream cleanly;
- a version older than the compaction point gets an ERROR event with a 410 Status (Expired), or an
  HTTP 410, as configured; an unknown resource a 404 Status; a wrong bearer token a 401;
- single objects: GET by name (404 NotFound), POST to create (201; 409 AlreadyExists when the
  name is taken, as a second replica's create gets), for any served kind (`SECRETS` for the CA);
- TokenReview (`POST /apis/authentication.k8s.io/v1/tokenreviews`), with tokens issued by the
  test (`fake.tokens`, see `fake_tokens.py`: audiences and `authenticated` as the real API).

The test drives it: `apply`/`delete` objects, `force_gone` (compact, and end every open watch with a
410 ERROR event), `drop_watches` (cut streams mid-flight, no final chunk), `stop`/`start` (the
server goes down, the port refuses, and comes back with its data).
"""

from __future__ import annotations

import bisect
import copy
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.control_kube.fake_http import Handler, Server, cut, status
from tests.control_kube.fake_tokens import FakeTokenAuthority
from tests.control_kube.fake_writes import FakeWrites


@dataclass(frozen=True, slots=True)
class FakeResource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def builtin(self) -> bool:
        return not self.group.endswith(".istio.io")


MESH = [
    ("networking.istio.io", "virtualservices", "VirtualService"),
    ("networking.istio.io", "destinationrules", "DestinationRule"),
    ("networking.istio.io", "serviceentries", "ServiceEntry"),
    ("networking.istio.io", "sidecars", "Sidecar"),
    ("security.istio.io", "peerauthentications", "PeerAuthentication"),
    ("security.istio.io", "authorizationpolicies", "AuthorizationPolicy"),
    ("security.istio.io", "requestauthentications", "RequestAuthentication"),
]
DEFAULT_RESOURCES = (
    FakeResource("", "v1", "namespaces", "Namespace", namespaced=False),
    FakeResource("", "v1", "services", "Service"),
    FakeResource("", "v1", "pods", "Pod"),
    FakeResource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    *(FakeResource(group, "v1", plural, kind) for group, plural, kind in MESH),
)
SECRETS = FakeResource("", "v1", "secrets", "Secret")


@dataclass(slots=True, eq=False)  # each watcher is itself (hashable by identity)
class Watcher:
    ending: str | None = None  # "drop" (cut the connection) or "gone" (410 ERROR event)


@dataclass(slots=True)
class _Event:
    version: int
    resource: FakeResource | None  # None: a bookmark, for every watcher
    type: str
    obj: dict[str, Any]


@dataclass(slots=True)
class _Counters:
    lists: dict[str, int] = field(default_factory=dict)
    watches: dict[str, int] = field(default_factory=dict)
    not_found: int = 0  # requests for a path the fake does not serve


class FakeApiServer(FakeWrites):  # the writes (create, apply, ...) live in fake_writes.py
    def __init__(
        self,
        resources: tuple[FakeResource, ...] = DEFAULT_RESOURCES,
        token: str | None = None,
        expired_as_http_status: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.resources = resources
        self.token = token
        self.tls = tls  # serve HTTPS with this context, as a real API server does
        self.expired_as_http_status = expired_as_http_status
        self.counters = _Counters()
        self._changed = threading.Condition()
        self._version = 1000
        self._objects: dict[FakeResource, dict[tuple[str, str], dict[str, Any]]] = {
            r: {} for r in resources
        }
        self._history: list[_Event] = []
        self._compacted = 0  # watches from a version below this get 410 (events are lost)
        self.failing: dict[str, int] = {}  # plural -> HTTP status to answer with (a sick server)
        self._snapshots: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._tokens = itertools.count(1)
        self.tokens = FakeTokenAuthority()
        self._watchers: set[Watcher] = set()
        self._connections: set[socket.socket] = set()
        self._server: Server | None = None
        self._up = False
        self._thread: threading.Thread | None = None
        self.port = 0
        self._writes_init()

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The newest resourceVersion (what the last write was stamped with)."""
        with self._changed:
            return self._version

    @property
    def compacted_at(self) -> int:
        with self._changed:
            return self._compacted

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on the same port as before after a `stop`)."""
        server = Server(("127.0.0.1", self.port), Handler)
        server.fake = self
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        with self._changed:
            self._up = True
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Go down: stop listening, cut every open connection. The data stays (it is etcd's)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._end_watches("drop")
        with self._changed:
            self._up = False
            connections, self._connections = set(self._connections), set()
        for connection in connections:
            cut(connection)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeApiServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the test's hands -------------------------------------------------------------------

    def install(self, resource: FakeResource) -> None:
        """Start serving a kind (a CRD being installed)."""
        with self._changed:
            self.resources = (*self.resources, resource)
            self._objects.setdefault(resource, {})

    def _resource_of(self, api_version: str, kind: str) -> FakeResource:
        for resource in self.resources:
            if resource.api_version == api_version and resource.kind == kind:
                return resource
        raise KeyError(f"the fake does not serve {api_version} {kind}")

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object; returns it as stored (with its resourceVersion)."""
        resource = self._resource_of(obj["apiVersion"], obj["kind"])
        stored = copy.deepcopy(obj)
        metadata = stored.setdefault("metadata", {})
        if resource.namespaced:
            metadata.setdefault("namespace", "default")
        else:
            metadata.pop("namespace", None)
        key = (metadata.get("namespace", ""), metadata["name"])
        with self._changed:
            old = self._objects[resource].get(key)
            self._version += 1
            metadata["resourceVersion"] = str(self._version)
            metadata["uid"] = old["metadata"]["uid"] if old else f"uid-{self._version}"
            metadata["managedFields"] = [{"manager": "fake", "operation": "Update"}]
            self._objects[resource][key] = stored
            self._record(resource, "MODIFIED" if old else "ADDED", stored)
        return copy.deepcopy(stored)

    def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> None:
        resource = self._resource_of(api_version, kind)
        key = (namespace or ("default" if resource.namespaced else ""), name)
        with self._changed:
            obj = self._objects[resource].pop(key)
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self._record(resource, "DELETED", obj)

    def _record(self, resource: FakeResource | None, kind: str, obj: dict[str, Any]) -> None:
        self._history.append(_Event(self._version, resource, kind, copy.deepcopy(obj)))
        self._changed.notify_all()

    def bookmark(self) -> None:
        """Tell watchers (that asked for bookmarks) the current version, without a change."""
        with self._changed:
            obj = {"metadata": {"resourceVersion": str(self._version)}}
            self._record(None, "BOOKMARK", obj)

    def compact(self) -> None:
        """Forget history up to now, as etcd compaction does: a watch from an older version
        than the current one gets 410 (a watch from the current one misses nothing)."""
        with self._changed:
            self._compacted = self._version
            self._snapshots.clear()

    def force_gone(self) -> None:
        """Compact and end every open watch with an ERROR 410 event."""
        self.compact()
        self._end_watches("gone")

    def drop_watches(self) -> None:
        """Cut every open watch stream mid-flight (no final chunk), as a broken proxy would."""
        self._end_watches("drop")

    def break_watches(self, how: str) -> None:
        """End every open watch badly: "garbage" (a line that is not JSON) or "error-500" (an
        ERROR event with an internal-error Status), as a sick server or proxy might."""
        assert how in ("garbage", "error-500")
        self._end_watches(how)

    def _end_watches(self, how: str) -> None:
        with self._changed:
            for watcher in self._watchers:
                watcher.ending = how
            self._changed.notify_all()

    def open_watches(self) -> int:
        with self._changed:
            return len(self._watchers)

    def objects(self, plural: str) -> list[dict[str, Any]]:
        with self._changed:
            for resource, objects in self._objects.items():
                if resource.plural == plural:
                    return [copy.deepcopy(o) for _, o in sorted(objects.items())]
        raise KeyError(plural)

    # -- serving (called by the handler threads) --------------------------------------------

    def route(self, path: str) -> tuple[FakeResource, str] | None:
        """The resource and namespace ("" for all) a list/watch path names, or None."""
        parts = [p for p in path.split("/") if p]
        namespace = ""
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if len(rest) == 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if len(rest) != 1:
            return None
        for resource in self.resources:
            if (resource.group, resource.version, resource.plural) == (group, version, rest[0]):
                if namespace and not resource.namespaced:
                    return None
                return resource, namespace
        return None

    def note_not_found(self) -> None:
        with self._changed:
            self.counters.not_found += 1

    def list_page(
        self, resource: FakeResource, namespace: str, limit: int, token: str,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        with self._changed:
            self.counters.lists[resource.plural] = self.counters.lists.get(resource.plural, 0) + 1
            if token:
                if token.split(":")[0] not in self._snapshots:
                    message = "The provided continue parameter is too old."
                    return 410, status(410, "Expired", message)
                snapshot_id, offset_text = token.split(":")
                version, items = self._snapshots[snapshot_id]
                offset = int(offset_text)
            else:
                version, offset = self._version, 0
                items = [copy.deepcopy(obj) for key, obj in sorted(self._objects[resource].items())
                         if (not namespace or key[0] == namespace)
                         and (keep is None or keep(obj))]  # fmt: skip
                snapshot_id = str(next(self._tokens))
            end = offset + limit if limit else len(items)
            metadata: dict[str, Any] = {"resourceVersion": str(version)}
            if end < len(items):
                self._snapshots[snapshot_id] = (version, items)
                metadata["continue"] = f"{snapshot_id}:{end}"
        page = [self._as_list_item(resource, obj) for obj in items[offset:end]]
        return 200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                     "metadata": metadata, "items": page}  # fmt: skip

    @staticmethod
    def _as_list_item(resource: FakeResource, obj: dict[str, Any]) -> dict[str, Any]:
        if not resource.builtin:
            return obj
        return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}

    def watch_start(
        self, resource: FakeResource, since: str
    ) -> tuple[Watcher | None, int, list[dict[str, Any]]]:
        """Register a watcher: (watcher, history cursor, synthetic events), or (None, 410, [])."""
        with self._changed:
            self.counters.watches[resource.plural] = (
                self.counters.watches.get(resource.plural, 0) + 1
            )
            synthetic: list[dict[str, Any]] = []
            if since in ("", "0"):
                start = self._version
                synthetic = [{"type": "ADDED", "object": copy.deepcopy(o)}
                             for _, o in sorted(self._objects[resource].items())]  # fmt: skip
            elif int(since) < self._compacted:
                return None, 410, []
            else:
                start = int(since)
            cursor = bisect.bisect_right([e.version for e in self._history], start)
            watcher = Watcher()
            self._watchers.add(watcher)
            return watcher, cursor, synthetic

    def watch_next(
        self, watcher: Watcher, resource: FakeResource, namespace: str, cursor: int,
        deadline: float, bookmarks: bool, client_gone: Callable[[], bool],
    ) -> tuple[int, list[dict[str, Any]], str | None]:  # fmt: skip
        """Wait for events after `cursor`: (new cursor, events, ending or "timeout" or None).
        Like Go's HTTP server, notice a client that hung up even when there is nothing to send."""
        with self._changed:
            while True:
                if watcher.ending:
                    return cursor, [], watcher.ending
                events = []
                for event in self._history[cursor:]:
                    if event.resource is None and bookmarks:
                        events.append({"type": "BOOKMARK", "object": {
                            "apiVersion": resource.api_version, "kind": resource.kind,
                            **copy.deepcopy(event.obj)}})  # fmt: skip
                    elif event.resource == resource and (
                        not namespace or event.obj["metadata"].get("namespace") == namespace
                    ):
                        events.append({"type": event.type, "object": copy.deepcopy(event.obj)})
                cursor = len(self._history)
                if events:
                    return cursor, events, None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return cursor, [], "timeout"
                if client_gone():
                    return cursor, [], "client-gone"
                self._changed.wait(min(remaining, 0.05))

    def watch_end(self, watcher: Watcher) -> None:
        with self._changed:
            self._watchers.discard(watcher)

    def track(self, connection: socket.socket, opened: bool) -> None:
        with self._changed:
            if opened and not self._up:
                cut(connection)  # accepted in the instant the server went down
            elif opened:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)
