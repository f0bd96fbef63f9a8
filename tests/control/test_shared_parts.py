"""Clusters, endpoints and outbound listeners are made once per state for every scope that sees
the same hosts, rules and VirtualServices (`MeshIndex.shared`). What a proxy gets must be what
translating it alone gives, also where scopes differ only in a rule (a DestinationRule in the
namespace that only one scope sees) or in a VirtualService's source labels."""

from __future__ import annotations

import dataclasses

from control.config.loader import parse_text
from control.plane.model.build import build_state
from control.plane.model.state import MeshState
from control.plane.xds.translate import resources
from control.plane.xds.translate.proxy import Proxy, parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import CLUSTER, LISTENER
from control.plane.xds.translate.shared import MeshTranslation
from tests.control.mesh_text import pod_yaml, state_of
from tests.control.resource_bytes import on_the_wire

MESH = """
apiVersion: v1
kind: Service
metadata: {name: a, namespace: one}
spec: {clusterIP: 198.19.255.1, selector: {app: a}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: two}
spec: {clusterIP: 198.19.255.2, selector: {app: b}, ports: [{name: tcp, port: 9000}]}
---
apiVersion: v1
kind: Service
metadata: {name: c, namespace: three}
spec: {clusterIP: 198.19.255.3, selector: {app: c}, ports: [{name: tcp, port: 9000}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b-here, namespace: one}
spec:
  host: b.two.svc.cluster.local
  exportTo: ["."]
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: c-split, namespace: three}
spec:
  hosts: [c.three.svc.cluster.local]
  tcp:
  - match: [{sourceLabels: {canary: "yes"}}]
    route: [{destination: {host: b.two.svc.cluster.local}}]
  - route: [{destination: {host: c.three.svc.cluster.local}}]
"""
PODS = [
    ("a-1", "one", "198.18.0.1", {"app": "a"}),
    ("a-2", "one", "198.18.0.2", {"app": "a", "canary": "yes"}),
    ("b-1", "two", "198.18.0.3", {"app": "b"}),
    ("c-1", "three", "198.18.0.4", {"app": "c"}),
    ("c-2", "three", "198.18.0.5", {"app": "c", "canary": "yes"}),
]


def _state(meshed: bool = False, extra: str = "") -> MeshState:
    """`meshed`: the pods carry the injector's `tlsMode` label (auto mTLS to them); `extra`:
    more documents."""
    tls_mode = {"security.istio.io/tlsMode": "istio"} if meshed else {}
    pods = "".join(pod_yaml(pod, ns, ip, labels | tls_mode) for pod, ns, ip, labels in PODS)
    return state_of(MESH + extra + pods)


def _proxies() -> list[Proxy]:
    return [
        parse_node(f"sidecar~{ip}~{pod}.{ns}~{ns}.svc.cluster.local", {"LABELS": labels})
        for pod, ns, ip, labels in PODS
    ]


def test_each_proxy_gets_what_translating_it_alone_gives() -> None:
    state = _state()
    shared = MeshTranslation(state)
    for proxy in _proxies():
        assert on_the_wire(shared.for_proxy(proxy)) == on_the_wire(translate(state, proxy)), (
            proxy.pod
        )


def test_parts_are_shared_only_where_their_inputs_are_alike() -> None:
    state = _state()
    shared = MeshTranslation(state)
    a1, a2, b1, c1, c2 = (shared.for_proxy(p).parts[0] for p in _proxies())
    # Only `one` sees its rule for b: its clusters are its own; `two` and `three` share theirs.
    assert a1.serialized(CLUSTER) is not b1.serialized(CLUSTER)
    assert b1.serialized(CLUSTER) is c1.serialized(CLUSTER)
    random = a1.of(CLUSTER)["outbound|9000||b.two.svc.cluster.local"]
    assert random.lb_policy == random.RANDOM
    # The canary's TCP listener for c goes to b: its listeners are its own, its clusters not.
    assert c2.serialized(LISTENER) is not c1.serialized(LISTENER)
    assert c2.serialized(CLUSTER) is c1.serialized(CLUSTER)
    assert b1.serialized(LISTENER) is c1.serialized(LISTENER)
    assert a2.serialized(CLUSTER) is a1.serialized(CLUSTER)


