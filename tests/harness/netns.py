"""Pods as network namespaces on a bridge: the harness of the real-kernel data-path tests.

A `Topology` owns a "host" namespace holding a bridge (`br0`, the pods' gateway at .1) and one
namespace per pod, each with `eth0` (a veth into the bridge) and an address from the topology's
own /24 of 198.18.0.0/15 (RFC 2544's benchmarking range) and /64 of fd6d:7a00::/32. Every link
and address lives inside the topology's namespaces, so nothing touches the machine's own network
and deleting the namespaces removes everything; parallel runs never see each other. The one
opt-in exception, `uplink()`, adds a veth and a route to the test process's namespace so that
pods can reach servers running in the test itself; both vanish with the host namespace.

Names are `mzt-<pid>-<random>-<pod>`: `sweep()` removes the leftovers of test processes that died
without tearing down, and never touches those of a live process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

PREFIX = "mzt"
PROBE = Path(__file__).with_name("probe.py")
BRIDGE = "br0"


class HarnessError(RuntimeError):
    """A harness step (an `ip` command, a probe) failed; the message carries its stderr."""


def ip(*args: str) -> str:
    """Runs `ip args...`; raises `HarnessError` with ip's own message on failure."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise HarnessError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Landing:
    """Where a probe connection landed, as the listener that accepted it reported."""

    label: str
    port: int
    local: tuple[str, int]
    peer: tuple[str, int]
    original_dst: tuple[str, int] | None

    @classmethod
    def parse(cls, line: str) -> Landing:
        data = json.loads(line)
        if "error" in data:
            raise HarnessError(str(data["error"]))
        dst = data["original_dst"]
        return cls(
            label=data["label"],
            port=int(data["port"]),
            local=(data["local"][0], int(data["local"][1])),
            peer=(data["peer"][0], int(data["peer"][1])),
            original_dst=(dst[0], int(dst[1])) if dst else None,
        )


def as_user(uid: int | None, gid: int | None) -> list[str]:
    """A `setpriv` prefix running a command as uid/gid (with no supplementary groups)."""
    if uid is None and gid is None:
        return []
    ids = [f"--reuid={uid}"] if uid is not None else []
    ids += [f"--regid={gid}", "--clear-groups"] if gid is not None else []
    return ["setpriv", *ids, "--"]


