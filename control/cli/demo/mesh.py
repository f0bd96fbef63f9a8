"""Building the local mesh on pods that are network namespaces.

Works on any `PodHandle` (the demo's `control.cli.demo.netns`, the test harness's `Pod`): the
control plane runs in the bridge's namespace (reachable from every pod at its gateway address),
backends are plain HTTP servers, and a sidecar pod gets what the injector describes: `mizzen init`
(the redirect) and then `mizzen agent run` as root, which starts Envoy as the proxy uid 1337.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from control.cli.demo import sample
from control.cli.demo.identity import MeshIdentity
from injector import contract
from injector.redirect.spec import RedirectSpec

XDS_PORT = 15010
DEBUG_PORT = 15014


class PodHandle(Protocol):
    """The little the mesh needs from a pod: its address, and running commands inside it."""

    name: str
    ip: str

    def argv(
        self, cmd: Sequence[str], *, uid: int | None = None, gid: int | None = None
    ) -> list[str]: ...

    def popen(
        self, cmd: Sequence[str], *, uid: int | None = None, gid: int | None = None, **kwargs: Any
    ) -> subprocess.Popen[str]: ...


class MeshError(RuntimeError):
    """A mesh step failed; the message carries the process's own words."""


def mizzen(*args: str) -> list[str]:
    """`mizzen ARGS` through this Python, so a pod runs the same code as the caller."""
    return [sys.executable, "-m", "control.cli", *args]


def run_in(pod: PodHandle, cmd: Sequence[str], timeout: float = 60) -> str:
    done = subprocess.run(
        pod.argv(cmd), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode:
        words = done.stderr.strip() or done.stdout.strip()
        raise MeshError(f"in {pod.name}: {' '.join(cmd[-3:])} exited {done.returncode}: {words}")
    return done.stdout


def start_control_plane(
    pod: PodHandle,
    config_dir: Path,
    log: IO[str],
    xds_port: int = XDS_PORT,
    *,
    identity: MeshIdentity | None = None,
) -> subprocess.Popen[str]:
    """The plaintext xDS port listens on every address of the bridge's namespace (`--xds-address
    ::`: pods without identity dial it); with `identity`, the CA and the secure ports too."""
    cmd = mizzen(
        "control", "--config-dir", str(config_dir), "--xds-address", "::",
        "--xds-port", str(xds_port), "--debug-port", str(DEBUG_PORT),
        *(identity.control_args() if identity is not None else ()),
    )  # fmt: skip
    return pod.popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def start_backend(
    pod: PodHandle, version: str, port: int, timeout: float = 30
) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "control.cli.demo.backend", "--version", version]
    cmd += ["--port", str(port)]
    process = pod.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    started, _, _ = select.select([process.stdout], [], [], timeout)  # never hang on a mute one
    if not started or process.stdout.readline().strip() != "READY":
        process.kill()
        _, err = process.communicate(timeout=5)
        raise MeshError(f"backend {version} in {pod.name} did not start: {err.strip()}")
    return process


@dataclass(frozen=True)
class SidecarPod:
    """Who the pod is, as the injector would put it into the proxy container's environment."""

    namespace: str
    labels: Mapping[str, str]
    service_account: str

    def environment(self, pod: PodHandle, discovery: str) -> dict[str, str]:
        return {
            contract.ENV_POD_NAME: pod.name,
            contract.ENV_POD_NAMESPACE: self.namespace,
            contract.ENV_INSTANCE_IP: pod.ip,
            contract.ENV_SERVICE_ACCOUNT: self.service_account,
            contract.ENV_DISCOVERY_ADDRESS: discovery,
            contract.ENV_LABELS: json.dumps(dict(self.labels)),
            contract.ENV_WORKLOAD_NAME: pod.name,
            contract.ENV_INTERCEPTION_MODE: "REDIRECT",
        }


