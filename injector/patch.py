"""The JSON patch from the submitted pod to the injected one: a structural diff (`jsondiff`).

Only `metadata` (without `managedFields`) and `spec` are compared: the injector changes nothing
else, and a pod's bulk (managedFields, status, big annotations, long env lists) would make a naive
diff slow; Istio once took seconds on such pods. The injected pod shares every unchanged subtree
with the submitted one, and the diff skips shared subtrees by identity, so its cost follows what
the injector changed. Subtrees the caller knows to be new (the injected containers and volumes)
are never paired with an old item: they come back whole in `add` operations. The patch's values
may share objects with the injected pod.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from injector.jsondiff import diff
from injector.model import JsonPatch

_DIFFED = ("metadata", "spec")


def _diffed(pod: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {key: pod[key] for key in _DIFFED if key in pod}
    metadata = view.get("metadata")
    if isinstance(metadata, Mapping) and "managedFields" in metadata:
        view["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return view


def make_patch(
    src: Mapping[str, Any], dst: Mapping[str, Any], fresh: Collection[object] = ()
) -> JsonPatch:
    """RFC 6902 operations turning `src` into `dst` (metadata and spec only). `fresh`: subtrees
    of `dst` that are new objects, not found in `src`."""
    return diff(_diffed(src), _diffed(dst), frozenset(id(value) for value in fresh))
