"""List+watch of one kind into a store: Kubernetes' reflector pattern, in a thread.

The loop: list (all pages, one consistent resourceVersion), then watch from that version and
apply each event to the store; when a watch ends normally or is cut off, watch again from the
last version seen (nothing is lost: the server replays what came after it); on 410 Gone (the
version was compacted away), list again at once; on any other failure, back off and list again.

The store is replaced only by a list that succeeded, so a broken connection or an unreachable API
server never empties it: the control plane keeps serving the last state it knew, and a relist
after an outage brings in what changed meanwhile, deletions included (the new list lacks them).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from control.api import kinds
from control.plane.kube.api import KubeApi, KubeApiError, WatchStream
from control.plane.model.state import Document

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, "" for cluster-scoped kinds; name)


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A kind the source watches; `versions` are tried in order until the server serves one."""

    group: str  # "" for the core group
    versions: tuple[str, ...]
    plural: str
    kind: str
    # False: stored and kept current, but neither handed to `build_state` nor a reason to
    # rebuild (a kind the model does not read yet would only cost rebuilds that change nothing).
    feeds_model: bool = True
    # Only this namespace's objects ("": every namespace), and only those the field selector
    # picks (`metadata.name=<name>`: one Secret, never the rest of its namespace).
    namespace: str = ""
    field_selector: str = ""

    def path(self, version: str) -> str:
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        if not self.group:
            return f"/api/{version}{scope}/{self.plural}"
        return f"/apis/{self.group}/{version}{scope}/{self.plural}"

    def selectors(self) -> list[tuple[str, str]]:
        return [("fieldSelector", self.field_selector)] if self.field_selector else []

    @property
    def may_be_absent(self) -> bool:
        """Only kinds of an API group (CRDs, EndpointSlices on old clusters) can be unserved; a
        404 for a core kind is a broken path or proxy, never a reason to empty the store."""
        return bool(self.group)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def label(self) -> str:
        label = f"{self.plural}.{self.group}" if self.group else self.plural
        if self.namespace:
            label += f" in {self.namespace}"
        return f"{label} ({self.field_selector})" if self.field_selector else label


_MESH_PLURALS = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "ServiceEntry": "serviceentries",
    "Sidecar": "sidecars",
    "PeerAuthentication": "peerauthentications",
    "AuthorizationPolicy": "authorizationpolicies",
    "RequestAuthentication": "requestauthentications",
}


def _mesh_kinds() -> tuple[ResourceKind, ...]:
    """Istio's kinds, each tried at v1 first, then the older versions of the same schema."""
    return tuple(
        ResourceKind(group, kinds.VERSIONS[group], _MESH_PLURALS[kind], kind)
        for group, names in kinds.KINDS.items()
        for kind in names
    )


# What the control plane reads. The model derives a Service's endpoints from its selector and the
# pods (as the file source does); EndpointSlices give those of Services without a selector.
WATCHED_KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("", ("v1",), "namespaces", "Namespace"),
    ResourceKind("", ("v1",), "services", "Service"),
    ResourceKind("", ("v1",), "pods", "Pod"),
    ResourceKind("discovery.k8s.io", ("v1",), "endpointslices", "EndpointSlice"),
    *_mesh_kinds(),
)


class KubeSettings(BaseModel):
    """Timings of the Kubernetes source; the defaults suit a real cluster, tests shrink them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    page_size: int = Field(default=500, ge=1)
    # The server ends each watch after a random time in [watch_timeout, 2 x watch_timeout], as
    # client-go asks, so that many watchers do not reconnect in lockstep.
    watch_timeout: float = Field(default=300.0, ge=1)
    # A watch with no bytes for this much longer than its timeout is a half-open connection.
    read_slack: float = Field(default=60.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    list_timeout: float = Field(default=60.0, gt=0)
    backoff_initial: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=30.0, gt=0)
    # A kind the server does not serve (its CRD is not installed) is listed again this often.
    absent_retry: float = Field(default=60.0, gt=0)
    # How long `load()` keeps trying before it gives up with an error.
    sync_timeout: float = Field(default=60.0, gt=0)
    # Secrets watched at most (DestinationRule credentialName, each with its `-cacert`): one
    # watch each; a rule beyond is refused.
    max_secrets: int = Field(default=256, ge=2)


class Backoff:
    """Exponential delays with jitter, reset by a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2.0**self.failures)
        self.failures += 1
        return delay * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not cryptography

    def reset(self) -> None:
        self.failures = 0


