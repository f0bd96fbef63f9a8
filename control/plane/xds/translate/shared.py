"""One state's translation for many proxies, with the work shared (Istio's push context).

A proxy's resources are an outbound half (keyed by its scope and source-matched labels), the
listener of its outbound capture port (keyed by the port and the scope's outbound mode: a proxy
claims the port, and a new claim must not cost a translation of everything its scope sees) and
an inbound half (keyed by its own ports). Each part is made once per key, however many proxies
share it, and the merged result (also keyed) is checked once. A new state reuses the
outbound halves of the previous one that its changes cannot touch (`successor`), so a change to
one service re-translates only for the scopes that can see that service."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from types import MappingProxyType

from control.config.mesh_config import OutboundMode
from control.plane.model.state import MeshState
from control.plane.xds.translate.changes import Change, diff
from control.plane.xds.translate.index import MeshIndex, ProxyInputs
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.proxy_resources import (
    capture_resources,
    inbound_resources,
    outbound_mode,
    outbound_resources,
)
from control.plane.xds.translate.resources import PUSH_ORDER, Resources, merge, next_generation
from control.plane.xds.translate.scope import Scope
from control.plane.xds.translate.telemetry import Telemetry

OutboundKey = tuple[Scope, tuple[tuple[str, str], ...], bool, tuple[str, ...]]
CaptureKey = tuple[OutboundMode | None, int]


class MeshTranslation:
    def __init__(self, state: MeshState) -> None:
        next_generation()  # messages of the state before the previous one are let go
        self.state = state
        self.index = MeshIndex(state)
        self.telemetry = Telemetry.of(state.mesh)
        self._outbound: dict[OutboundKey, Resources] = {}
        self._capture: dict[CaptureKey, Resources] = {}  # the outbound capture listener
        self._inbound: dict[Hashable, Resources] = {}
        # The inbound keys this state's proxies asked for: only those are carried over, so
        # halves of edited-away policies do not pile up.
        self._inbound_used: set[Hashable] = set()
        self._merged: dict[ProxyInputs, Resources] = {}
        self._by_content: dict[tuple[str, tuple[int, ...]], Mapping[str, bytes]] = {}
        self.translations = 0  # outbound halves computed by this object (the costly part)
        self.reused = 0  # outbound halves carried over from the previous state

    def inputs(self, proxy: Proxy) -> ProxyInputs:
        return self.index.inputs(proxy)

    def resources(self, inputs: ProxyInputs) -> Resources:
        self._inbound_used.add(inputs.inbound_key)
        merged = self._merged.get(inputs)
        if merged is None:
            outbound = self._outbound.get(inputs.outbound_key)
            if outbound is None:
                outbound = self._same(outbound_resources(self.index, inputs))
                self._outbound[inputs.outbound_key] = outbound
                self.translations += 1
            inbound = self._inbound.get(inputs.inbound_key)
            if inbound is None:
                inbound = inbound_resources(
                    inputs.inbound,
                    inputs.policy,
                    self.telemetry,
                    inputs.peer,
                    inputs.capture.inbound,
                )
                self._inbound[inputs.inbound_key] = inbound
            capture = self._capture.get(inputs.capture_key)
            if capture is None:
                capture = self._capture[inputs.capture_key] = capture_resources(
                    outbound_mode(self.state, inputs.scope), self.telemetry, inputs.capture.outbound
                )
            merged = self._merged[inputs] = merge(outbound, capture, inbound)
        return merged

    def _same(self, half: Resources) -> Resources:
        """`half`, with each of its per-type collections replaced by an equal one already made
        for another scope. Without Sidecars every namespace's scope sees the same services:
        their clusters, endpoints and listeners are then one collection (packed once, held
        once), only the route tables (short names are per namespace) are their own. Serialized
        resources are shared objects (`resources`), so equal collections hold the very same
        bytes; the kept collection keeps them alive, so their ids stay theirs."""
        by_type: dict[str, Mapping[str, bytes]] = {}
        for type_url in PUSH_ORDER:
            mapping = half.serialized(type_url)
            key = (type_url, tuple(map(id, mapping.values())))
            by_type[type_url] = self._by_content.setdefault(key, mapping)
        return Resources(MappingProxyType(by_type))

    def for_proxy(self, proxy: Proxy) -> Resources:
        return self.resources(self.inputs(proxy))

    @property
    def kept(self) -> int:
        """Merged translations this object holds (one per inputs asked for)."""
        return len(self._merged)

    def keep_only(self, proxies: Iterable[Proxy]) -> None:
        """Let go of every translation none of `proxies` (the connected ones) uses. The memos
        are keyed by what proxies claim (namespace, capture ports, labels: any client on the
        plaintext port may claim anything), and each new claim is a translation of everything
        its scope sees; kept for proxies long gone, they grew without bound. Resources stay
        shared (`resources`); what is let go is made again if asked for."""
        live = {self.inputs(proxy) for proxy in proxies}
        outbound_keys = {inputs.outbound_key for inputs in live}
        inbound_keys = {inputs.inbound_key for inputs in live}
        self._merged = {i: r for i, r in self._merged.items() if i in live}
        self._outbound = {k: h for k, h in self._outbound.items() if k in outbound_keys}
        capture_keys = {inputs.capture_key for inputs in live}
        self._capture = {k: c for k, c in self._capture.items() if k in capture_keys}
        self._inbound = {k: h for k, h in self._inbound.items() if k in inbound_keys}
        self._inbound_used &= inbound_keys
        held = {id(half.serialized(t)) for half in self._outbound.values() for t in PUSH_ORDER}
        self._by_content = {k: m for k, m in self._by_content.items() if id(m) in held}

    def fresh(self, state: MeshState) -> MeshTranslation:
        """A translation of `state` of the same kind, with nothing carried over."""
        return MeshTranslation(state)

    def successor(self, state: MeshState) -> tuple[MeshTranslation, Change]:
        """The translation of `state`, keeping the outbound halves `diff` says are unaffected."""
        following = self.fresh(state)
        change = diff(self.state, state, self.index.registry, following.index.registry)
        if not change.everything:
            kept = {k for k in self._outbound if not change.affects(k[0])}
            following._outbound = {k: self._outbound[k] for k in kept}
            # Capture listeners read only the mesh (any change to it is `everything`) and
            # their key: all stay valid.
            following._capture = dict(self._capture)
            following.reused = len(kept)
            following._inbound = {k: self._inbound[k] for k in self._inbound_used}
            # Same halves, same merged object: the cache sees `is` and skips the proxy.
            following._merged = {i: r for i, r in self._merged.items() if i.outbound_key in kept}
        return following, change
