"""Per-proxy snapshots: the resources of one proxy, packed once, versioned per type.

A type keeps its version when its content did not change, so a mesh change that touches only
routes pushes only routes. Snapshots are never modified after they are built."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.protobuf import any_pb2

from control.xds.translate.resources import PUSH_ORDER, Resources


@dataclass(frozen=True, slots=True)
class TypeSnapshot:
    version: str
    resources: Mapping[str, any_pb2.Any]  # name -> packed resource
    digest: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    generation: int  # increases with every snapshot of this proxy
    types: Mapping[str, TypeSnapshot]
    resources: Resources  # the messages, for config dumps
    changed_at: float  # monotonic time of the change that led here

    def version(self, type_url: str) -> str:
        return self.types[type_url].version


def _pack(resources: Resources, type_url: str) -> tuple[dict[str, any_pb2.Any], str]:
    packed: dict[str, any_pb2.Any] = {}
    digest = hashlib.sha256()
    for name, message in resources.of(type_url).items():
        item = any_pb2.Any()
        item.Pack(message, deterministic=True)
        packed[name] = item
        digest.update(name.encode() + b"\0" + item.value + b"\0")
    return packed, digest.hexdigest()


def build_snapshot(
    resources: Resources, previous: Snapshot | None, version: str, changed_at: float
) -> Snapshot:
    types: dict[str, TypeSnapshot] = {}
    for type_url in PUSH_ORDER:
        packed, digest = _pack(resources, type_url)
        before = previous.types.get(type_url) if previous else None
        kept = before is not None and before.digest == digest
        type_version = before.version if kept and before else version
        types[type_url] = TypeSnapshot(type_version, MappingProxyType(packed), digest)
    generation = previous.generation + 1 if previous else 1
    return Snapshot(generation, MappingProxyType(types), resources, changed_at)


def same_content(a: Snapshot | None, b: Snapshot) -> bool:
    return a is not None and all(a.types[t].digest == b.types[t].digest for t in PUSH_ORDER)
