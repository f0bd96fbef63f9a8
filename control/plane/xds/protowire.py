"""Protobuf's wire format, the two pieces the control plane writes by hand: a varint and a
length-delimited field. Used where messages are joined from bytes serialized once (the ADS
responses in `cache/wire.py`, the RBAC configs in `translate/authz/wire.py`) instead of being
copied into one message and serialized again. Pure."""

from __future__ import annotations

from typing import Final

_LEN: Final = 2  # wire type: length-delimited (bytes, string, message)
_SMALL: Final = tuple(bytes((i,)) for i in range(0x80))


def varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    """Field `number` (wire type 2: bytes, string, message) holding `payload`."""
    return varint(number << 3 | _LEN) + varint(len(payload)) + payload
