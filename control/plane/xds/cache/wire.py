"""The two ADS responses in protobuf's wire format, put together from bytes serialized once.

A response is a few fields of its own (version, type, nonce, removed names) and its resources.
Each resource's field is serialized once per resource version (`snapshot.Packer`), however many
proxies receive it, so a response costs a join of shared bytes, not a copy and a serialization
of every resource for every proxy. The bytes are made only when the response is written
(`Encoded.data`): until then a response is its size and references to the shared parts, so
streams waiting for their turn to write (`throttle.SendLimiter`) hold no copies.

The field numbers are those of `envoy.service.discovery.v3` (tests compare with protobuf's own
serialization)."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from control.plane.xds.protowire import length_delimited

# DiscoveryResponse
_VERSION_INFO = 1
_RESOURCES = 2
_TYPE_URL = 4
_NONCE = 5
# DeltaDiscoveryResponse (system_version_info 1, resources 2, type_url 4, nonce 5)
_REMOVED_RESOURCES = 6
# Resource (Delta): version 1, resource 2 (the Any), name 3
_RESOURCE_VERSION = 1
_RESOURCE_NAME = 3
# Any: type_url 1, value 2
_ANY_TYPE_URL = 1
_ANY_VALUE = 2


def _string(number: int, text: str) -> bytes:
    """As protobuf writes a proto3 string: nothing when empty."""
    return length_delimited(number, text.encode()) if text else b""


def packed(type_url: str, value: bytes) -> bytes:
    """An `Any` holding `value` (a resource's deterministic serialization), as protobuf writes
    it, without copying the resource into a message and out again."""
    value_field = length_delimited(_ANY_VALUE, value) if value else b""  # proto3: empty omitted
    return _string(_ANY_TYPE_URL, type_url) + value_field


def resource_field(serialized: bytes) -> bytes:
    """A resource as the `resources` field of either response (an `Any` in State of the World,
    a `Resource` in Delta: field 2 in both)."""
    return length_delimited(_RESOURCES, serialized)


def delta_resource_field(name: str, version: str, sotw_field: bytes) -> bytes:
    """A `Resource` (name, version, the Any) as the `resources` field of a Delta response, made
    from the resource's SotW field: an Any in field 2 is the same bytes in both messages, so
    the Delta form needs no Any and no serialization (written in field-number order, as
    protobuf's deterministic serialization does)."""
    payload = _string(_RESOURCE_VERSION, version) + sotw_field + _string(_RESOURCE_NAME, name)
    return length_delimited(_RESOURCES, payload)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A serialized response, made when it is written. `fields` is never modified (a snapshot's
    mapping view or a list of its parts)."""

    head: bytes
    fields: Collection[bytes]
    tail: bytes
    size: int

    def data(self) -> bytes:
        return b"".join(itertools.chain((self.head,), self.fields, (self.tail,)))


def _encoded(
    head: bytes, fields: Collection[bytes], tail: bytes, fields_size: int | None = None
) -> Encoded:
    if fields_size is None:
        fields_size = sum(map(len, fields))
    return Encoded(head, fields, tail, len(head) + fields_size + len(tail))


def sotw_response(
    version: str,
    fields: Collection[bytes],
    type_url: str,
    nonce: str,
    fields_size: int | None = None,
) -> Encoded:
    """A DiscoveryResponse. `fields_size`: the bytes of `fields` when known already (all of a
    snapshot's type: `TypeSnapshot.sotw_size`), else they are counted."""
    tail = _string(_TYPE_URL, type_url) + _string(_NONCE, nonce)
    return _encoded(_string(_VERSION_INFO, version), fields, tail, fields_size)


def delta_response(
    version: str, fields: Collection[bytes], type_url: str, removed: Sequence[str], nonce: str
) -> Encoded:
    """A DeltaDiscoveryResponse (`removed`: the names in `removed_resources`)."""
    tail = _string(_TYPE_URL, type_url) + _string(_NONCE, nonce)
    tail += b"".join(length_delimited(_REMOVED_RESOURCES, n.encode()) for n in removed)
    return _encoded(_string(_VERSION_INFO, version), fields, tail)


def passthrough(response: bytes) -> bytes:
    """The gRPC response serializer of the ADS methods: responses are serialized already."""
    return response
