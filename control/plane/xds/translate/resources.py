"""Envoy resources: the type URLs, the per-type collection a translation produces, and the
conversion from protobuf-JSON dicts (which checks every field name).

A translation keeps each resource as its deterministic serialization (what `Any.Pack(message,
deterministic=True)` puts in `value`), not as a parsed message: the wire needs only the bytes, and
parsed (upb) messages cost ~4x their size in memory (the scale benchmark's 7,000 resources: 4.7 MB
serialized, ~20 MB parsed). What reads a resource's fields (the consistency check, config dumps)
parses it on demand (`Resources.of`)."""

from __future__ import annotations

import hashlib
import heapq
import marshal
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

# Every message type the translation puts in an Any must be registered before parsing.
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.config.trace.v3 import opentelemetry_pb2  # noqa: F401
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
from envoy.extensions.access_loggers.stats.v3 import stats_pb2  # noqa: F401
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.header_to_metadata.v3 import (
    header_to_metadata_pb2,  # noqa: F401
)
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2  # noqa: F401
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,  # noqa: F401
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.tracers.opentelemetry.resource_detectors.v3 import (
    environment_resource_detector_pb2,  # noqa: F401
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format
from google.protobuf.message import Message
from xds.type.v3 import typed_struct_pb2  # noqa: F401

from control.plane.views import Derived
from control.plane.xds.translate.protodict import to_message

LISTENER: Final = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER: Final = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE: Final = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ENDPOINT: Final = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET: Final = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"  # noqa: S105
# The order a push follows (make before break): clusters and their endpoints before the
# listeners and routes that point at them. Secrets (DestinationRule `credentialName`) come
# last, as Istio sends them: a cluster that names one warms until it arrives.
PUSH_ORDER: Final = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
SHORT_NAMES: Final = {CLUSTER: "cds", ENDPOINT: "eds", LISTENER: "lds", ROUTE: "rds", SECRET: "sds"}
# What a config dump shows of a private key (the control plane's debug page, golden files).
REDACTED: Final = "[redacted]"

_MESSAGES: Final[dict[str, type[Message]]] = {
    LISTENER: listener_pb2.Listener,
    CLUSTER: cluster_pb2.Cluster,
    ROUTE: route_pb2.RouteConfiguration,
    ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    SECRET: secret_pb2.Secret,
}


def resource_name(type_url: str, message: Message) -> str:
    field = "cluster_name" if type_url == ENDPOINT else "name"
    return str(getattr(message, field))


def serialize(message: Message) -> bytes:
    """A resource as a translation keeps it and an Any carries it (deterministic: equal
    messages, equal bytes, equal resource versions)."""
    return message.SerializeToString(deterministic=True)


# A resource as kept: its name and its deterministic serialization.
Named = tuple[str, bytes]


class MergedView(Mapping[str, bytes]):
    """Name -> resource mappings with distinct names, each sorted by name, seen as one sorted
    mapping without copying them: a proxy's resources are a shared outbound half (thousands
    of resources in a mesh without Sidecars) and a small inbound half of its own."""

    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[Mapping[str, bytes], ...]) -> None:
        self._parts = parts

    def __getitem__(self, name: str) -> bytes:
        for part in self._parts:
            found = part.get(name)
            if found is not None:
                return found
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(name in part for part in self._parts)

    def __len__(self) -> int:
        return sum(map(len, self._parts))

    def __iter__(self) -> Iterator[str]:
        return heapq.merge(*self._parts)


