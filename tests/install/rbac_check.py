"""Kubernetes' RBAC decision for one request, as the API server's authorizer makes it (only
what the install uses: verbs, API groups, resources, resource names, Role vs ClusterRole), and
the request an HTTP call to the API is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""


def request_of(method: str, path: str, query: dict[str, str]) -> Request:
    parts = [p for p in path.split("/") if p]
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], (rest[1] if len(rest) > 1 else "")
    if resource == "namespaces" and name == "" and namespace:  # /api/v1/namespaces/<name>
        resource, name, namespace = "namespaces", namespace, ""
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if verb is None:
        verb = "get" if name else ("watch" if query.get("watch") in ("1", "true") else "list")
    return Request(verb, group, resource, namespace, name)


def _matches(rule: dict[str, Any], request: Request) -> bool:
    def has(key: str, value: str) -> bool:
        return value in rule.get(key, []) or "*" in rule.get(key, [])

    if not (has("verbs", request.verb) and has("apiGroups", request.group)):
        return False
    if not has("resources", request.resource):
        return False
    names = rule.get("resourceNames") or []
    # A rule with names never allows a call without one (create, list, watch).
    return not names or request.name in names


def allowed(objects: list[dict[str, Any]], account: str, namespace: str, request: Request) -> bool:
    """Whether the service account `namespace/account` may make `request`, by the ClusterRoles
    and Roles bound to it among `objects`."""

    def bound(binding: dict[str, Any]) -> bool:
        return any(
            s.get("kind") == "ServiceAccount" and s.get("name") == account
            and s.get("namespace") == namespace for s in binding.get("subjects", [])
        )  # fmt: skip

    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in objects if o["kind"] in ("ClusterRole", "Role")}  # fmt: skip
    for binding in objects:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding") or not bound(binding):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace", "")
        role = roles.get((ref["kind"], scope if ref["kind"] == "Role" else "", ref["name"]))
        if role is None:
            continue
        if binding["kind"] == "RoleBinding" and request.namespace != scope:
            continue
        if any(_matches(rule, request) for rule in role.get("rules", [])):
            return True
    return False
