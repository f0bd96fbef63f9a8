"""Refuse hostile shapes before any real work: too deep, too many nodes, odd keys, cycles.

YAML can build deep or self-referencing structures and alias bombs (the same list referenced
many times over); walking them naively takes unbounded time or blows the stack. This walk is
iterative, counts every visit (so shared references cost what they would cost unrolled) and stops
at the first limit, so the answer comes in milliseconds whatever the input.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

# A real Istio object is at most ~15 levels deep (managedFields mirror the spec plus a few).
MAX_DEPTH: Final = 64
# A 3 MiB admission body holds a few hundred thousand nodes at most; real objects hold far fewer.
MAX_NODES: Final = 200_000


# Dates: `kubectl get -o yaml` writes unquoted timestamps that YAML loads as datetimes.
_LEAVES: Final = (str, int, float, bool, datetime.date)


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_shape(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """None when the object is a plain JSON-like tree within limits, else (path, reason)."""
    stack: list[tuple[object, str, int]] = [(obj, "", 0)]
    visits = 0
    while stack:
        node, path, depth = stack.pop()
        visits += 1
        if visits > MAX_NODES:
            return path, f"object too large: more than {MAX_NODES} values"
        if depth > MAX_DEPTH:
            return path, f"object nested too deeply: more than {MAX_DEPTH} levels"
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(key, bool) or not isinstance(key, str | int):
                    return path, f"mapping key {type(key).__name__} is not a string"
                stack.append((value, _child_path(path, key), depth + 1))
        elif isinstance(node, list | tuple):
            for index, value in enumerate(node):
                stack.append((value, _child_path(path, index), depth + 1))
        elif node is not None and not isinstance(node, _LEAVES):
            return path, f"unsupported value of type {type(node).__name__}"
    return None
