"""A structural diff of two JSON documents as RFC 6902 operations (add, remove, replace).

Written for copy-on-write documents: a subtree the destination shares *as the same object* with
the source is skipped by identity before any comparison, so the cost follows what changed, not
the document's size. Equality is JSON-type-exact: Python holds `True == 1` and `1 == 1.0`, but a
patch must turn `1` into `true` and `1` into `1.0`, so values of different JSON types always
differ. Patch values may share objects with the destination (treat both as read-only).
"""

from __future__ import annotations

from typing import Any, Final

from injector.model import JsonPatch

_ALIGN_LIMIT = 32
"""Longest list middle for which the place of inserted or removed items is searched; longer
middles (rare: a bulk edit) pair items by position, keeping the diff linear."""


def diff(src: Any, dst: Any, fresh: frozenset[int] = frozenset()) -> JsonPatch:
    """Operations that turn `src` into `dst`. `fresh`: ids of `dst` subtrees known to be new,
    which are added whole rather than paired with an old item."""
    operations: JsonPatch = []
    _diff(src, dst, "", operations, fresh)
    return operations


def escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901): `~` first, so `/`'s escape is not re-escaped."""
    if "~" in key:
        key = key.replace("~", "~0")
    if "/" in key:
        key = key.replace("/", "~1")
    return key


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON: like `==`, but `True` differs from `1` and `1` from `1.0`."""
    if a is b:
        return True
    if type(a) is not type(b) and _kind(a) is not _kind(b):
        return False
    if a != b:
        return False
    if isinstance(a, dict):
        return all(json_equal(value, b[key]) for key, value in a.items())
    if isinstance(a, list):
        return all(map(json_equal, a, b))
    return True


def _kind(value: object) -> type:
    """The JSON type of a value; `bool` is tested before `int`, its base class."""
    for kind in (bool, int, float, str, dict, list):
        if isinstance(value, kind):
            return kind
    return type(value)


_ABSENT: Final = object()


def _diff(src: Any, dst: Any, path: str, out: JsonPatch, fresh: frozenset[int]) -> None:
    if src is dst:
        return
    if isinstance(src, dict) and isinstance(dst, dict):
        for key in src:
            if key not in dst:
                out.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        for key, value in dst.items():
            old = src.get(key, _ABSENT)
            if old is value:  # shared subtrees: skipped before building a path
                continue
            if old is _ABSENT:
                out.append({"op": "add", "path": f"{path}/{escape(key)}", "value": value})
            else:
                _diff(old, value, f"{path}/{escape(key)}", out, fresh)
    elif isinstance(src, list) and isinstance(dst, list):
        _diff_lists(src, dst, path, out, fresh)
    elif not json_equal(src, dst):
        out.append({"op": "replace", "path": path, "value": dst})


def _diff_lists(
    src: list[Any], dst: list[Any], path: str, out: JsonPatch, fresh: frozenset[int]
) -> None:
    """Common prefix and suffix by equality; in the middle, a block of added (or removed) items
    placed where the remaining items pair up best, the pairs diffed in place. One `replace` of
    the whole list when that is no longer than the edits (items of different kinds)."""
    shorter = min(len(src), len(dst))
    start = 0
    while start < shorter and json_equal(src[start], dst[start]):
        start += 1
    end = 0
    while end < shorter - start and json_equal(src[-1 - end], dst[-1 - end]):
        end += 1
    old, new = src[start : len(src) - end], dst[start : len(dst) - end]
    if not old and not new:
        return
    gap = len(new) - len(old)
    at = _block_position(old, new, fresh) if gap else 0
    edits: JsonPatch = []
    if gap < 0:
        for index in range(start + at - gap - 1, start + at - 1, -1):
            edits.append({"op": "remove", "path": f"{path}/{index}"})
        old = old[:at] + old[at - gap :]
    elif gap > 0:
        for index in range(start + at, start + at + gap):
            edits.append({"op": "add", "path": f"{path}/{index}", "value": dst[index]})
        new = new[:at] + new[at + gap :]
    nested = False
    for offset, (a, b) in enumerate(zip(old, new, strict=True)):
        index = start + offset + (offset >= at) * max(gap, 0)
        nested = nested or _both_containers(a, b)
        _diff(a, b, f"{path}/{index}", edits, fresh)
    if not nested and len(edits) > 1 and len(edits) >= len(dst):
        out.append({"op": "replace", "path": path, "value": dst})
    else:
        out.extend(edits)


def _block_position(old: list[Any], new: list[Any], fresh: frozenset[int]) -> int:
    """Where, within the middle, the block of items only the longer side has starts: the place
    that pairs the most alike items (a sidecar inserted before the app containers must not be
    diffed against the first app container)."""
    longer, shorter = (new, old) if len(new) > len(old) else (old, new)
    gap = len(longer) - len(shorter)
    if len(shorter) > _ALIGN_LIMIT:
        return len(shorter)
    best, best_score = len(shorter), -1
    for at in range(len(shorter) + 1):
        score = sum(
            _alike(a, longer[index + (index >= at) * gap], fresh) for index, a in enumerate(shorter)
        )
        if score >= best_score:  # on a tie, the later position: an append is the common case
            best, best_score = at, score
    return best


def _alike(a: Any, b: Any, fresh: frozenset[int]) -> int:
    """2 for equal items, 1 for objects with the same `name` (a container, a volume, an env
    variable: Kubernetes' list-map key), else 0."""
    if id(a) in fresh or id(b) in fresh:
        return 0
    if json_equal(a, b):
        return 2
    if isinstance(a, dict) and isinstance(b, dict):
        name = a.get("name")
        return int(name is not None and json_equal(name, b.get("name")))
    return 0


def _both_containers(a: Any, b: Any) -> bool:
    return (isinstance(a, dict) and isinstance(b, dict)) or (
        isinstance(a, list) and isinstance(b, list)
    )
