"""The JSON patch from the submitted pod to the injected one: a diff, computed by `jsonpatch`.

Only `metadata` (without `managedFields`) and `spec` are compared: the injector changes nothing
else, and a pod's bulk (managedFields, status, big annotations, long env lists) would make a naive
diff slow; Istio once took seconds on such pods. The injected pod shares every unchanged subtree
with the submitted one, so before diffing, each subtree that both sides hold *as the same object*
is replaced on both sides by one small marker: `jsonpatch` then walks only what changed. Markers
that end up inside a patch value are swapped back for the subtree they stand for, so the patch is
exactly what a diff of the full documents would allow. Subtrees the caller knows to be new (the
injected containers and volumes) get a marker of their own on the destination side, so `jsonpatch`
neither serialises them for its move detection nor copies them: they come back whole in `add`
operations. The patch's values may share objects with the injected pod.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import jsonpatch

from injector.model import JsonPatch

_DIFFED = ("metadata", "spec")


class _Markers:
    def __init__(self, fresh: Collection[object]) -> None:
        self._nonce = id(self)
        self._fresh = {id(value) for value in fresh}
        self.objects: dict[str, Any] = {}

    def mark(self, value: object) -> str:
        marker = f"\x00mizzen-shared:{self._nonce:x}:{id(value):x}"
        self.objects[marker] = value
        return marker

    def prune(self, src: Any, dst: Any) -> tuple[Any, Any]:
        if isinstance(src, dict) and isinstance(dst, dict):
            new_src, new_dst = {}, {}
            for key, value in src.items():
                if key in dst:
                    new_src[key], new_dst[key] = self._pair(value, dst[key])
                else:
                    new_src[key] = value
            for key, value in dst.items():
                if key not in src:
                    new_dst[key] = self._new(value)
            return new_src, new_dst
        if isinstance(src, list) and isinstance(dst, list):
            in_src = {id(item) for item in src if isinstance(item, dict | list)}
            shared = {id(item) for item in dst if id(item) in in_src}
            new_src_list = [self.mark(item) if id(item) in shared else item for item in src]
            new_dst_list = [
                self.mark(item) if id(item) in shared else self._new(item) for item in dst
            ]
            for index in range(min(len(src), len(dst))):
                a, b = src[index], dst[index]
                if id(a) not in shared and id(b) not in shared:
                    new_src_list[index], new_dst_list[index] = self._pair(a, b)
            return new_src_list, new_dst_list
        return src, dst

    def _pair(self, src: Any, dst: Any) -> tuple[Any, Any]:
        if src is dst and (isinstance(src, dict | list) or _long_string(src)):
            marker = self.mark(src)
            return marker, marker
        if id(dst) in self._fresh:
            # New, but possibly equal to what was there (a pod injected before).
            marker = self.mark(dst)
            return (marker if src == dst else src), marker
        return self.prune(src, dst)

    def _new(self, value: Any) -> Any:
        """A subtree only the destination has: marked if known to be new, else as it is
        (with any fresh subtrees inside it marked)."""
        if id(value) in self._fresh:
            return self.mark(value)
        if isinstance(value, list) and any(id(item) in self._fresh for item in value):
            return [self._new(item) for item in value]
        return value

    def restore(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.objects.get(value, value) if value.startswith("\x00") else value
        if isinstance(value, dict):
            return {key: self.restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.restore(item) for item in value]
        return value


def _long_string(value: object) -> bool:
    """Long strings (a last-applied-configuration annotation) are cheaper to mark than to
    serialise twice for `jsonpatch`'s comparison."""
    return isinstance(value, str) and len(value) > 256


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
    markers = _Markers(fresh)
    pruned_src, pruned_dst = markers.prune(_diffed(src), _diffed(dst))
    operations: JsonPatch = jsonpatch.make_patch(pruned_src, pruned_dst).patch
    for operation in operations:
        if "value" in operation:
            operation["value"] = markers.restore(operation["value"])
    return operations