def _with_timeout(state: MeshState, seconds: int) -> MeshState:
    routing = f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: a-timeout, namespace: one}}
spec:
  hosts: [a.one.svc.cluster.local]
  http: [{{timeout: {seconds}s, route: [{{destination: {{host: a.one.svc.cluster.local}}}}]}}]
"""
    documents, problems = parse_text(routing, "routing.yaml")
    assert not problems
    added = build_state(documents).virtual_services
    return dataclasses.replace(state, virtual_services=(*state.virtual_services, *added))


def test_memoized_messages_do_not_pile_up_over_states() -> None:
    """Each state's translation keeps the messages the previous state made and it uses again
    (the same objects: packed once), and lets go of the others one state later."""
    resources.clear_caches()
    base = _state()
    proxies = _proxies()
    held = []
    previous: MeshTranslation | None = None
    for seconds in range(1, 9):
        translation = MeshTranslation(_with_timeout(base, seconds))
        out = [translation.for_proxy(p) for p in proxies]
        held.append(resources.memoized())
        if previous is not None:  # clusters did not change: the very same messages
            before = previous.for_proxy(proxies[0]).serialized(CLUSTER)
            assert all(before[n] is m for n, m in out[0].serialized(CLUSTER).items())
        previous = translation
    assert held[-1] <= held[1] + 5, held  # bounded by two states, not growing per state


def test_a_hosts_clusters_are_shared_only_by_proxies_alike_in_certificate() -> None:
    """A host's clusters are made once for every scope that sees it with the same rule; with a
    workload certificate (auto mTLS) they differ, so proxies with and without one, translated
    in either order, each get what translating them alone gives."""
    state = _state(meshed=True)
    for order in (False, True):
        shared = MeshTranslation(state)
        proxies = [
            dataclasses.replace(p, sds=(i % 2 == 0) != order) for i, p in enumerate(_proxies())
        ]
        for proxy in proxies:
            assert on_the_wire(shared.for_proxy(proxy)) == on_the_wire(translate(state, proxy)), (
                proxy.pod
            )
    tls = MeshTranslation(state).for_proxy(dataclasses.replace(_proxies()[2], sds=True))
    plain = MeshTranslation(state).for_proxy(_proxies()[2])
    name = "outbound|9000||c.three.svc.cluster.local"
    assert tls.of(CLUSTER)[name] != plain.of(CLUSTER)[name]  # the certificate matters


# Two TCP ports of `d` both routed to d:9000, two addresses of `ext`: listeners of either pair
# have the same destinations.
SAME_DESTINATIONS = """
---
apiVersion: v1
kind: Service
metadata: {name: d, namespace: three}
spec:
  clusterIP: 198.19.255.4
  ports: [{name: tcp-a, port: 9000}, {name: tcp-b, port: 9001}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: d-one-port, namespace: three}
spec:
  hosts: [d.three.svc.cluster.local]
  tcp: [{route: [{destination: {host: d.three.svc.cluster.local, port: {number: 9000}}}]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: three}
spec:
  hosts: [ext.example]
  addresses: [198.19.255.6, 198.19.255.7]
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 198.18.0.9}]
"""


EXPECTED_TCP = {
    f"198.19.255.{n}_{port}"
    for n, port in ((2, 9000), (3, 9000), (4, 9000), (4, 9001), (6, 9000), (7, 9000))
}


def test_tcp_listeners_with_the_same_destinations_stay_their_own() -> None:
    """A `<vip>_<port>` listener is made once per state for every scope that routes it alike:
    listeners of another address (`ext`'s two) or another port (`d`'s two, both to d:9000)
    with the same destinations are each their own."""
    state = _state(extra=SAME_DESTINATIONS)
    shared = MeshTranslation(state)
    for proxy in _proxies():
        listeners = shared.for_proxy(proxy).of(LISTENER)
        tcp = {n for n in listeners if n.startswith("198.19.255.")}
        assert tcp == EXPECTED_TCP, proxy.pod
        for name in tcp:
            address = listeners[name].address.socket_address
            assert f"{address.address}_{address.port_value}" == name
    canary = shared.for_proxy(_proxies()[4]).of(LISTENER)["198.19.255.3_9000"]
    assert "outbound|9000||b.two.svc.cluster.local" in str(canary)
