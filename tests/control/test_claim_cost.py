"""What a claim costs. A proxy's outbound translation (everything its scope sees: ~60 ms in a
1,000-service mesh) is memoized by its shape, and a proxy claims parts of its shape in its node
metadata: its capture ports always, its labels when no pod of its name is known. A client
cycling claims made one full translation per claim. Now neither claim reaches the outbound
half: the capture port only its one listener (`virtualOutbound`), a label value only when some
VirtualService match names it. Each proxy still gets exactly what translating it alone gives."""

from __future__ import annotations

import dataclasses

from control.plane.model.state import MeshState
from control.plane.xds.translate.proxy import CapturePorts, Proxy, parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import LISTENER, ROUTE
from control.plane.xds.translate.shared import MeshTranslation
from tests.control.mesh_text import pod_yaml, state_of
from tests.control.resource_bytes import on_the_wire

MESH = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: one}
spec: {clusterIP: 198.19.255.1, selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: one}
spec: {clusterIP: 198.19.255.2, selector: {app: api}, ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: one}
spec:
  hosts: [api]
  http:
  - match: [{sourceLabels: {app: web, version: v1}}]
    route: [{destination: {host: api}, weight: 100}]
    timeout: 3s
  - route: [{destination: {host: api}}]
"""


def _state() -> MeshState:
    return state_of(MESH + pod_yaml("web-1", "one", "198.18.0.1", {"app": "web"}))


def _proxy(pod: str, labels: dict[str, str] | None = None) -> Proxy:
    meta = {"LABELS": labels} if labels is not None else None
    return parse_node(f"sidecar~198.18.1.1~{pod}.one~one.svc.cluster.local", meta)


def test_a_claimed_capture_port_costs_its_listener_not_a_translation() -> None:
    state = _state()
    shared = MeshTranslation(state)
    base = _proxy("web-1")
    first = shared.for_proxy(base)
    for port in range(15100, 15140):
        claim = dataclasses.replace(base, capture=CapturePorts(port, 15006))
        resources = shared.for_proxy(claim)
        listener = resources.of(LISTENER)["virtualOutbound"]
        assert listener.address.socket_address.port_value == port  # type: ignore[attr-defined]
        assert on_the_wire(resources) == on_the_wire(translate(state, claim))
        assert resources.parts[0] is first.parts[0]  # the outbound half: the very same
    assert shared.translations == 1


def test_label_values_no_match_names_share_one_translation() -> None:
    state = _state()
    shared = MeshTranslation(state)
    claims = [_proxy(f"claimed-{n}", {"app": "web", "version": f"v{n}"}) for n in range(40)]
    for claim in claims:
        assert on_the_wire(shared.for_proxy(claim)) == on_the_wire(translate(state, claim))
    # `version: v1` is named by a match, so that claim routes otherwise: two translations.
    assert shared.translations == 2
    routes = [shared.for_proxy(claims[n]).of(ROUTE)["80"] for n in (0, 1)]
    timeouts = [
        {r.route.timeout.seconds for vh in table.virtual_hosts for r in vh.routes}  # type: ignore[attr-defined]
        for table in routes
    ]
    assert 3 not in timeouts[0]
    assert 3 in timeouts[1]
