"""Pydantic's errors, said the way a Kubernetes user reads them: a field path and a short reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from control.api.report import FieldError

_MAX_SHOWN = 80


def shown(value: object) -> str:
    """A user value quoted for a message, cut short so hostile input cannot flood the response."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN] + "…"
    # Control characters escaped (`\r`, `\x00`): a message stays one line in logs and kubectl.
    return '"' + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + '"'


def join_path(prefix: str, loc: Sequence[int | str]) -> str:
    """("http", 0, "route") under "spec" -> "spec.http[0].route"."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "invalid_key":
        return "mapping key must be a string"
    if kind == "missing":
        return "required field"
    if kind == "literal_error":
        return f"unknown value {shown(error['input'])}; expected one of {ctx.get('expected', '')}"
    if kind in {"string_type", "int_type", "float_type", "bool_type", "list_type", "dict_type",
                "model_type", "tuple_type", "model_attributes_type"}:  # fmt: skip
        wanted = {
            "string_type": "a string", "int_type": "an integer", "float_type": "a number",
            "bool_type": "a boolean", "list_type": "a list", "tuple_type": "a list",
        }.get(kind, "an object")  # fmt: skip
        return f"must be {wanted}, not {_type_name(error['input'])}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "int_from_float":
        return "must be an integer"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">",
              "less_than": "<"}[kind]  # fmt: skip
        bound = next(iter(ctx.values()), "")
        return f"{shown(error['input'])} must be {op} {bound}"
    if kind == "value_error":
        failure = ctx.get("error")
        return str(failure) if failure is not None else error["msg"]
    return str(error["msg"])


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def from_pydantic(error: ValidationError, prefix: str) -> Iterable[FieldError]:
    """One FieldError per pydantic error, with its location under `prefix` (e.g. "spec")."""
    for detail in error.errors(include_url=False):
        # A dict key that fails is reported as "[key]"; pydantic puts "[key]" in loc for it.
        loc = [p for p in detail["loc"] if p != "[key]"]
        yield FieldError(join_path(prefix, loc), _message(detail))
