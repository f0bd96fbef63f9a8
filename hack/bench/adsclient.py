"""Simulated sidecars for the scale benchmark: one process, many ADS streams (grpc.aio), each
behaving as Envoy does on the wire: subscribe to clusters and listeners, subscribe to the
endpoints of the EDS clusters and the routes the listeners name, ACK every response. State of
the World or Delta. Every response's size (the serialized bytes the server sent), receive time
and ACK time are recorded so the benchmark can tell who received a change and when it was
ACKed; times are CLOCK_MONOTONIC, comparable across the processes of one machine.

Driven by the benchmark over stdin/stdout, one JSON object a line:

    python hack/bench/adsclient.py --target 127.0.0.1:15010 --mode sotw < commands
    stdin:  {"proxies": [{"node": ..., "pod": ..., "namespace": ..., "labels": {...}}]}  (first)
            {"cmd": "status"} | {"cmd": "window", "since": T} | {"cmd": "exit"}
            {"cmd": "progress", "since": T, "keys": [expected "pod.ns", ...] (kept till the next)}
    stdout: one JSON answer per command
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SHORT = {CLUSTER: "c", ENDPOINT: "e", LISTENER: "l", ROUTE: "r"}
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_SERVICE = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.use_local_subchannel_pool", 1),  # one connection per proxy, as each Envoy has
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


class NameCache:
    """What a resource's bytes say that the client needs (an EDS cluster's name, the route
    names of a listener). Most resources are the same bytes for many proxies: parse once."""

    def __init__(self) -> None:
        self._eds: dict[bytes, str | None] = {}
        self._rds: dict[bytes, tuple[str, ...]] = {}

    def eds_name(self, value: bytes) -> str | None:
        if value not in self._eds:
            if len(self._eds) > 300_000:
                self._eds.clear()
            cluster = cluster_pb2.Cluster.FromString(value)
            eds = cluster.type == cluster_pb2.Cluster.EDS
            self._eds[value] = (
                (cluster.eds_cluster_config.service_name or cluster.name) if eds else None
            )
        return self._eds[value]

    def route_names(self, value: bytes) -> tuple[str, ...]:
        if value not in self._rds:
            if len(self._rds) > 100_000:
                self._rds.clear()
            listener = listener_pb2.Listener.FromString(value)
            chains = list(listener.filter_chains)
            if listener.HasField("default_filter_chain"):
                chains.append(listener.default_filter_chain)
            names = set()
            for chain in chains:
                for network_filter in chain.filters:
                    if network_filter.typed_config.type_url.endswith(_HCM):
                        hcm = hcm_pb2.HttpConnectionManager.FromString(
                            network_filter.typed_config.value
                        )
                        if hcm.HasField("rds"):
                            names.add(hcm.rds.route_config_name)
            self._rds[value] = tuple(sorted(names))
        return self._rds[value]


@dataclass
class Record:
    """What one proxy received: (receive time, ACK time, type letter, bytes) per response."""

    events: list[tuple[float, float, str, int]] = field(default_factory=list)
    acked_types: set[str] = field(default_factory=set)  # on the current stream
    connected: bool = False
    streams: int = 0
    error: str = ""


class SimulatedProxy:
    def __init__(self, spec: dict[str, Any], target: str, delta: bool, names: NameCache) -> None:
        self.spec = spec
        self.target = target
        self.delta = delta
        self.names = names
        self.record = Record()
        self.delta_memory = DeltaMemory()
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        self.node_sent = False

    @property
    def key(self) -> str:
        return f"{self.spec['pod']}.{self.spec['namespace']}"

    def _node(self, request: Any) -> None:
        if self.node_sent:
            return
        self.node_sent = True
        request.node.id = self.spec["node"]
        request.node.cluster = f"{self.spec['pod']}.{self.spec['namespace']}"
        metadata = struct_pb2.Struct()
        spec = self.spec
        metadata.update({"NAME": spec["pod"], "NAMESPACE": spec["namespace"],
                         "LABELS": spec["labels"], "INSTANCE_IPS": spec["ip"]})  # fmt: skip
        request.node.metadata.CopyFrom(metadata)

    async def run(self) -> None:
        channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        try:
            while True:
                try:
                    await self._stream(channel)
                except grpc.aio.AioRpcError as error:
                    self.record.error = f"{error.code().name}: {error.details()}"
                    if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                        return
                self.record.connected = False
                await asyncio.sleep(0.05 + random.random() * 0.2)
        finally:
            await channel.close()

    async def _stream(self, channel: grpc.aio.Channel) -> None:
        self.requests = asyncio.Queue()
        self.node_sent = False
        self.record.acked_types = set()
        kind = "DeltaAggregatedResources" if self.delta else "StreamAggregatedResources"
        response_type = (
            discovery_pb2.DeltaDiscoveryResponse if self.delta else discovery_pb2.DiscoveryResponse
        )
        call: Any = channel.stream_stream(
            _SERVICE + kind,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: (len(b), response_type.FromString(b)),
        )(_Requests(self.requests), wait_for_ready=True)
        handler = _DeltaStream(self) if self.delta else _SotwStream(self)
        handler.start()
        async for size, response in call:
            if not self.record.connected:
                self.record.connected = True
                self.record.streams += 1
                self.record.error = ""
            received = time.monotonic()
            handler.on_response(response)
            self.record.events.append(
                (received, time.monotonic(), SHORT.get(response.type_url, "?"), size)
            )
            self.record.acked_types.add(response.type_url)


class _Requests:
    """The request stream: a plain async iterator over a queue (an async generator would be
    closed by grpc from another task when the call ends, which it refuses while it waits)."""

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> Any:
        return await self.queue.get()


class _SotwStream:
    def __init__(self, proxy: SimulatedProxy) -> None:
        self.proxy = proxy
        self.subscribed: dict[str, tuple[str, ...]] = {}
        self.last: dict[str, tuple[str, str]] = {}  # type -> (version, nonce)

    def _send(self, type_url: str, names: Iterable[str] = ()) -> None:
        version, nonce = self.last.get(type_url, ("", ""))
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=version, response_nonce=nonce,
            resource_names=list(names),
        )  # fmt: skip
        self.proxy._node(request)
        self.proxy.requests.put_nowait(request)

    def start(self) -> None:
        self._send(CLUSTER)
        self._send(LISTENER)

    def on_response(self, response: Any) -> None:
        type_url = response.type_url
        self.last[type_url] = (response.version_info, response.nonce)
        names = self.subscribed.get(type_url, ())
        self._send(type_url, names)  # the ACK (the same names)
        if type_url == CLUSTER:
            found = (self.proxy.names.eds_name(r.value) for r in response.resources)
            self._follow(ENDPOINT, tuple(sorted(n for n in found if n)))
        elif type_url == LISTENER:
            routes = {n for r in response.resources for n in self.proxy.names.route_names(r.value)}
            self._follow(ROUTE, tuple(sorted(routes)))

    def _follow(self, type_url: str, names: tuple[str, ...]) -> None:
        if self.subscribed.get(type_url) != names:
            self.subscribed[type_url] = names
            self._send(type_url, names)


@dataclass
class DeltaMemory:
    """What a Delta client holds; it outlives a stream, so that a reconnecting client reports
    its resources' versions (`initial_resource_versions`) and its subscriptions, as Envoy does."""

    have: dict[str, dict[str, str]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )  # type -> name -> version
    eds: dict[str, str] = field(default_factory=dict)  # cluster resource name -> EDS name
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # listener -> route names
    subscribed: dict[str, set[str]] = field(default_factory=lambda: {ENDPOINT: set(), ROUTE: set()})