def start_sidecar(
    pod: PodHandle,
    identity: SidecarPod,
    discovery: str,
    log: IO[str],
    *,
    drain_duration: float = 1.0,
    base_env: Mapping[str, str] | None = None,
    mesh_identity: MeshIdentity | None = None,
    extra_args: Sequence[str] = (),
    redirect: RedirectSpec | None = None,
) -> subprocess.Popen[str]:
    """The init container's job (the redirect), then the proxy container's (the agent). With
    `mesh_identity`, the pod's token, root and CA address as well: the agent gets a certificate
    and Envoy dials `discovery` (the secure port) over mutual TLS. `redirect` replaces the
    default redirect; `extra_args` go to `mizzen agent run`."""
    # The agent runs as root here (it starts Envoy as the proxy uid); in a pod it runs as the
    # proxy uid, whose traffic the redirect never captures. So its calls to the CA are kept
    # out of the capture by port instead.
    spec = redirect or RedirectSpec()
    if mesh_identity is not None and redirect is None:
        spec = RedirectSpec(exclude_outbound_ports=(mesh_identity.ca_port,))
    run_in(pod, mizzen("init", *spec.to_args(), "--no-ipv6"))
    env = {**os.environ, **(base_env or {}), **identity.environment(pod, discovery)}
    if mesh_identity is not None:
        env.update(
            mesh_identity.environment(pod.name, identity.namespace, identity.service_account)
        )
    cmd = mizzen("agent", "run", f"--drain-duration={drain_duration}", "--concurrency=1")
    cmd += list(extra_args)
    return pod.popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def start_sample_workloads(
    host: PodHandle,
    client: PodHandle,
    v1: PodHandle,
    v2: PodHandle,
    *,
    client_log: IO[str],
    v2_log: IO[str],
    identity: MeshIdentity | None = None,
) -> None:
    """The sample's workloads (`sample`), the control plane being on `host`: both backends, and
    sidecars in the client and in v2. v1 stays a plain pod, so only v2's traffic also crosses
    an inbound capture (its backend sees Envoy's 127.0.0.6, v1's sees the client). With
    `identity`, the sidecars get certificates and use the secure xDS port."""
    start_backend(v1, "v1", sample.BACKEND_PORT)
    start_backend(v2, "v2", sample.BACKEND_PORT)
    discovery = f"{host.ip}:{XDS_PORT}"
    if identity is not None:
        if not identity.wait_for_ca():
            raise MeshError(f"the control plane made no CA in {identity.ca_dir} within 30s")
        discovery = identity.discovery
    client_id = SidecarPod(sample.NAMESPACE, sample.CLIENT_LABELS, "client")
    start_sidecar(client, client_id, discovery, client_log, mesh_identity=identity)
    v2_id = SidecarPod(sample.NAMESPACE, sample.echo_labels("v2", meshed=True), sample.SERVICE)
    start_sidecar(v2, v2_id, discovery, v2_log, mesh_identity=identity)


def wait_ready(pod: PodHandle, timeout: float = 30) -> None:
    """`mizzen agent wait` in the pod: readiness means Envoy has its config from the control
    plane."""
    cmd = mizzen(
        "agent", "wait", f"--readiness-port={contract.READINESS_PORT}", f"--timeout={timeout}"
    )
    run_in(pod, cmd, timeout=timeout + 30)


@dataclass(frozen=True)
class TrafficSummary:
    versions: Mapping[str, int]
    statuses: Mapping[str, int]
    peers: Mapping[str, int]  # "<version> from <address the backend saw>"
    errors: int
    first_error: str | None

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + self.errors


def _traffic_argv(mode: str, url: str, headers: Mapping[str, str]) -> list[str]:
    argv = [sys.executable, "-m", "control.cli.demo.traffic", mode, url]
    for name, value in headers.items():
        argv.append(f"--header={name}:{value}")
    return argv


def send_requests(
    pod: PodHandle, url: str, count: int, headers: Mapping[str, str] | None = None
) -> TrafficSummary:
    """`count` GETs from the pod (each on a new connection); where they landed."""
    argv = [*_traffic_argv("count", url, headers or {}), f"--count={count}"]
    data = json.loads(run_in(pod, argv, timeout=60 + count * 0.1))
    return TrafficSummary(
        versions=data["versions"],
        statuses=data["statuses"],
        peers=data["peers"],
        errors=data["errors"],
        first_error=data["first_error"],
    )


class RequestStream:
    """GETs sent back to back from a pod (`traffic stream`), their results read as they come:
    a client writing into a pipe nobody reads would stall once the pipe is full (after about
    800 requests), pausing the very traffic being measured."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.results: list[dict[str, Any]] = []
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"error": f"unreadable line {line.strip()[:80]!r}"}
            if record.get("started"):
                self._started.set()
            else:
                self.results.append(record)
        self._started.set()  # the client ended: nobody should wait for it to start

    def wait_started(self, timeout: float = 30) -> None:
        if not self._started.wait(timeout) or self.process.poll() is not None:
            raise MeshError(f"the request stream did not start: {self._stderr()}")

    def stop(self, timeout: float = 30) -> list[dict[str, Any]]:
        """Ends the stream (its stdin closes) and returns every result, in order."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        if code:  # a client that died would leave the results truncated
            raise MeshError(f"the request stream exited {code}: {self._stderr()}")
        return self.results

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "still running"
        return self.process.stderr.read().strip()[-2000:]


def stream_requests(
    pod: PodHandle, url: str, duration: float, headers: Mapping[str, str] | None = None
) -> RequestStream:
    """GETs back to back for `duration` seconds or until `stop()`: one result each."""
    argv = [*_traffic_argv("stream", url, headers or {}), f"--duration={duration}"]
    process = pod.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return RequestStream(process)
