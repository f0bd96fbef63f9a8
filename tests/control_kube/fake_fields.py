"""Field paths of Kubernetes objects, as server-side apply tracks ownership of them (lists of
named items merge by name; other lists and scalars are whole fields), and RFC 7386 merge patch:
the data side of the fake API server's writes."""

from __future__ import annotations

import copy
from typing import Any

Path = tuple[str, ...]


def _named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in value)
    )


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every field an applier can own: map keys recursively, lists of named items by name,
    other lists and scalars whole. Identity (apiVersion, kind, name, namespace) is no field."""
    found: dict[Path, Any] = {}
    if isinstance(obj, dict) and (obj or not prefix):
        for key, value in obj.items():
            if not prefix and key in ("apiVersion", "kind", "status"):
                continue
            if prefix == ("metadata",) and key not in ("labels", "annotations"):
                continue
            found.update(leaves(value, (*prefix, key)))
    elif _named_list(obj):
        for item in obj:
            found.update(leaves(item, (*prefix, f"[name={item['name']}]")))
    else:
        found[prefix] = obj
    return found


def _get(node: Any, segment: str) -> Any:
    if segment.startswith("[name="):
        if not isinstance(node, list):
            return None
        wanted = segment[6:-1]
        return next((i for i in node if isinstance(i, dict) and i.get("name") == wanted), None)
    return node.get(segment) if isinstance(node, dict) else None


def _delete(node: Any, segment: str) -> None:
    if segment.startswith("[name="):
        wanted = segment[6:-1]
        node[:] = [i for i in node if not (isinstance(i, dict) and i.get("name") == wanted)]
    elif isinstance(node, dict):
        node.pop(segment, None)


def set_field(obj: dict[str, Any], path: Path, value: Any) -> None:
    node: Any = obj
    for index, segment in enumerate(path[:-1]):
        if segment.startswith("[name="):
            item = _get(node, segment)
            if item is None:
                item = {"name": segment[6:-1]}
                node.append(item)
            node = item
        else:
            container: Any = [] if path[index + 1].startswith("[name=") else {}
            if not isinstance(node.get(segment), type(container)):
                node[segment] = container
            node = node[segment]
    node[path[-1]] = copy.deepcopy(value)


def _is_item(path: Path, depth: int) -> bool:
    return depth >= 1 and path[depth - 1].startswith("[name=")


def remove_field(obj: dict[str, Any], path: Path) -> None:
    """Remove one field, then what became empty (an empty map, an item left with its name)."""
    chain: list[Any] = [obj]  # chain[i] holds path[i]
    for segment in path[:-1]:
        node = _get(chain[-1], segment)
        if node is None:
            return
        chain.append(node)
    last = len(path) - 1
    if path[last] == "name" and _is_item(path, last):
        if set(chain[-1]) != {"name"}:
            return  # the item's other fields are someone else's: it keeps its name
        chain.pop()
        last -= 1
    _delete(chain[-1], path[last])
    for depth in range(len(chain) - 1, 0, -1):
        node = chain[depth]
        if node in ({}, []) or (_is_item(path, depth) and set(node) == {"name"}):
            _delete(chain[depth - 1], path[depth - 1])
        else:
            break


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
