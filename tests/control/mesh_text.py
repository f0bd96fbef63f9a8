"""Mesh states written as YAML in a test: the documents as the file source parses them, and
Pods in the shape the translation reads (labels, IP, named container ports)."""

from __future__ import annotations

from control.config.loader import parse_text
from control.plane.model.build import build_state
from control.plane.model.state import MeshState


def state_of(text: str) -> MeshState:
    """The state of `text`; the test fails if a document is refused or the state has an error."""
    documents, problems = parse_text(text, "mesh.yaml")
    assert not problems
    state = build_state(documents)
    assert not [p for p in state.problems if p.severity == "error"], state.problems
    return state


def pod_yaml(
    name: str, namespace: str, ip: str, labels: dict[str, str], web_port: int | None = None
) -> str:
    """One Pod document; `web_port`: a container port named `web` (a named targetPort)."""
    spec = (
        f"spec: {{containers: [{{name: app, image: app, ports: "
        f"[{{name: web, containerPort: {web_port}}}]}}]}}\n"
        if web_port is not None
        else ""
    )
    return (
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, "
        f"labels: {labels}}}\n{spec}status: {{podIP: {ip}}}\n"
    )
