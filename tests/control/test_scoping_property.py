"""Push scoping is an optimisation, never a change of meaning: after any sequence of mesh
changes, what the scoped, shared translation hands each proxy equals a fresh translation of the
new state for that proxy alone, and a proxy the change analysis calls unaffected really has the
same resources as before."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from control.config.loader import parse_text
from control.plane.model.build import build_state
from control.plane.model.state import MeshState
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.shared import MeshTranslation

NAMESPACES = ("shop", "other", "shared")
PROXIES = [
    parse_node(f"sidecar~10.1.{i}.9~caller-{ns}.{ns}~{ns}.svc.cluster.local")
    for i, ns in enumerate((*NAMESPACES, "open"))
]
EGRESS = (None, '["./*", "shared/*"]', '["*/reviews.shop.svc.cluster.local"]', '["~/*"]')


def _mesh(world: dict[str, object]) -> str:
    docs: list[str] = []
    for index, ns in enumerate(NAMESPACES):
        for name in ("reviews", "ratings"):
            if not world[f"{ns}/{name}"]:
                continue
            port = 9080 if name == "reviews" else world["ratings_port"]
            docs.append(
                f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n"
                f"spec: {{clusterIP: 10.96.{index}.{len(docs) + 1}, selector: {{app: {name}}}, "
                f"ports: [{{name: http, port: {port}}}]}}"
            )
            for version in ("v1", "v2"):
                ready = "True" if world[f"{ns}/{name}/{version}"] else "False"
                docs.append(
                    f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}-{version}, "
                    f"namespace: {ns}, labels: {{app: {name}, version: {version}}}}}\n"
                    f"status: {{podIP: 10.244.{index}.{len(docs) + 1}, "
                    f"conditions: [{{type: Ready, status: '{ready}'}}]}}"
                )
    egress = world["egress"]
    if egress is not None:
        docs.append(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
            "metadata: {name: default, namespace: other}\n"
            f"spec: {{egress: [{{hosts: {egress}}}]}}"
        )
    if world["vs"]:
        export = ', exportTo: ["."]' if world["vs_local"] else ""
        weight = int(str(world["weight"]))
        docs.append(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            "metadata: {name: reviews, namespace: shop}\n"
            f"spec: {{hosts: [reviews]{export}, http: [{{route: ["
            f"{{destination: {{host: reviews, subset: v1}}, weight: {weight}}}, "
            f"{{destination: {{host: reviews, subset: v2}}, weight: {100 - weight}}}]}}]}}"
        )
    if world["dr"]:
        docs.append(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: reviews, namespace: shop}\n"
            "spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}, "
            "{name: v2, labels: {version: v2}}]}"
        )
    if world["entry"]:
        export = ', exportTo: ["."]' if world["entry_local"] else ""
        docs.append(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
            "metadata: {name: ext, namespace: shared}\n"
            f"spec: {{hosts: [api.example.com]{export}, location: MESH_EXTERNAL, "
            "resolution: DNS, ports: [{number: 443, name: tls, protocol: TLS}]}"
        )
    return "\n---\n".join(docs)


def _state(world: dict[str, object]) -> MeshState:
    documents, problems = parse_text(_mesh(world), "mesh.yaml")
    assert not problems
    state = build_state(documents)
    assert not [p for p in state.problems if p.severity == "error"], state.problems
    return state


_bools = {
    f"{ns}/{name}{suffix}": st.booleans()
    for ns in NAMESPACES
    for name in ("reviews", "ratings")
    for suffix in ("", "/v1", "/v2")
}
worlds = st.fixed_dictionaries(
    {
        **_bools,
        "ratings_port": st.sampled_from([9080, 9090]),
        "egress": st.sampled_from(EGRESS),
        "vs": st.booleans(),
        "vs_local": st.booleans(),
        "weight": st.sampled_from([0, 30, 80, 100]),
        "dr": st.booleans(),
        "entry": st.booleans(),
        "entry_local": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(worlds, min_size=2, max_size=4))
def test_scoped_translation_equals_a_fresh_one(sequence: list[dict[str, object]]) -> None:
    translation = MeshTranslation(_state(sequence[0]))
    before = {p.node_id: translation.for_proxy(p) for p in PROXIES}
    inputs = {p.node_id: translation.inputs(p) for p in PROXIES}
    for world in sequence[1:]:
        state = _state(world)
        translation, change = translation.successor(state)
        for proxy in PROXIES:
            scoped = translation.for_proxy(proxy)
            assert scoped == translate(state, proxy), proxy.node_id
            now = translation.inputs(proxy)
            if now == inputs[proxy.node_id] and not change.affects(now.scope):
                assert scoped == before[proxy.node_id], (proxy.node_id, change.describe())
            before[proxy.node_id], inputs[proxy.node_id] = scoped, now
