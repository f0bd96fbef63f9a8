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
# A VirtualService with a thousand routes has some 20,000 values; 3 MiB could hold ten times more.
MAX_NODES: Final = 100_000
_TOO_LARGE: Final = "object too large"


# Dates: `kubectl get -o yaml` writes unquoted timestamps that YAML loads as datetimes.
_LEAVES: Final = (str, int, float, bool, datetime.date)


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_shape(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """None when the object is a plain JSON-like tree within limits, else (path, reason).

    The common (acceptable) case is one pass without paths; only a refused object is walked again
    to name where the problem is.
    """
    problem = _first_problem(obj, with_paths=False)
    if problem is None or problem[1].startswith(_TOO_LARGE):
        return problem  # the size of the whole object has no one path
    return _first_problem(obj, with_paths=True)


def _first_problem(obj: Mapping[str, Any], *, with_paths: bool) -> tuple[str, str] | None:
    stack: list[tuple[object, str, int]] = [(obj, "", 0)]
    visits = 0
    while stack:
        node, path, depth = stack.pop()
        visits += 1
        if visits > MAX_NODES:
            return path, f"{_TOO_LARGE}: more than {MAX_NODES} values"
        if depth > MAX_DEPTH:
            return path, f"object nested too deeply: more than {MAX_DEPTH} levels"
        if isinstance(node, dict | Mapping):
            for key, value in node.items():
                if isinstance(key, bool) or not isinstance(key, str | int):
                    return path, f"mapping key {type(key).__name__} is not a string"
                stack.append((value, _child_path(path, key) if with_paths else "", depth + 1))
        elif isinstance(node, list | tuple):
            for index, value in enumerate(node):
                stack.append((value, f"{path}[{index}]" if with_paths else "", depth + 1))
        elif node is not None and not isinstance(node, _LEAVES):
            return path, f"unsupported value of type {type(node).__name__}"
    return None
