"""The synthetic mesh of the scale benchmark, written as a config directory, and the changes the
benchmark makes to it.

Istio's load-test shape: services spread evenly over namespaces (one of them, `shared`, holds
services every namespace may call), two ports per service (HTTP 8080, TCP 9000), a
VirtualService per service, `endpoints` pods per service (replicas: same labels). Proxies are the
pods (when there are more proxies than pods, the rest are client pods without a service). With
`sidecars`, each namespace has Istio's recommended `Sidecar`: egress to `./*` and `shared/*`.

Files: `<ns>/namespace.yaml` (Namespace, Sidecar), `<ns>/services.yaml` (Services, Pods),
`<ns>/routing.yaml` (VirtualServices). A change rewrites one file atomically (rename).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SHARED = "shared"
HTTP_PORT = 8080
TCP_PORT = 9000


@dataclass(frozen=True)
class Shape:
    services: int = 1000
    namespaces: int = 50
    proxies: int = 2000
    endpoints: int = 2  # pods per service
    sidecars: bool = True


@dataclass(frozen=True)
class SimProxy:
    pod: str
    namespace: str
    ip: str
    labels: dict[str, str]

    @property
    def key(self) -> str:
        return f"{self.pod}.{self.namespace}"

    def spec(self) -> dict[str, object]:
        node = f"sidecar~{self.ip}~{self.pod}.{self.namespace}~{self.namespace}.svc.cluster.local"
        return {"node": node, "pod": self.pod, "namespace": self.namespace, "ip": self.ip,
                "labels": self.labels}  # fmt: skip


def _ip(prefix: str, index: int) -> str:
    return f"{prefix}.{index // 250 % 250}.{index % 250 + 1}"


@dataclass
class Mesh:
    """The generated mesh: who is where, and the per-namespace file contents."""

    shape: Shape
    root: Path
    namespaces: list[str] = field(default_factory=list)
    services: dict[str, list[str]] = field(default_factory=dict)  # namespace -> service names
    proxies: list[SimProxy] = field(default_factory=list)
    timeouts: dict[tuple[str, str], int] = field(default_factory=dict)  # VS timeout, seconds
    not_ready: set[tuple[str, str]] = field(default_factory=set)  # (namespace, pod)
    _pod_ips: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def generate(cls, shape: Shape, root: Path) -> Mesh:
        mesh = cls(shape, root)
        mesh.namespaces = [SHARED] + [f"ns{n:02d}" for n in range(1, shape.namespaces)]
        per_ns, extra = divmod(shape.services, shape.namespaces)
        counter = 0
        for index, namespace in enumerate(mesh.namespaces):
            count = per_ns + (1 if index < extra else 0)
            mesh.services[namespace] = [f"svc{counter + i:04d}" for i in range(count)]
            counter += count
        pod_index = 0
        proxies_per_ns, proxies_extra = divmod(shape.proxies, shape.namespaces)
        for index, namespace in enumerate(mesh.namespaces):
            pods = [
                (f"{service}-{r}", {"app": service})
                for service in mesh.services[namespace]
                for r in range(shape.endpoints)
            ]
            wanted = proxies_per_ns + (1 if index < proxies_extra else 0)
            pods += [(f"client-{k}", {"app": "client"}) for k in range(max(0, wanted - len(pods)))]
            for position, (pod, labels) in enumerate(pods):
                ip = _ip("10.244", pod_index)
                pod_index += 1
                mesh._pod_ips[(namespace, pod)] = ip
                if position < wanted:
                    mesh.proxies.append(SimProxy(pod, namespace, ip, labels))
            for service in mesh.services[namespace]:
                mesh.timeouts[(namespace, service)] = 10
        for namespace in mesh.namespaces:
            mesh.write_namespace(namespace)
        return mesh

    # files --------------------------------------------------------------------------------

    def write_namespace(self, namespace: str) -> None:
        directory = self.root / namespace
        directory.mkdir(parents=True, exist_ok=True)
        header = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"
        if self.shape.sidecars:
            header += (
                "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\n"
                f"metadata: {{name: default, namespace: {namespace}}}\n"
                f'spec:\n  egress:\n  - hosts: ["./*", "{SHARED}/*"]\n'
            )
        _replace(directory / "namespace.yaml", header)
        self.write_services(namespace)
        self.write_routing(namespace)

    def _service_index(self, namespace: str, service: str) -> int:
        return int(service.removeprefix("svc"))

    def write_services(self, namespace: str) -> None:
        documents = []
        for service in self.services[namespace]:
            vip = _ip("10.96", self._service_index(namespace, service))
            documents.append(
                "apiVersion: v1\nkind: Service\n"
                f"metadata: {{name: {service}, namespace: {namespace}}}\n"
                f"spec:\n  clusterIP: {vip}\n  selector: {{app: {service}}}\n"
                f"  ports:\n  - {{name: http, port: {HTTP_PORT}, targetPort: {HTTP_PORT}}}\n"
                f"  - {{name: tcp-data, port: {TCP_PORT}, targetPort: {TCP_PORT}}}\n"
            )
        for (pod_namespace, pod), ip in self._pod_ips.items():
            if pod_namespace != namespace:
                continue
            app = pod.rsplit("-", 1)[0]
            ready = "False" if (namespace, pod) in self.not_ready else "True"
            documents.append(
                f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: {namespace}, "
                f"labels: {{app: {app}}}}}\n"
                f"spec:\n  containers: [{{name: app, image: app, ports: [{{containerPort: "
                f"{HTTP_PORT}}}, {{containerPort: {TCP_PORT}}}]}}]\n"
                f"status:\n  podIP: {ip}\n  phase: Running\n"
                f"  conditions: [{{type: Ready, status: '{ready}'}}]\n"
            )
        _replace(self.root / namespace / "services.yaml", "---\n".join(documents))

    def write_routing(self, namespace: str) -> None:
        documents = [
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            f"metadata: {{name: {service}, namespace: {namespace}}}\n"
            f"spec:\n  hosts: [{service}]\n  http:\n"
            f"  - route: [{{destination: {{host: {service}, port: {{number: {HTTP_PORT}}}}}}}]\n"
            f"    timeout: {self.timeouts[(namespace, service)]}s\n"
            for service in self.services[namespace]
        ]
        _replace(self.root / namespace / "routing.yaml", "---\n".join(documents))

    # changes ------------------------------------------------------------------------------

    def change_virtual_service(self, namespace: str, service: str) -> None:
        """A new route timeout for one service: only its route changes."""
        self.timeouts[(namespace, service)] += 1
        self.write_routing(namespace)

    def flip_readiness(self, namespace: str, pod: str) -> None:
        """A pod turns not ready (or ready again): only its service's endpoints change."""
        self.not_ready ^= {(namespace, pod)}
        self.write_services(namespace)

    def can_see(self, namespace: str) -> set[str]:
        """The proxies that can reach a service of `namespace` (the ones a change to it may
        concern): with Sidecars, its own namespace, or everyone for the shared one."""
        if not self.shape.sidecars or namespace == SHARED:
            return {p.key for p in self.proxies}
        return {p.key for p in self.proxies if p.namespace == namespace}


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
