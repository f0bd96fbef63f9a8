"""Typed, checked reads of the pod dict.

The pod stays a plain dict (type the envelope, not the world), so every read the injector makes
goes through these helpers: a field of the wrong shape becomes an `InjectionError` naming it,
never a KeyError or TypeError deep inside the injector.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import orjson

from injector.model import InjectionError

Json = dict[str, Any]


def mapping(parent: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any]:
    """`parent[key]` as a mapping; absent or null reads as empty."""
    value = parent.get(key)
    if value is None:
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):  # the ABC check is slow
        raise InjectionError(field, f"must be an object, not {type_name(value)}")
    return value


def mappings(parent: Mapping[str, Any], key: str, field: str) -> list[Mapping[str, Any]]:
    """`parent[key]` as a list of mappings; absent or null reads as empty."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InjectionError(field, f"must be a list, not {type_name(value)}")
    for index, item in enumerate(value):
        if type(item) is not dict and not isinstance(item, Mapping):
            raise InjectionError(f"{field}[{index}]", f"must be an object, not {type_name(item)}")
    return value


def string_map(parent: Mapping[str, Any], key: str, field: str) -> dict[str, str]:
    """Labels or annotations: string keys, string values (Kubernetes rejects anything else,
    and an unquoted `true` or `15020` in YAML is the usual way to get one)."""
    result: dict[str, str] = {}
    for name, value in mapping(parent, key, field).items():
        if not isinstance(name, str):
            raise InjectionError(f"{field}", f"key {name!r} is not a string")
        if not isinstance(value, str):
            raise InjectionError(
                f"{field}[{name}]", f"must be a string (quote it), not {type_name(value)}"
            )
        result[name] = value
    return result


def container_name(container: Mapping[str, Any], field: str) -> str:
    name = container.get("name")
    if not isinstance(name, str) or not name:
        raise InjectionError(f"{field}.name", "every container needs a name")
    return name


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


# One encoder for every call: `json.dumps` with options builds a new one each time.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# orjson refuses (TypeError) what it would write differently from `_CANONICAL`, except floats:
# integers past 64 bits, lone surrogates, non-string keys, subclasses, dates, dataclasses.
_ORJSON_OPTIONS: Final = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# Floats are where the two differ (orjson `0.00001`, Python `1e-05`; NaN and infinities are
# orjson's `null`). orjson writes every float with a digit followed by `.`, `e` or `E`: mapped to
# "0." here, that pair is found at C speed (a regular expression is ten times slower). Strings may
# hold such pairs too, which costs only the slow path.
_FLOAT_MARKS: Final = bytes.maketrans(b"123456789eE", b"000000000..")


def _may_differ(data: bytes) -> bool:
    return b"null" in data or b"0." in data.translate(_FLOAT_MARKS)


def canonical_json(value: object) -> str:
    """Deterministic JSON for values written into the pod (env vars, the status annotation):
    `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, byte for byte.

    orjson writes it 10 times faster and, for strings, integers, booleans and key order,
    identically (every code point checked); anything it would write differently (floats, nulls
    that may be NaN) or refuses goes through the standard library."""
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        return _CANONICAL.encode(value)
    if _may_differ(data):
        return _CANONICAL.encode(value)
    return data.decode()
