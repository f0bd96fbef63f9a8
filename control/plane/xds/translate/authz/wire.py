"""An RBAC config (`envoy.config.rbac.v3.RBAC`) serialized from its policies' serialized bytes,
as protobuf's deterministic serializer (upb) writes it: fields in number order, the `policies`
map's entries sorted by key bytes (a key that another one begins with after it), each entry its
key (1) and value (2). Thousands of policies are
then joined, not copied into one message and serialized again; the memos keep each policy as
bytes (one object, which the cyclic collector never walks). `tests/policy/test_units.py`
checks the bytes against protobuf's own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from control.plane.xds.protowire import length_delimited, varint

ACTIONS: Final = {"ALLOW": 0, "DENY": 1, "LOG": 2}  # envoy.config.rbac.v3.RBAC.Action


def entry(name: str, policy: bytes) -> bytes:
    """One `policies` map entry (name -> serialized Policy), field tag included: alone, it is
    also a whole serialized RBAC config holding that one policy."""
    return length_delimited(2, length_delimited(1, name.encode()) + length_delimited(2, policy))


def rbac_config(action: str, entries: Iterable[tuple[str, bytes]]) -> bytes:
    """`entries`: (name, `entry(name, ...)`); a later name wins, as in a dict."""
    by_name = {name.encode(): found for name, found in entries}
    code = ACTIONS[action]
    out = [b"\x08" + varint(code)] if code else []  # action (1): proto3, not written if 0
    # upb compares the common length, then puts the longer key first: as if every key ended
    # in a byte above all others (0xff, which UTF-8 never holds).
    out += (by_name[name] for name in sorted(by_name, key=lambda key: key + b"\xff"))
    return b"".join(out)
