"""Writes to the fake API server, kept apart from its list/watch side: get one object, create,
replace, patch (JSON patch, merge patch, server-side apply), delete; a log of every request (to
replay against RBAC rules); and the kinds the install and the leader use. (Their HTTP side and the
list selectors: fake_write_http.py; field paths: fake_fields.py.)

Honest where the callers depend on it, as the real server behaves:
- create answers 409 AlreadyExists, replace and JSON patch 404 when absent, replace 409 Conflict
  on a stale `metadata.resourceVersion` (optimistic concurrency, what leader election rests on);
- server-side apply (`application/apply-patch+yaml`) needs a `fieldManager`, creates or merges,
  tracks which manager owns which field (lists of named items are merged by name, other lists are
  atomic), drops the fields a manager stops applying, and answers 409 when another manager owns
  a field with a different value unless `force=true`; updates take ownership of what they change;
- `metadata.generation` moves only when the spec changes; `status` is never written through the
  main resource of a kind with a status subresource (the test sets it with `set_status`);
- deleting a namespace deletes what is in it.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import jsonpatch
import yaml

from tests.control_kube.fake_fields import (
    Path,
    leaves,
    merge_patch,
    remove_field,
    set_field,
    spec_of,
)

if TYPE_CHECKING:
    from tests.control_kube.fake_apiserver import FakeApiServer, FakeResource

STATUS_SUBRESOURCE = {"Deployment"}
APPLY = "application/apply-patch+yaml"


def install_resources() -> tuple[FakeResource, ...]:
    """The kinds the install renders and the control plane's leader writes."""
    from tests.control_kube.fake_apiserver import FakeResource

    return (
        FakeResource("", "v1", "configmaps", "ConfigMap"),
        FakeResource("", "v1", "secrets", "Secret"),
        FakeResource("", "v1", "serviceaccounts", "ServiceAccount"),
        FakeResource("apps", "v1", "deployments", "Deployment"),
        FakeResource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
        FakeResource("coordination.k8s.io", "v1", "leases", "Lease"),
        FakeResource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        FakeResource(
            "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
        ),
        FakeResource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
        FakeResource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
        FakeResource(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
        ),
        FakeResource(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            False,
        ),
        FakeResource(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            False,
        ),
    )


class WriteError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


# -- the writes --------------------------------------------------------------------------------


