"""One state's translation for many proxies, with the work shared (Istio's push context).

A proxy's resources are an outbound half (keyed by its scope and source-matched labels) and an
inbound half (keyed by its own ports). Each half is translated once per key, however many
proxies share it, and the merged result (also keyed) is checked once. A new state reuses the
outbound halves of the previous one that its changes cannot touch (`successor`), so a change to
one service re-translates only for the scopes that can see that service."""

from __future__ import annotations

from collections.abc import Hashable

from control.model.state import MeshState
from control.xds.translate.changes import Change, diff
from control.xds.translate.index import MeshIndex, ProxyInputs
from control.xds.translate.proxy import Proxy
from control.xds.translate.resources import Resources
from control.xds.translate.scope import Scope
from control.xds.translate.sidecar import inbound_resources, merge, outbound_resources
from control.xds.translate.telemetry import Telemetry

OutboundKey = tuple[Scope, tuple[tuple[str, str], ...]]


class MeshTranslation:
    def __init__(self, state: MeshState) -> None:
        self.state = state
        self.index = MeshIndex(state)
        self.telemetry = Telemetry.of(state.mesh)
        self._outbound: dict[OutboundKey, Resources] = {}
        self._inbound: dict[Hashable, Resources] = {}
        self._merged: dict[ProxyInputs, Resources] = {}
        self.translations = 0  # outbound halves computed by this object (the costly part)
        self.reused = 0  # outbound halves carried over from the previous state

    def inputs(self, proxy: Proxy) -> ProxyInputs:
        return self.index.inputs(proxy)

    def resources(self, inputs: ProxyInputs) -> Resources:
        merged = self._merged.get(inputs)
        if merged is None:
            outbound = self._outbound.get(inputs.outbound_key)
            if outbound is None:
                outbound = outbound_resources(self.index, inputs)
                self._outbound[inputs.outbound_key] = outbound
                self.translations += 1
            inbound = self._inbound.get(inputs.inbound)
            if inbound is None:
                inbound = inbound_resources(inputs.inbound, self.telemetry)
                self._inbound[inputs.inbound] = inbound
            merged = self._merged[inputs] = merge(outbound, inbound)
        return merged

    def for_proxy(self, proxy: Proxy) -> Resources:
        return self.resources(self.inputs(proxy))

    def alone(self, proxy: Proxy) -> Resources:
        """Translated for this proxy only, nothing shared or kept (the benchmark's baseline)."""
        inputs = self.inputs(proxy)
        self.translations += 1
        inbound = inbound_resources(inputs.inbound, self.telemetry)
        return merge(outbound_resources(self.index, inputs), inbound)

    def successor(self, state: MeshState) -> tuple[MeshTranslation, Change]:
        """The translation of `state`, keeping the outbound halves `diff` says are unaffected."""
        following = MeshTranslation(state)
        change = diff(self.state, state, self.index.registry, following.index.registry)
        if not change.everything:
            kept = {k for k in self._outbound if not change.affects(k[0])}
            following._outbound = {k: self._outbound[k] for k in kept}
            following.reused = len(kept)
            following._inbound = self._inbound
            # Same halves, same merged object: the cache sees `is` and skips the proxy.
            following._merged = {i: r for i, r in self._merged.items() if i.outbound_key in kept}
        return following, change
