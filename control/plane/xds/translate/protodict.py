"""Protobuf-JSON dicts -> messages, fast: protobuf's `json_format` walks every field in Python
(most of a large translation's time: 1,000 policies make ~75,000 messages). The message
constructor (upb, in C) takes the same dicts for most types and refuses unknown field names;
it fails loudly on the JSON forms it does not take (an Any's `@type`, a Duration's "1s", a
wrapper's bare value, ...). So a dict goes to the constructor as it is first; if that fails,
the dict is rewritten (Any packed, Duration and wrappers in their message form, Struct built),
in the subtrees whose types can hold such forms only; if that fails too, `json_format` gives the
message or its precise error. Types that can hold a Struct or Value (where a dict means one
thing to JSON and another to the constructor) skip the first step.

The result is the message json_format makes, its deterministic bytes independent of the dict's
order and of the process. One form beyond JSON is taken: an Any already packed, as
`{"type_url": ..., "value": <bytes>}` (a large part serialized once by its maker, see
`authz.rbac`); json_format is given it unpacked."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from google.protobuf import descriptor_pool, json_format, message_factory, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_FAILURES: Final = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
_DURATION: Final = re.compile(r"(-)?(\d+)(?:\.(\d{1,9}))?s")
_WRAPPERS: Final = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int32", "UInt32", "Bool", "String")
)  # the 64-bit and bytes wrappers have string JSON forms: left to json_format
_JSON_VALUES: Final = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)

Convert = Callable[[Any], Any]


class _UnsupportedError(Exception):
    """A JSON form this module leaves to json_format."""


def _duration(value: Any) -> Any:
    if value is None:
        return None
    found = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise _UnsupportedError("duration")
    sign = -1 if found.group(1) else 1
    nanos = int((found.group(3) or "").ljust(9, "0"))
    return {"seconds": sign * int(found.group(2)), "nanos": sign * nanos}


def _wrapper(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise _UnsupportedError("wrapper")
    return None if value is None else {"value": value}


def _struct(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _UnsupportedError("struct")
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _unsupported(value: Any) -> Any:
    raise _UnsupportedError("type")


def _any(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _UnsupportedError("any")
    if not value:
        return {}
    if "@type" not in value and type(value.get("value")) is bytes:
        return value  # packed
    type_url = value["@type"]
    cls = _class_of(type_url)
    if cls.DESCRIPTOR.full_name.startswith("google.protobuf."):
        raise _UnsupportedError("well-known type in Any")  # the {"@type", "value"} form
    fields = {k: v for k, v in value.items() if k != "@type"}
    packed = _build(cls, fields).SerializeToString(deterministic=True)  # maps in key order
    return {"type_url": type_url, "value": packed}


_SPECIAL: Final[dict[str, Convert]] = {
    "google.protobuf.Any": _any,
    "google.protobuf.Duration": _duration,
    "google.protobuf.Struct": _struct,
    **dict.fromkeys(_WRAPPERS, _wrapper),
    **{  # their JSON forms are strings or nulls: json_format's
        f"google.protobuf.{name}": _unsupported
        for name in ("Int64Value", "UInt64Value", "BytesValue", "Timestamp", "FieldMask",
                     "Value", "ListValue")
    },
}  # fmt: skip


@functools.cache
def _class_of(type_url: str) -> type[Message]:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_url.rpartition("/")[2])
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


def _reaches(descriptor: Descriptor, names: frozenset[str], follow_deprecated: bool) -> bool:
    """Whether a message of this type can hold one of the types `names` (a walk over the
    types it reaches, recursive ones such as RBAC's Permission included)."""
    seen = {descriptor.full_name}
    todo = [descriptor]
    while todo:
        for field in todo.pop().fields:
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            if field.GetOptions().deprecated and not follow_deprecated:
                continue
            child = field.message_type
            assert child is not None
            if child.full_name in names:
                return True
            if child.full_name not in seen:
                seen.add(child.full_name)
                todo.append(child)
    return False


@functools.cache
def _direct_first(descriptor: Descriptor) -> bool:
    return not _reaches(descriptor, _JSON_VALUES, follow_deprecated=True)


@functools.cache
def _needs_rewrite(descriptor: Descriptor) -> bool:
    """Deprecated fields are not followed: a dict that uses one in a JSON-only form fails in
    the constructor and goes to json_format."""
    return _reaches(descriptor, frozenset(_SPECIAL), follow_deprecated=False)


def _each(convert: Convert) -> Convert:
    def run(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise _UnsupportedError("repeated")
        return [convert(item) for item in value]

    return run


def _map(convert: Convert) -> Convert:
    def run(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _UnsupportedError("map")
        return {k: convert(v) for k, v in value.items()}

    return run


def _lazy_plan(descriptor: Descriptor) -> Convert:
    """Recursive types plan on first use."""
    planned: list[Convert] = []

    def run(value: Any) -> Any:
        if not planned:
            planned.append(_plan(descriptor))
        return planned[0](value)

    return run


def _field_converter(field: FieldDescriptor) -> Convert | None:
    """None: the value goes to the constructor as it is."""
    if field.type != FieldDescriptor.TYPE_MESSAGE or field.GetOptions().deprecated:
        return None
    message = field.message_type
    assert message is not None
    if message.GetOptions().map_entry:
        inner = _field_converter(message.fields_by_name["value"])
        return None if inner is None else _map(inner)
    convert = _SPECIAL.get(message.full_name)
    if convert is None:
        if not _needs_rewrite(message):
            return None
        convert = _lazy_plan(message)
    return _each(convert) if field.is_repeated else convert


@functools.cache
def _plan(descriptor: Descriptor) -> Convert:
    """The rewrite of one message type's dict into constructor keywords; a dict without a
    field to rewrite is passed on as it is."""
    converters = {
        field.name: convert
        for field in descriptor.fields
        if (convert := _field_converter(field)) is not None
    }
    names = converters.keys()

    def run(value: Any) -> Any:
        if type(value) is not dict:
            if value is None:
                return None  # JSON null: the field's default
            raise _UnsupportedError("message")
        if names.isdisjoint(value):
            return value
        out = dict(value)
        for key in names & value.keys():
            out[key] = converters[key](value[key])
        return out

    return run


def _build(cls: type[Message], fields: Mapping[str, Any]) -> Message:
    if _direct_first(cls.DESCRIPTOR):
        try:
            return cls(**fields)
        except _FAILURES:
            pass
    return cls(**_plan(cls.DESCRIPTOR)(fields))


def _unpacked(value: Any) -> Any:
    """`value` with every packed Any in its JSON form (for json_format)."""
    if isinstance(value, list):
        return [_unpacked(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    if "@type" not in value and type(value.get("value")) is bytes and "type_url" in value:
        message = _class_of(value["type_url"]).FromString(value["value"])
        found = json_format.MessageToDict(message)
        if message.DESCRIPTOR.full_name.startswith("google.protobuf."):
            return {"@type": value["type_url"], "value": found}  # a well-known type's form
        return {"@type": value["type_url"], **found}
    return {k: _unpacked(v) for k, v in value.items()}


def to_message(data: Mapping[str, Any], cls: type[Message]) -> Message:
    """The message `json_format.ParseDict(data, cls())` makes (raising its ParseError). An Any
    inside is packed with its maps in key order (json_format packs in upb's map order, which
    varies from process to process), so the message's deterministic bytes, which a resource's
    version hashes, depend on its content only."""
    try:
        return _build(cls, data)
    except (_UnsupportedError, *_FAILURES):
        return json_format.ParseDict(_unpacked(data), cls())
