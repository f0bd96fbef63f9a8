"""The demo's pods: network namespaces on a bridge, all of it removed at the end.

A "host" namespace holds the bridge (the pods' gateway, where the control plane runs); each pod
is a namespace with `eth0` (a veth into the bridge), an address from a random /24 of 198.18.0.0/15
(RFC 2544's benchmarking range) and a default route via the bridge. Nothing touches the
machine's own network. (The test suite has a fuller harness in `tests/harness`; the demo ships
in the package, so it carries this small one.)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import Any

PREFIX = "mzd"


class NetnsError(RuntimeError):
    pass


def can_run_netns() -> str | None:
    """Why this machine cannot run the local mesh, or None when it can."""
    if os.geteuid() != 0:
        return "it needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class NetnsPod:
    """A pod's namespace: `argv` wraps a command to run inside it, `popen` starts one."""

    def __init__(self, network: Network, name: str, netns: str, ip: str) -> None:
        self.network = network
        self.name = name
        self.netns = netns
        self.ip = ip

    def argv(
        self, cmd: Sequence[str], *, uid: int | None = None, gid: int | None = None
    ) -> list[str]:
        ids: list[str] = []
        if uid is not None or gid is not None:
            ids = ["setpriv"]
            ids += [f"--reuid={uid}"] if uid is not None else []
            ids += [f"--regid={gid}", "--clear-groups"] if gid is not None else []
            ids.append("--")
        return ["ip", "netns", "exec", self.netns, *ids, *cmd]

    def popen(
        self, cmd: Sequence[str], *, uid: int | None = None, gid: int | None = None, **kwargs: Any
    ) -> subprocess.Popen[str]:
        process: subprocess.Popen[str] = subprocess.Popen(
            self.argv(cmd, uid=uid, gid=gid), text=True, start_new_session=True, **kwargs
        )
        self.network.processes.append(process)
        return process


class Network:
    """A bridge and its pods; a context manager that always removes everything it made."""

    def __init__(self) -> None:
        self.id = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        block = secrets.randbelow(511)  # a /24 of 198.18.0.0/15 but the VIPs' 198.19.255.0/24
        self.subnet = ipaddress.ip_network(f"198.{18 + block // 256}.{block % 256}.0/24")
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[str]] = []
        self.pods: dict[str, NetnsPod] = {}
        try:
            self.host = self._host()
        except BaseException:
            self.close()
            raise

    def _namespace(self, name: str) -> str:
        netns = f"{self.id}-{name}"
        _ip("netns", "add", netns)
        self.namespaces.append(netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        return netns

    def _host(self) -> NetnsPod:
        netns = self._namespace("host")
        address = str(self.subnet.network_address + 1)
        _ip("-n", netns, "link", "add", "br0", "type", "bridge")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "br0")
        _ip("-n", netns, "link", "set", "br0", "up")
        return NetnsPod(self, "host", netns, address)

    def add_pod(self, name: str) -> NetnsPod:
        netns = self._namespace(name)
        index = len(self.pods) + 2
        address = str(self.subnet.network_address + index)
        port = f"veth{index}"
        _ip("-n", self.host.netns, "link", "add", port, "type", "veth",
            "peer", "name", "eth0", "netns", netns)  # fmt: skip
        _ip("-n", self.host.netns, "link", "set", port, "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "route", "add", "default", "via", self.host.ip)
        pod = NetnsPod(self, name, netns, address)
        self.pods[name] = pod
        return pod

    def close(self) -> None:
        """SIGTERM the pods' processes (agents drain), then delete the namespaces."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for netns in reversed(self.namespaces):
            listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
            for pid in listed.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        self.namespaces.clear()

    def __enter__(self) -> Network:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