class _DeltaStream:
    def __init__(self, proxy: SimulatedProxy) -> None:
        self.proxy = proxy
        memory = proxy.delta_memory
        self.have, self.eds, self.routes = memory.have, memory.eds, memory.routes
        self.subscribed = memory.subscribed

    def _send(self, type_url: str, **fields: Any) -> None:
        request = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, **fields)
        self.proxy._node(request)
        self.proxy.requests.put_nowait(request)

    def start(self) -> None:
        for type_url in (CLUSTER, LISTENER):
            self._send(type_url, initial_resource_versions=self.have[type_url])
        for type_url in (ENDPOINT, ROUTE):
            if self.subscribed[type_url]:
                self._send(type_url, resource_names_subscribe=sorted(self.subscribed[type_url]),
                           initial_resource_versions=self.have[type_url])  # fmt: skip

    def on_response(self, response: Any) -> None:
        type_url = response.type_url
        have = self.have[type_url]
        for name in response.removed_resources:
            have.pop(name, None)
            self.eds.pop(name, None)
            self.routes.pop(name, None)
        for resource in response.resources:
            have[resource.name] = resource.version
            if type_url == CLUSTER:
                eds = self.proxy.names.eds_name(resource.resource.value)
                if eds:
                    self.eds[resource.name] = eds
                else:
                    self.eds.pop(resource.name, None)
            elif type_url == LISTENER:
                self.routes[resource.name] = self.proxy.names.route_names(resource.resource.value)
        self._send(type_url, response_nonce=response.nonce)  # the ACK
        if type_url == CLUSTER:
            self._follow(ENDPOINT, set(self.eds.values()))
        elif type_url == LISTENER:
            self._follow(ROUTE, {n for names in self.routes.values() for n in names})

    def _follow(self, type_url: str, wanted: set[str]) -> None:
        current = self.subscribed[type_url]
        added, removed = sorted(wanted - current), sorted(current - wanted)
        if added or removed:
            self.subscribed[type_url] = set(wanted)
            self._send(type_url, resource_names_subscribe=added,
                       resource_names_unsubscribe=removed)  # fmt: skip