_EMPTY: Final[Mapping[str, bytes]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Resources:
    """type URL -> resource name -> serialized resource, sorted by name. Treat as immutable.
    Equal resources made alike are one shared bytes object (`from_dicts`), which packing
    memoizes by identity. A merge of halves keeps them (`parts`), so what is derived from a
    half (packing, the consistency check) is derived once for every proxy that has it."""

    by_type: Mapping[str, Mapping[str, bytes]]
    parts: tuple[Resources, ...] = ()

    def serialized(self, type_url: str) -> Mapping[str, bytes]:
        """name -> the resource's deterministic serialization (the kept, shared objects)."""
        return self.by_type.get(type_url, _EMPTY)

    def of(self, type_url: str) -> Mapping[str, Message]:
        """name -> the resource parsed when read, for what reads fields: a new message at every
        read, owned by the reader (modifying it changes nothing kept)."""
        return Derived(self.serialized(type_url), _MESSAGES[type_url].FromString)

    @classmethod
    def of_serialized(cls, items: Mapping[str, Iterable[Named]]) -> Resources:
        by_type: dict[str, Mapping[str, bytes]] = {}
        for type_url in PUSH_ORDER:
            named = dict(items.get(type_url, ()))  # a later one of a name wins
            by_type[type_url] = MappingProxyType(dict(sorted(named.items())))
        return cls(MappingProxyType(by_type))

    @classmethod
    def of_messages(cls, items: Mapping[str, Iterable[Message]]) -> Resources:
        return cls.of_serialized(
            {t: [(resource_name(t, m), serialize(m)) for m in ms] for t, ms in items.items()}
        )

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """The canonical JSON (proto field names), as golden files and config dumps show it.
        Secrets only when there are some, their private keys redacted."""
        dump = {
            SHORT_NAMES[type_url]: [
                json_format.MessageToDict(m, preserving_proto_field_name=True)
                for m in self.of(type_url).values()
            ]
            for type_url in PUSH_ORDER
        }
        if not dump[SHORT_NAMES[SECRET]]:
            del dump[SHORT_NAMES[SECRET]]
        for secret in dump.get(SHORT_NAMES[SECRET], ()):
            if "private_key" in secret.get("tls_certificate", {}):
                secret["tls_certificate"]["private_key"] = {"inline_string": REDACTED}
        return dump


class TranslationError(ValueError):
    """A translated resource that is not valid protobuf: a bug in translation, not user input."""


_VIRTUAL_HOST: Final = "virtual_host"  # a part of a RouteConfiguration, parsed on its own
_PARTS: Final[dict[str, type[Message]]] = {
    **_MESSAGES,
    _VIRTUAL_HOST: route_components_pb2.VirtualHost,
}


# A memo key: the type URL and the digest of the resource's content (`_content`).
_Key = tuple[str, bytes]
K = TypeVar("K", bound=Hashable)


class _Generations(Generic[K]):
    """Content -> resource, kept for two generations (a generation: one mesh state's
    translation; `next_generation`): what the new state shares with the previous one is found
    again and carried on, the rest is let go one state later. An LRU of a fixed size kept the
    resources of many past states instead (without Sidecars each change made 50 route tables of
    1,000 virtual hosts: the process grew by ~100 MB per change until the LRU was full).
    `limit` bounds a generation that no state change ends (many proxies translated alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._current: dict[K, Named] = {}
        self._previous: dict[K, Named] = {}

    def get(self, key: K, make: Callable[[K], Named]) -> Named:
        found = self._current.get(key)
        if found is None:
            found = self._previous.pop(key, None)
            if found is None:
                if len(self._current) >= self.limit:
                    self.next_generation()
                found = make(key)
            self._current[key] = found
        return found

    def next_generation(self) -> None:
        self._previous, self._current = self._current, {}

    def clear(self) -> None:
        self._previous, self._current = {}, {}

    def generations(self) -> tuple[dict[K, Named], dict[K, Named]]:
        return self._current, self._previous


_RESOURCES_MEMO: Final = _Generations[_Key](100_000)
_ROUTES_MEMO: Final = _Generations[tuple[bytes, tuple[bytes, ...]]](5_000)


def _convert(type_url: str, data: Mapping[str, Any]) -> Named:
    message = to_message(data, _PARTS[type_url])
    return resource_name(type_url, message), serialize(message)


def _memoized(type_url: str, content: bytes, data: Mapping[str, Any]) -> Named:
    """Dict -> serialized resource: most resources are the same for many proxies and across
    pushes, and converting to protobuf is the slow part of a translation. Equal resources
    (built alike) are then one shared bytes object, packed and hashed once for every proxy."""
    return _RESOURCES_MEMO.get((type_url, content), lambda _: _convert(type_url, data))


def next_generation() -> None:
    """A new mesh state is being translated: memoized resources it does not use again are
    dropped at the one after (`MeshTranslation` calls it)."""
    _RESOURCES_MEMO.next_generation()
    _ROUTES_MEMO.next_generation()


def memoized() -> int:
    """How many resources the memo holds (both generations)."""
    return sum(len(m) for memo in (_RESOURCES_MEMO, _ROUTES_MEMO) for m in memo.generations())


def clear_caches() -> None:
    """Forget every memoized resource (benchmarks measure cold translations with it)."""
    _RESOURCES_MEMO.clear()
    _ROUTES_MEMO.clear()


def _route(data: Mapping[str, Any]) -> Named:
    rest = {k: v for k, v in data.items() if k != "virtual_hosts"}
    hosts: list[Mapping[str, Any]] = data["virtual_hosts"]
    digests = tuple(_content(v) for v in hosts)

    def make(key: tuple[bytes, tuple[bytes, ...]]) -> Named:
        name, head = _memoized(ROUTE, key[0], rest)
        config = route_pb2.RouteConfiguration.FromString(head)
        for digest, host in zip(digests, hosts, strict=True):
            config.virtual_hosts.add().MergeFromString(_memoized(_VIRTUAL_HOST, digest, host)[1])
        return name, serialize(config)

    return _ROUTES_MEMO.get((_content(rest), digests), make)


def _content(data: Mapping[str, Any]) -> bytes:
    """A memo key for a dict's content: the digest of its marshal form (format 2: no
    back-references, so the same content built alike gives the same bytes; 6x faster than JSON,
    which a large listener, 1,000 policies: 1.5 MB, felt). Keys are not sorted: equal content
    built in another order is only not shared (versions hash the resources' deterministic
    bytes, not these). The memos keep the 16-byte digest, not the marshal form (as large as the
    resource: ~8 MB of the translations at the scale benchmark's size); 128 bits make two
    contents with one digest as likely as never."""
    dumped = marshal.dumps(dict(data) if not isinstance(data, dict) else data, 2)
    return hashlib.blake2b(dumped, digest_size=16).digest()


def _parse(type_url: str, data: Mapping[str, Any]) -> Named:
    """A route table is parsed virtual host by virtual host: proxies of different scopes get
    different tables made mostly of the same virtual hosts, each parsed once."""
    if type_url != ROUTE or not data.get("virtual_hosts"):
        return _memoized(type_url, _content(data), data)
    return _route(data)


def from_dict(type_url: str, data: Mapping[str, Any]) -> Named:
    """One protobuf-JSON dict as a resource (its name, its bytes); unknown fields or bad values
    raise."""
    try:
        return _parse(type_url, data)
    except json_format.ParseError as error:
        raise TranslationError(f"{data.get('name', '?')}: {error}") from error


def from_dicts(items: Mapping[str, Iterable[dict[str, Any]]]) -> Resources:
    """Parse protobuf-JSON dicts into resources; unknown fields or bad values raise."""
    return Resources.of_serialized(
        {
            type_url: [from_dict(type_url, data) for data in dicts]
            for type_url, dicts in items.items()
        }
    )


def _overlap(parts: tuple[Resources, ...], type_url: str) -> bool:
    """Whether two parts name a resource of `type_url` alike (each name of a smaller part is
    looked up in the larger ones: a proxy's own half is the small one)."""
    maps = sorted((p.serialized(type_url) for p in parts), key=len)
    return any(
        name in other for i, small in enumerate(maps[:-1]) for name in small
        for other in maps[i + 1 :]
    )  # fmt: skip


def merge(*parts: Resources) -> Resources:
    """The resources of all `parts`, which keep being shared (`Resources.parts`). Parts that
    name a resource alike are copied into one instead, the later one winning."""
    if any(_overlap(parts, t) for t in PUSH_ORDER):
        return Resources.of_serialized(
            {t: [item for p in parts for item in p.serialized(t).items()] for t in PUSH_ORDER}
        )
    flat = tuple(leaf for part in parts for leaf in (part.parts or (part,)))
    by_type = {t: MergedView(tuple(p.serialized(t) for p in flat)) for t in PUSH_ORDER}
    return Resources(MappingProxyType(by_type), flat)
