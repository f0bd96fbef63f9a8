"""Per-proxy snapshots: the resources of one proxy, packed, versioned per type and per resource.

A type keeps its version when its content did not change, so a mesh change that touches only
routes pushes only routes. Each resource also carries a version of its own (a hash of its
bytes) for Delta xDS. Packing is shared: the same resource (a half of a translation shared by
many proxies: one bytes object, `Resources`) is packed, hashed and serialized as a response
field (`wire`) once, however many snapshots hold it and however many proxies it is sent to.
Snapshots are never modified after they are built.

What a packed resource keeps is only what responses are made of: its version and its SotW field
(the Any as a response's field). The Any itself is dropped once serialized, and the Delta field
is made from the SotW field the first time a Delta stream sends it (`PackedItem`): holding the
Any, the SotW and the Delta bytes of every resource of two pushes was ~16 MB of the control
plane's ~90 MB of translations at the scale benchmark's size (1,000 services, 2,000 proxies)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from control.plane.memo import IdentityMemo
from control.plane.views import Derived
from control.plane.xds.cache import wire
from control.plane.xds.translate.resources import PUSH_ORDER, Resources

# Resource versions are `<scheme>-<hash of the serialized resource>`: any process of this
# family computes the same version for the same bytes, so a proxy reconnecting with one of them
# (Delta's initial_resource_versions) really has that content. Other formats are never trusted.
RESOURCE_VERSION_SCHEME = "mz1"


def resource_version(serialized: bytes) -> str:
    """The version of a resource whose deterministic serialization is `serialized`."""
    digest = hashlib.blake2b(serialized, digest_size=10).hexdigest()
    return f"{RESOURCE_VERSION_SCHEME}-{digest}"


class PackedItem:
    """One packed resource: its version and its SotW field, serialized once; its Delta field is
    made from the SotW field on first use and kept (a State-of-the-World proxy never needs it).
    Shared by every snapshot that holds the resource, never modified but for that one field."""

    __slots__ = ("_delta_field", "name", "sotw_field", "version")

    def __init__(self, name: str, version: str, sotw_field: bytes) -> None:
        self.name = name
        self.version = version
        self.sotw_field = sotw_field
        self._delta_field: bytes | None = None

    @property
    def delta_field(self) -> bytes:
        if self._delta_field is None:
            self._delta_field = wire.delta_resource_field(self.name, self.version, self.sotw_field)
        return self._delta_field


def _delta_field(item: PackedItem) -> bytes:
    return item.delta_field


@dataclass(frozen=True, slots=True)
class TypeSnapshot:
    version: str
    digest: str
    resource_versions: Mapping[str, str]  # name -> resource version (Delta)
    # name -> the resource as a field of a response, serialized (shared by every snapshot)
    sotw_fields: Mapping[str, bytes]  # an Any in a DiscoveryResponse
    delta_fields: Mapping[str, bytes]  # a Resource (name, version, Any) in a Delta response
    sotw_size: int  # bytes of all the sotw_fields: a response with all of them needs no sum


@dataclass(frozen=True, slots=True)
class Snapshot:
    generation: int  # increases with every snapshot of this proxy
    types: Mapping[str, TypeSnapshot]
    resources: Resources  # the serialized resources, for config dumps
    changed_at: float  # monotonic time of the change that led here
    push: str = ""  # the push (its version) that produced this snapshot

    def version(self, type_url: str) -> str:
        return self.types[type_url].version


@dataclass(frozen=True, slots=True)
class PackedType:
    resource_versions: Mapping[str, str]
    digest: str
    sotw_fields: Mapping[str, bytes]
    delta_fields: Mapping[str, bytes]
    sotw_size: int


V = TypeVar("V")


class _Values(Collection[V]):
    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[Mapping[str, V], ...]) -> None:
        self._parts = parts

    def __iter__(self) -> Iterator[V]:
        return itertools.chain.from_iterable(p.values() for p in self._parts)

    def __len__(self) -> int:
        return sum(map(len, self._parts))

    def __contains__(self, value: object) -> bool:
        return any(value in p.values() for p in self._parts)


class Chained(Mapping[str, V]):
    """The packed halves of a proxy's resources as one mapping, in the halves' order, without
    copying them (names are distinct: `resources.merge`)."""

    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[Mapping[str, V], ...]) -> None:
        self._parts = parts

    def __getitem__(self, name: str) -> V:
        for part in self._parts:
            if name in part:
                return part[name]
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(name in part for part in self._parts)

    def __len__(self) -> int:
        return sum(map(len, self._parts))

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._parts)

    def values(self) -> _Values[V]:  # type: ignore[override]
        return _Values(self._parts)

    def items(self) -> Iterator[tuple[str, V]]:  # type: ignore[override]
        return itertools.chain.from_iterable(p.items() for p in self._parts)


def _combine(parts: list[dict[str, PackedType]]) -> dict[str, PackedType]:
    types: dict[str, PackedType] = {}
    for type_url in PUSH_ORDER:
        of = [part[type_url] for part in parts]
        digest = hashlib.sha256("\0".join(p.digest for p in of).encode()).hexdigest()
        types[type_url] = PackedType(
            Chained(tuple(p.resource_versions for p in of)),
            digest,
            Chained(tuple(p.sotw_fields for p in of)),
            Chained(tuple(p.delta_fields for p in of)),
            sum(p.sotw_size for p in of),
        )
    return types


class Packer:
    """Packs serialized resources into Any once: memoized by the bytes' identity for the
    current and the previous push (the halves a push did not re-translate keep their bytes)."""

    def __init__(self) -> None:
        self._items: IdentityMemo[bytes, PackedItem] = IdentityMemo()
        self._resources: IdentityMemo[Resources, dict[str, PackedType]] = IdentityMemo()
        # A type's collection shared by halves (`MeshTranslation._same`) is packed once.
        self._types: IdentityMemo[Mapping[str, bytes], PackedType] = IdentityMemo()

    def next_push(self) -> None:
        self._items.next_round()
        self._resources.next_round()
        self._types.next_round()

    def _one(self, type_url: str, name: str, serialized: bytes) -> PackedItem:
        """The Any is written around the kept bytes (`wire.packed`: what `Any.Pack(message,
        deterministic=True)` makes of the message they were serialized from), with no second
        serialization and no message."""
        found = self._items.find(serialized)
        if found is not None:
            return found[0]
        version = resource_version(serialized)
        sotw_field = wire.resource_field(wire.packed(type_url, serialized))
        return self._items.keep(serialized, PackedItem(name, version, sotw_field))

    def pack(self, resources: Resources) -> dict[str, PackedType]:
        return self._resources.get(resources, lambda: self._pack(resources))

    def _pack(self, resources: Resources) -> dict[str, PackedType]:
        if resources.parts:  # each half packed once, for every proxy that has it
            return _combine([self.pack(part) for part in resources.parts])
        return {t: self._pack_type(t, resources.serialized(t)) for t in PUSH_ORDER}

    def _pack_type(self, type_url: str, serialized: Mapping[str, bytes]) -> PackedType:
        found = self._types.find(serialized)
        if found is not None:
            return found[0]
        items: dict[str, PackedItem] = {}
        versions: dict[str, str] = {}
        sotw: dict[str, bytes] = {}
        digest = hashlib.sha256()
        for name, data in serialized.items():
            item = items[name] = self._one(type_url, name, data)
            versions[name], sotw[name] = item.version, item.sotw_field
            digest.update(name.encode() + b"\0" + item.version.encode() + b"\0")
        return self._types.keep(
            serialized,
            PackedType(
                MappingProxyType(versions), digest.hexdigest(), MappingProxyType(sotw),
                Derived(MappingProxyType(items), _delta_field), sum(map(len, sotw.values())),
            ),
        )  # fmt: skip


def build_snapshot(
    resources: Resources,
    previous: Snapshot | None,
    version: str,
    changed_at: float,
    packer: Packer | None = None,
) -> Snapshot:
    """A type whose content did not change keeps its version (it is not pushed again)."""
    packed = (packer or Packer()).pack(resources)
    types: dict[str, TypeSnapshot] = {}
    for type_url in PUSH_ORDER:
        content = packed[type_url]
        before = previous.types.get(type_url) if previous else None
        kept = before is not None and before.digest == content.digest
        type_version = before.version if kept and before else version
        types[type_url] = TypeSnapshot(
            type_version, content.digest, content.resource_versions,
            content.sotw_fields, content.delta_fields, content.sotw_size,
        )  # fmt: skip
    generation = previous.generation + 1 if previous else 1
    return Snapshot(generation, MappingProxyType(types), resources, changed_at, version)


def same_content(a: Snapshot | None, b: Snapshot) -> bool:
    return a is not None and all(a.types[t].digest == b.types[t].digest for t in PUSH_ORDER)