def _normalise(item: Any, resource: ResourceKind, version: str) -> dict[str, Any] | None:
    """List items of built-in kinds carry no apiVersion/kind; add them. managedFields are
    dropped (large, never read). None for an item without a name (not a real object)."""
    if not isinstance(item, dict) or not isinstance(item.get("metadata"), dict):
        return None
    if not isinstance(item["metadata"].get("name"), str):
        return None
    obj = {"apiVersion": resource.api_version(version), "kind": resource.kind, **item}
    if "managedFields" in obj["metadata"]:
        obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return obj


def _key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj["metadata"]
    return (str(metadata.get("namespace") or ""), str(metadata["name"]))


def _version_of(obj: dict[str, Any]) -> str | None:
    value = obj["metadata"].get("resourceVersion")
    return value if isinstance(value, str) else None


class Reflector:
    """The store of one kind, kept current by a list+watch thread (`start`/`stop`)."""

    def __init__(self, api: KubeApi, resource: ResourceKind, settings: KubeSettings) -> None:
        self.api = api
        self.resource = resource
        self.settings = settings
        self._lock = threading.Lock()
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._version_index = 0
        self.resource_version: str | None = None  # None: the next step is a list
        self.synced = False  # a list has succeeded at least once
        self.served = True  # False while the server does not serve this kind (404)
        self._on_change: Callable[[], None] = lambda: None
        self._stopping = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> str:
        return self.resource.versions[self._version_index]

    def documents(self) -> list[Document]:
        """The stored objects as documents, sorted, each named by its API path."""
        with self._lock:
            items = sorted(self._objects.items())
        prefix = (
            ResourceKind(
                self.resource.group,
                self.resource.versions,
                self.resource.plural,
                self.resource.kind,
            )
            .path(self.version)
            .rsplit("/", 1)[0]
        )
        found = []
        for (namespace, name), obj in items:
            scope = f"/namespaces/{namespace}" if namespace else ""
            found.append(Document(f"{prefix}{scope}/{self.resource.plural}/{name}", obj))
        return found

    # -- listing ---------------------------------------------------------------------------

    def list_once(self) -> bool:
        """List every page; replace the store only when all pages arrived. True if the store
        changed. A kind that `may_be_absent` and is not served in any version lists as empty
        (its CRD is gone, and with it its objects). Raises KubeApiError."""
        for attempt in range(len(self.resource.versions)):
            index = (self._version_index + attempt) % len(self.resource.versions)
            try:
                objects, version = self._list_pages(self.resource.versions[index])
            except KubeApiError as error:
                if error.status == 404 and self.resource.may_be_absent:
                    continue
                raise
            self._version_index = index
            if not self.served:
                log.info("kubernetes: %s is served again (%s)", self.resource.label, version)
            self.served = True
            return self._replace(objects, version)
        if self.served:
            log.warning("kubernetes: the API server does not serve %s (CRD not installed?); "
                        "treated as empty", self.resource.label)  # fmt: skip
        self.served = False
        return self._replace({}, None)

    def _list_pages(self, version: str) -> tuple[dict[ObjectKey, dict[str, Any]], str]:
        path = self.resource.path(version)
        objects: dict[ObjectKey, dict[str, Any]] = {}
        token = ""
        while True:
            params = [("limit", str(self.settings.page_size)), *self.resource.selectors()]
            if token:
                params.append(("continue", token))
            page = self.api.list_page(path, params)
            for item in page.get("items") or []:
                obj = _normalise(item, self.resource, version)
                if obj is not None:
                    objects[_key(obj)] = obj
            metadata = page["metadata"]
            token = metadata.get("continue") or ""
            if not token:
                list_version = metadata.get("resourceVersion")
                if not isinstance(list_version, str) or not list_version:
                    raise KubeApiError(0, f"GET {path}: the list has no resourceVersion")
                return objects, list_version

    def _replace(self, objects: dict[ObjectKey, dict[str, Any]], version: str | None) -> bool:
        with self._lock:
            old = self._objects
            changed = old.keys() != objects.keys() or any(
                _version_of(obj) is None or _version_of(obj) != _version_of(old[key])
                for key, obj in objects.items()
            )
            self._objects = objects
            self.resource_version = version
            self.synced = True
        return changed

    # -- watching --------------------------------------------------------------------------

    def _watch_once(self) -> None:
        """One watch from `resource_version` until the server ends it; raises KubeApiError."""
        assert self.resource_version is not None
        timeout = self.settings.watch_timeout * random.uniform(1.0, 2.0)  # noqa: S311 - spread
        params = [
            ("resourceVersion", self.resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(int(timeout))),
            *self.resource.selectors(),
        ]
        stream = self.api.watch(
            self.resource.path(self.version), params, timeout + self.settings.read_slack
        )
        with self._stream_lock:
            self._stream = stream
        if self._stopping.is_set():
            stream.interrupt()
        try:
            for event in stream:
                if self._apply(event):
                    self._on_change()
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()

    def _apply(self, event: dict[str, Any]) -> bool:
        """Apply one watch event; True when the store changed."""
        event_type, raw = event["type"], event["object"]
        if event_type == "ERROR":  # raw is a Status
            code = raw.get("code")
            message = raw.get("message") or raw.get("reason") or "watch error"
            raise KubeApiError(code if isinstance(code, int) else 0, str(message))
        if event_type == "BOOKMARK":  # only metadata.resourceVersion is meaningful
            metadata = raw.get("metadata")
            version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
            if isinstance(version, str) and version:
                self.resource_version = version
            return False
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            raise KubeApiError(0, f"unknown watch event type {event_type!r}")
        obj = _normalise(raw, self.resource, self.version)
        if obj is None:
            raise KubeApiError(0, f"watch event {event_type} without an object name")
        with self._lock:
            if event_type == "DELETED":
                self._objects.pop(_key(obj), None)
            else:
                self._objects[_key(obj)] = obj
            version = _version_of(obj)
            if version:
                self.resource_version = version
        return True

    # -- the thread ------------------------------------------------------------------------

    def start(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"kube-watch-{self.resource.label}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end and unblock a watch it may be reading (does not wait)."""
        self._stopping.set()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.interrupt()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not self._stopping.is_set():
            delay = 0.0
            try:
                if self.resource_version is None:
                    if self.list_once():
                        self._on_change()
                    if backoff.failures:
                        log.info("kubernetes: %s: listed again after %d failures",
                                 self.resource.label, backoff.failures)  # fmt: skip
                    if not self.served:
                        delay = self.settings.absent_retry
                else:
                    started = time.monotonic()
                    self._watch_once()
                    if time.monotonic() - started < 1.0:
                        delay = backoff.next()  # a watch that ends at once must not spin
                    else:
                        backoff.reset()  # only a watch that held proves the server healthy
            except KubeApiError as error:
                if self._stopping.is_set():
                    break
                delay = self._recover(error, backoff)
            except Exception:  # a bug here must not silently freeze this kind's config
                log.exception("kubernetes: %s: unexpected error; relisting", self.resource.label)
                self.resource_version = None
                delay = backoff.next()
            if delay:
                self._stopping.wait(delay)

    def _recover(self, error: KubeApiError, backoff: Backoff) -> float:
        """What a failed step leads to: the delay before the next step (which it chooses)."""
        label = self.resource.label
        first = backoff.failures == 0
        delay = backoff.next()  # counted even when the first retry is immediate
        if error.gone:
            log.info("kubernetes: %s: %s; relisting", label, error.message)
            self.resource_version = None
            return 0.0 if first else delay
        if error.stream_broken and self.resource_version is not None:
            log.info("kubernetes: %s: %s; watching again from %s",
                     label, error.message, self.resource_version)  # fmt: skip
            return 0.0 if first else delay
        level = logging.WARNING if first else logging.DEBUG
        log.log(level, "kubernetes: %s: %s; keeping the last state, relisting with backoff",
                label, error)  # fmt: skip
        self.resource_version = None
        return delay