class FakeWrites:
    """Mixed into `FakeApiServer`: the write verbs and the request log."""

    def _writes_init(self: FakeApiServer) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._owners: dict[tuple[str, str, str], dict[str, set[Path]]] = {}

    def note_request(self: FakeApiServer, method: str, path: str, query: dict[str, str]) -> None:
        with self._changed:
            self.requests.append((method, path, dict(query)))

    def route_object(self: FakeApiServer, path: str) -> tuple[FakeResource, str, str] | None:
        """The resource, namespace and name an object path names, or None."""
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 4 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 5 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = ""
        if len(rest) == 4 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if len(rest) != 2:
            return None
        for resource in self.resources:
            if (resource.group, resource.version, resource.plural) == (group, version, rest[0]):
                if resource.namespaced != bool(namespace):
                    return None
                return resource, namespace, rest[1]
        return None

    def get_object(
        self: FakeApiServer, resource: FakeResource, namespace: str, name: str
    ) -> dict[str, Any]:
        with self._changed:
            found = self._objects[resource].get((namespace, name))
            if found is None:
                raise WriteError(404, "NotFound", f'{resource.plural} "{name}" not found')
            return copy.deepcopy(found)

    def _owner_key(self, resource: FakeResource, namespace: str, name: str) -> tuple[str, str, str]:
        return (resource.plural, namespace, name)

    def _store(
        self: FakeApiServer,
        resource: FakeResource,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Stamp and store (under the lock); records the watch event."""
        metadata = obj.setdefault("metadata", {})
        metadata["name"] = name
        if resource.namespaced:
            metadata["namespace"] = namespace
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        if resource.kind in STATUS_SUBRESOURCE:
            obj.pop("status", None)
            if old is not None and "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
        self._version += 1
        metadata["resourceVersion"] = str(self._version)
        if old is None:
            metadata["uid"] = f"uid-{self._version}"
            metadata["creationTimestamp"] = "2026-01-01T00:00:00Z"
            metadata["generation"] = 1
        else:
            metadata["uid"] = old["metadata"]["uid"]
            metadata["creationTimestamp"] = old["metadata"].get(
                "creationTimestamp", "2026-01-01T00:00:00Z"
            )
            generation = old["metadata"].get("generation", 1)
            metadata["generation"] = generation + (spec_of(obj) != spec_of(old))
        self._objects[resource][(namespace, name)] = obj
        self._record(resource, "MODIFIED" if old else "ADDED", obj)
        return copy.deepcopy(obj)

    def _take_ownership(
        self,
        resource: FakeResource,
        namespace: str,
        name: str,
        manager: str,
        old: dict[str, Any] | None,
        new: dict[str, Any],
    ) -> None:
        """An update owns the fields it changed."""
        before = leaves(old or {})
        changed = {p for p, v in leaves(new).items() if before.get(p, object()) != v}
        owners = self._owners.setdefault(self._owner_key(resource, namespace, name), {})
        for other, paths in owners.items():
            if other != manager:
                paths -= changed
        owners.setdefault(manager, set()).update(changed)

    def create_object(
        self: FakeApiServer,
        resource: FakeResource,
        namespace: str,
        body: dict[str, Any],
        manager: str,
    ) -> dict[str, Any]:
        name = body.get("metadata", {}).get("name")
        if not isinstance(name, str) or not name:
            raise WriteError(422, "Invalid", "metadata.name: Required value")
        body_namespace = body["metadata"].get("namespace")
        if body_namespace and resource.namespaced and body_namespace != namespace:
            raise WriteError(400, "BadRequest", "the namespace of the object does not match")
        with self._changed:
            if (namespace, name) in self._objects[resource]:
                message = f'{resource.plural} "{name}" already exists'
                raise WriteError(409, "AlreadyExists", message)
            stored = self._store(resource, namespace, name, copy.deepcopy(body), None)
            self._take_ownership(resource, namespace, name, manager, None, stored)
            return stored

    def replace_object(
        self: FakeApiServer,
        resource: FakeResource,
        namespace: str,
        name: str,
        body: dict[str, Any],
        manager: str,
    ) -> dict[str, Any]:
        with self._changed:
            old = self._objects[resource].get((namespace, name))
            if old is None:
                raise WriteError(404, "NotFound", f'{resource.plural} "{name}" not found')
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                message = (
                    f'Operation cannot be fulfilled on {resource.plural} "{name}": the object '
                    "has been modified; please apply your changes to the latest version and "
                    "try again"
                )
                raise WriteError(409, "Conflict", message)
            stored = self._store(resource, namespace, name, copy.deepcopy(body), old)
            self._take_ownership(resource, namespace, name, manager, old, stored)
            return stored

    def patch_object(
        self: FakeApiServer,
        resource: FakeResource,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        query: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        manager = query.get("fieldManager", "")
        if content_type == APPLY:
            return self._apply_patch(resource, namespace, name, body, query)
        try:
            patch = json.loads(body)
        except ValueError:
            raise WriteError(400, "BadRequest", "the patch is not JSON") from None
        with self._changed:
            old = self._objects[resource].get((namespace, name))
            if old is None:
                raise WriteError(404, "NotFound", f'{resource.plural} "{name}" not found')
            if content_type == "application/json-patch+json":
                try:
                    new = jsonpatch.apply_patch(old, patch)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                    raise WriteError(422, "Invalid", f"the JSON patch failed: {error}") from None
            elif content_type == "application/merge-patch+json":
                new = merge_patch(old, patch)
            else:
                raise WriteError(415, "UnsupportedMediaType", f"{content_type} is not served")
            new.setdefault("metadata", {})["name"] = name
            stored = self._store(resource, namespace, name, new, old)
            self._take_ownership(resource, namespace, name, manager or "unknown", old, stored)
            return 200, stored

    def _apply_patch(
        self: FakeApiServer,
        resource: FakeResource,
        namespace: str,
        name: str,
        body: bytes,
        query: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        manager = query.get("fieldManager", "")
        if not manager:
            message = "PATCH, application/apply-patch+yaml: fieldManager is required"
            raise WriteError(400, "BadRequest", message)
        try:
            applied = yaml.safe_load(body)
        except yaml.YAMLError:
            raise WriteError(400, "BadRequest", "the applied configuration is not YAML") from None
        if not isinstance(applied, dict):
            raise WriteError(400, "BadRequest", "the applied configuration is not an object")
        if applied.get("metadata", {}).get("name") != name:
            raise WriteError(400, "BadRequest", "the name of the object does not match the URL")
        if (applied.get("apiVersion"), applied.get("kind")) != (
            resource.api_version,
            resource.kind,
        ):
            raise WriteError(400, "BadRequest", "apiVersion and kind do not match the URL")
        force = query.get("force") in ("true", "1")
        wanted = leaves(applied)
        with self._changed:
            old = self._objects[resource].get((namespace, name))
            current = copy.deepcopy(old) if old is not None else {"metadata": {}}
            owners = self._owners.setdefault(self._owner_key(resource, namespace, name), {})
            present = leaves(current)
            conflicts = sorted(
                (other, ".".join(path))
                for other, paths in owners.items()
                if other != manager
                for path in paths & wanted.keys()
                if present.get(path) != wanted[path]
            )
            if conflicts and not force:
                listed = "; ".join(f'conflict with "{o}": {p}' for o, p in conflicts[:5])
                raise WriteError(
                    409, "Conflict", f"Apply failed with {len(conflicts)} conflicts: {listed}"
                )
            for other, paths in owners.items():
                if other != manager:
                    paths -= {p for p in wanted if present.get(p) != wanted[p]}
            shared = {p for other, ps in owners.items() if other != manager for p in ps}
            for path in owners.get(manager, set()) - wanted.keys() - shared:
                remove_field(current, path)
            for path, value in wanted.items():
                set_field(current, path, value)
            owners[manager] = set(wanted)
            stored = self._store(resource, namespace, name, current, old)
            return (201 if old is None else 200), stored

    def delete_object(
        self: FakeApiServer, resource: FakeResource, namespace: str, name: str
    ) -> dict[str, Any]:
        with self._changed:
            obj = self._objects[resource].pop((namespace, name), None)
            if obj is None:
                raise WriteError(404, "NotFound", f'{resource.plural} "{name}" not found')
            self._owners.pop(self._owner_key(resource, namespace, name), None)
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self._record(resource, "DELETED", obj)
            if resource.kind == "Namespace":  # the namespace controller empties it
                for other, objects in self._objects.items():
                    for key in [k for k in objects if other.namespaced and k[0] == name]:
                        gone = objects.pop(key)
                        self._version += 1
                        gone["metadata"]["resourceVersion"] = str(self._version)
                        self._record(other, "DELETED", gone)
        return status_success(name)

    def set_status(
        self: FakeApiServer,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        new_status: dict[str, Any],
    ) -> None:
        """What a controller (the Deployment controller, the kubelet) would write."""
        resource = self._resource_of(api_version, kind)
        with self._changed:
            obj = self._objects[resource][(namespace, name)]
            obj["status"] = copy.deepcopy(new_status)
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self._record(resource, "MODIFIED", obj)


def status_success(name: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name},
    }
