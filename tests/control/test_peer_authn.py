"""PeerAuthentication resolution (Istio's ComposePeerAuthentication), as a table: levels,
precedence, UNSET inheritance, port level, the root namespace's special cases."""

from __future__ import annotations

from typing import Any

import pytest

from control.config.mesh_config import MeshConfig
from control.plane.model.build import build_state
from control.plane.model.state import Document
from control.plane.xds.translate.peer_authn import MtlsMode, PeerAuthnIndex, PeerMtls

ROOT = "istio-system"
P, S, D = MtlsMode.PERMISSIVE, MtlsMode.STRICT, MtlsMode.DISABLE


def pa(
    name: str,
    namespace: str,
    mode: str | None = None,
    selector: dict[str, str] | None = None,
    ports: dict[int, str] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    if ports is not None:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
    metadata = {"name": name, "namespace": namespace}
    if created:
        metadata["creationTimestamp"] = created
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": metadata,
        "spec": spec,
    }


def resolve(
    docs: list[dict[str, Any]], namespace: str = "shop", labels: dict[str, str] | None = None
) -> PeerMtls:
    state = build_state([Document(str(i), d) for i, d in enumerate(docs)], MeshConfig())
    assert not [p for p in state.problems if p.severity == "error"], state.problems
    index = PeerAuthnIndex(state.other_config, state.mesh.root_namespace)
    return index.resolve(namespace, labels if labels is not None else {"app": "web"})


WEB = {"app": "web"}

# (case, policies, expected workload mode, expected modes of ports 8080 and 9090)
TABLE: list[tuple[str, list[dict[str, Any]], MtlsMode, tuple[MtlsMode, MtlsMode]]] = [
    ("no policy: PERMISSIVE", [], P, (P, P)),
    ("mesh STRICT", [pa("m", ROOT, "STRICT")], S, (S, S)),
    ("namespace over mesh", [pa("m", ROOT, "STRICT"), pa("n", "shop", "DISABLE")], D, (D, D)),
    (
        "workload over namespace",
        [pa("n", "shop", "STRICT"), pa("w", "shop", "PERMISSIVE", WEB)],
        P,
        (P, P),
    ),
    (
        "UNSET namespace inherits mesh",
        [pa("m", ROOT, "STRICT"), pa("n", "shop", "UNSET")],
        S,
        (S, S),
    ),
    ("no mtls field inherits", [pa("m", ROOT, "DISABLE"), pa("n", "shop")], D, (D, D)),
    (
        "UNSET workload inherits namespace",
        [pa("n", "shop", "STRICT"), pa("w", "shop", "UNSET", WEB)],
        S,
        (S, S),
    ),
    (
        "port level over workload level",
        [pa("w", "shop", "STRICT", WEB, {8080: "DISABLE"})],
        S,
        (D, S),
    ),
    (
        "port level UNSET inherits the workload's mode",
        [pa("n", "shop", "DISABLE"), pa("w", "shop", None, WEB, {8080: "UNSET", 9090: "STRICT"})],
        D,
        (D, S),
    ),
    ("selector not matching: ignored", [pa("w", "shop", "STRICT", {"app": "db"})], P, (P, P)),
    ("another namespace's policy: ignored", [pa("n", "other", "STRICT")], P, (P, P)),
    (
        "a root-namespace policy with a selector: ignored (as Istio)",
        [pa("w", ROOT, "STRICT", WEB)],
        P,
        (P, P),
    ),
    (
        "no timestamps: first by name among namespace-level",
        [pa("b", "shop", "STRICT"), pa("a", "shop", "DISABLE")],
        D,
        (D, D),
    ),
    (
        "oldest by creationTimestamp, whatever the names",
        [
            pa("a", "shop", "DISABLE", created="2026-02-01T00:00:00Z"),
            pa("b", "shop", "STRICT", created="2026-01-01T00:00:00Z"),
        ],
        S,
        (S, S),
    ),
    (
        "a policy with a timestamp before one without",
        [pa("a", "shop", "DISABLE"), pa("b", "shop", "STRICT", created="2026-01-01T00:00:00Z")],
        S,
        (S, S),
    ),
    (
        "oldest (first by name) among workload-level",
        [pa("z", "shop", "DISABLE", WEB), pa("y", "shop", "STRICT", {"app": "web"})],
        S,
        (S, S),
    ),
]


@pytest.mark.parametrize(
    ("policies", "mode", "ports"), [c[1:] for c in TABLE], ids=[c[0] for c in TABLE]
)
def test_resolution(
    policies: list[dict[str, Any]], mode: MtlsMode, ports: tuple[MtlsMode, MtlsMode]
) -> None:
    peer = resolve(policies)
    assert peer.mode is mode
    assert (peer.for_port(8080), peer.for_port(9090)) == ports


def test_a_workload_in_the_root_namespace_gets_the_mesh_policy_only() -> None:
    peer = resolve([pa("m", ROOT, "STRICT"), pa("w", ROOT, "DISABLE", WEB)], namespace=ROOT)
    assert peer.mode is S


def test_the_source_names_the_policy_that_set_each_mode() -> None:
    peer = resolve([pa("n", "shop", "STRICT"), pa("w", "shop", None, WEB, {8080: "DISABLE"})])
    assert str(peer.source) == "shop/n (namespace)"
    assert str(peer.mode_and_source(8080)[1]) == "shop/w (port)"
    assert str(resolve([]).source) == "default"


def test_port_level_without_selector_is_refused_as_by_istio() -> None:
    state = build_state(
        [Document("0", pa("n", "shop", "STRICT", None, {8080: "DISABLE"}))], MeshConfig()
    )
    assert any("portLevelMtls" in p.message for p in state.problems), state.problems
    assert PeerAuthnIndex(state.other_config, ROOT).resolve("shop", WEB).mode is P