class Pod:
    """One network namespace: run commands in it, serve and connect probes."""

    def __init__(self, topology: Topology, name: str, netns: str, ip: str, ip6: str | None):
        self.topology = topology
        self.name = name
        self.netns = netns
        self.ip = ip
        self.ip6 = ip6

    def __repr__(self) -> str:
        return f"Pod({self.name!r}, netns={self.netns!r}, ip={self.ip!r})"

    def argv(
        self, cmd: Sequence[str], *, uid: int | None = None, gid: int | None = None
    ) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *as_user(uid, gid), *cmd]

    def run(
        self,
        cmd: Sequence[str],
        *,
        uid: int | None = None,
        gid: int | None = None,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.argv(cmd, uid=uid, gid=gid),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode:
            raise HarnessError(
                f"in {self.name}: {' '.join(cmd)} exited {done.returncode}: "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        return done

    def popen(
        self, cmd: Sequence[str], *, uid: int | None = None, gid: int | None = None, **kwargs: Any
    ) -> subprocess.Popen[str]:
        """Starts a process in the pod; the topology stops it at teardown."""
        process: subprocess.Popen[str] = subprocess.Popen(
            self.argv(cmd, uid=uid, gid=gid), text=True, start_new_session=True, **kwargs
        )
        self.topology.track(process)
        return process

    def serve(
        self, listeners: Mapping[int, str], *, ipv6: bool | None = None
    ) -> subprocess.Popen[str]:
        """Starts a probe listener ({port: label}), returning once every port is bound."""
        use_ipv6 = self.ip6 is not None if ipv6 is None else ipv6
        args = [f"{label}:{port}" for port, label in listeners.items()]
        cmd = [sys.executable, str(PROBE), "serve", *args, *(["--ipv6"] if use_ipv6 else [])]
        process = self.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        started, _, _ = select.select([process.stdout], [], [], 20)
        ready = process.stdout.readline().strip() if started else ""
        if ready != "READY":
            process.kill()
            _, err = process.communicate(timeout=5)
            raise HarnessError(f"probe listener in {self.name} did not start: {err.strip()}")
        return process

    def connect(
        self,
        host: str,
        port: int,
        *,
        uid: int | None = None,
        gid: int | None = None,
        source: str | None = None,
        timeout: float = 3.0,
    ) -> Landing:
        """Connects from this pod (as uid/gid) and returns where the connection landed."""
        cmd = [sys.executable, str(PROBE), "connect", host, str(port), f"--timeout={timeout}"]
        cmd += [f"--uid={uid}"] if uid is not None else []
        cmd += [f"--gid={gid}"] if gid is not None else []
        cmd += [f"--source={source}"] if source else []
        done = self.run(cmd, check=False, timeout=timeout + 10)
        if not done.stdout.strip():
            raise HarnessError(f"probe connect from {self.name} failed: {done.stderr.strip()}")
        return Landing.parse(done.stdout)


class Topology:
    """A bridge in a host namespace, pods attached to it; a context manager that always cleans."""

    def __init__(self, *, ipv6: bool = True, prefix: str = PREFIX) -> None:
        self.id = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        self.ipv6 = ipv6
        # A /24 of 198.18.0.0/15 for the pods, its mirror for the links; neither may be the
        # Service VIPs' 198.19.255.0/24 (`control.cli.demo.sample`): blocks 255 and 511 are out.
        block = secrets.randbelow(510)
        if block >= 255:
            block += 1
        self.subnet = ipaddress.ip_network(f"198.{18 + block // 256}.{block % 256}.0/24")
        self.subnet6 = ipaddress.ip_network(f"fd6d:7a00:{secrets.randbelow(65536):x}::/64")
        self.link_subnet = ipaddress.ip_network(f"198.{19 - block // 256}.{block % 256}.0/24")
        self.pods: dict[str, Pod] = {}
        self._links = 0
        self._uplink: str | None = None
        self._namespaces: list[str] = []
        self._processes: list[subprocess.Popen[str]] = []
        self.host = self._create_host()

    def _address(self, index: int) -> tuple[str, str | None]:
        v4 = str(self.subnet.network_address + index)
        return v4, str(self.subnet6.network_address + index) if self.ipv6 else None

    def _add_namespace(self, name: str) -> str:
        netns = f"{self.id}-{name}"
        ip("netns", "add", netns)
        self._namespaces.append(netns)
        ip("-n", netns, "link", "set", "lo", "up")
        return netns

    def _create_host(self) -> Pod:
        netns = self._add_namespace("host")
        ip("-n", netns, "link", "add", BRIDGE, "type", "bridge")
        v4, v6 = self._address(1)
        ip("-n", netns, "addr", "add", f"{v4}/24", "dev", BRIDGE)
        if v6:
            ip("-n", netns, "addr", "add", f"{v6}/64", "dev", BRIDGE, "nodad")
        ip("-n", netns, "link", "set", BRIDGE, "up")
        return Pod(self, "host", netns, v4, v6)

    def add_pod(self, name: str) -> Pod:
        """A new namespace with `eth0` on the bridge, its addresses and a default route via .1."""
        if name in self.pods or name == "host":
            raise HarnessError(f"pod {name!r} exists")
        netns = self._add_namespace(name)
        index = len(self.pods) + 2
        v4, v6 = self._address(index)
        port = f"veth{index}"
        host = self.host.netns
        ip("-n", host, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("-n", host, "link", "set", port, "master", BRIDGE, "up")
        ip("-n", netns, "addr", "add", f"{v4}/24", "dev", "eth0")
        if v6:
            ip("-n", netns, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", "default", "via", self.host.ip)
        if v6 and self.host.ip6:
            ip("-n", netns, "-6", "route", "add", "default", "via", self.host.ip6)
        pod = Pod(self, name, netns, v4, v6)
        self.pods[name] = pod
        return pod

    def link(self, a: Pod, b: Pod, ifname: str = "net1") -> tuple[str, str]:
        """A direct veth between two pods (`ifname` on both) on a /30 of its own; returns the
        IPv4 addresses of a's and b's ends."""
        if self._links >= 63:  # the last /30 is the uplink's
            raise HarnessError("at most 63 direct links per topology")
        base = self.link_subnet.network_address + 4 * self._links
        self._links += 1
        ends = (str(base + 1), str(base + 2))
        ip("-n", a.netns, "link", "add", ifname, "type", "veth", "peer", "name", ifname,
           "netns", b.netns)  # fmt: skip
        for pod, address in zip((a, b), ends, strict=True):
            ip("-n", pod.netns, "addr", "add", f"{address}/30", "dev", ifname)
            ip("-n", pod.netns, "link", "set", ifname, "up")
        return ends

    def uplink(self) -> str:
        """Connects the host namespace to the test process's own namespace and returns this
        side's address: servers the test runs in-process (bound to it, or 0.0.0.0) are then
        reachable from every pod, and the pods from here. The veth dies with the host
        namespace; the route here goes with it."""
        if self._uplink:
            return self._uplink
        base = self.link_subnet.network_address + 252  # the last /30 of the links' /24
        here, there = str(base + 1), str(base + 2)
        name = f"mzu{secrets.token_hex(4)}"  # at most 15 characters (IFNAMSIZ)
        host = self.host.netns
        ip("link", "add", name, "type", "veth", "peer", "name", "up0", "netns", host)
        try:
            ip("addr", "add", f"{here}/30", "dev", name)
            ip("link", "set", name, "up")
            ip("-n", host, "addr", "add", f"{there}/30", "dev", "up0")
            ip("-n", host, "link", "set", "up0", "up")
            self.host.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            ip("route", "add", str(self.subnet), "via", there, "dev", name)
        except HarnessError:
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            raise
        self._uplink = here
        return here

    def track(self, process: subprocess.Popen[str]) -> None:
        self._processes.append(process)

    def close(self) -> None:
        """Stops the pods' processes, then deletes every namespace (and with them all links)."""
        for process in self._processes:
            _stop(process)
        errors = []
        for netns in reversed(self._namespaces):
            _kill_inside(netns)
            try:
                ip("netns", "del", netns)
            except HarnessError as error:
                errors.append(str(error))
        self._namespaces.clear()
        if errors:
            raise HarnessError("; ".join(errors))

    def __enter__(self) -> Topology:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream:
            stream.close()


def _kill_inside(netns: str) -> None:
    """Kills what still runs in one of the harness's namespaces (started by its tests)."""
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    for pid in listed.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def harness_namespaces(prefix: str = PREFIX) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    names = (line.split()[0] for line in listed.stdout.splitlines() if line.strip())
    return [name for name in names if name.startswith(f"{prefix}-")]


# The test ranges, unreachable from the test process's own namespace unless a topology routes a
# part of them (`uplink()` adds a more specific route): a probe sent to a pod address from the
# wrong namespace fails at once here instead of leaving the machine by its default route.
TEST_RANGES = ("198.18.0.0/15", "fd6d:7a00::/32")


def fence_test_ranges() -> None:
    """`unreachable` routes for `TEST_RANGES` in this namespace, added when missing and left in
    place: runs of the suite overlap (one's teardown must not open the fence under another), and
    nothing outside the tests uses these benchmark ranges. `ip route del unreachable
    198.18.0.0/15` (and `-6 ... fd6d:7a00::/32`) removes them."""
    for cidr in TEST_RANGES:
        family = "-6" if ":" in cidr else "-4"
        if cidr in ip(family, "route", "show", "type", "unreachable"):
            continue
        with contextlib.suppress(HarnessError):  # a kernel without IPv6, say
            ip(family, "route", "add", "unreachable", cidr)


def sweep(prefix: str = PREFIX, *, include_own: bool = False) -> list[str]:
    """Deletes namespaces left by harness processes that are gone (and, with `include_own`, this
    process's own); returns their names."""
    removed = []
    for netns in harness_namespaces(prefix):
        owner = netns.split("-")[1]
        if not owner.isdigit():
            continue
        mine = int(owner) == os.getpid()
        if (mine and include_own) or (not mine and not _alive(int(owner))):
            _kill_inside(netns)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
            removed.append(netns)
    return removed