def status(proxies: list[SimulatedProxy], delta: bool) -> dict[str, Any]:
    """`ready`: proxies whose current stream ACKed every type (SotW: each type is always
    answered) or, Delta, clusters and listeners: a reconnecting Delta client that already holds
    the current endpoints and routes (same versions) is rightly sent none."""
    errors = collections.Counter(p.record.error for p in proxies if p.record.error)
    last = max((p.record.events[-1][1] for p in proxies if p.record.events), default=0.0)
    required = {CLUSTER, LISTENER} if delta else set(SHORT)
    ready = sum(required <= p.record.acked_types for p in proxies)
    return {
        "connected": sum(p.record.connected for p in proxies),
        "ready": ready,
        "last": last,
        "errors": dict(errors.most_common(3)),
        "unimplemented": sum(p.record.error.startswith("UNIMPLEMENTED") for p in proxies),
    }


def progress(proxies: list[SimulatedProxy], since: float, expected: set[str]) -> dict[str, Any]:
    """How far a change got: proxies that received something since `since` (of them, the
    expected ones) and the time of the latest receive or ACK."""
    touched = expected_touched = 0
    last = 0.0
    for proxy in proxies:
        events = proxy.record.events
        if events and events[-1][0] >= since:
            touched += 1
            expected_touched += proxy.key in expected
            last = max(last, events[-1][1])
    return {"touched": touched, "expected": expected_touched, "last": last}


def window(proxies: list[SimulatedProxy], since: float) -> dict[str, Any]:
    """Per proxy that received anything since `since`: [responses, bytes, first receive,
    last ACK, type letters]."""
    out: dict[str, Any] = {}
    for proxy in proxies:
        events = [e for e in proxy.record.events if e[0] >= since]
        if events:
            key = proxy.key
            types = "".join(sorted({e[2] for e in events}))
            out[key] = [len(events), sum(e[3] for e in events), events[0][0],
                        max(e[1] for e in events), types]  # fmt: skip
    return out


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)  # the first line lists the proxies
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    first = json.loads(await reader.readline())
    names = NameCache()
    proxies = [
        SimulatedProxy(s, args.target, args.mode == "delta", names) for s in first["proxies"]
    ]
    tasks = [asyncio.create_task(p.run()) for p in proxies]
    expected: set[str] = set()
    try:
        while line := await reader.readline():
            command = json.loads(line)
            if command["cmd"] == "status":
                answer = status(proxies, args.mode == "delta")
            elif command["cmd"] == "progress":
                if "keys" in command:
                    expected = set(command["keys"])
                answer = progress(proxies, float(command["since"]), expected)
            elif command["cmd"] == "window":
                answer = window(proxies, float(command["since"]))
            else:
                break
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="host:port of the ADS server")
    parser.add_argument("--mode", choices=("sotw", "delta"), default="sotw")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
