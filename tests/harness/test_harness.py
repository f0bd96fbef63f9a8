"""The network-namespace harness itself: pods talk, users switch, and nothing leaks."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import threading

import pytest

from tests.harness.netns import PREFIX, HarnessError, Topology, harness_namespaces, ip, sweep

pytestmark = pytest.mark.netns


def test_pods_reach_each_other_over_ipv4_and_ipv6(topology: Topology) -> None:
    a, b = topology.add_pod("a"), topology.add_pod("b")
    b.serve({8080: "b"})
    landed = a.connect(b.ip, 8080)
    assert (landed.label, landed.port, landed.peer[0]) == ("b", 8080, a.ip)
    assert b.ip6
    assert a.connect(b.ip6, 8080).local[0] == b.ip6
    with pytest.raises(HarnessError, match="ConnectionRefused"):
        a.connect(b.ip, 8081)


def test_commands_and_probes_run_as_another_user(topology: Topology) -> None:
    a = topology.add_pod("a")
    assert a.run(["id", "-u"], uid=1337, gid=1337).stdout.strip() == "1337"
    assert a.run(["id", "-G"], uid=1337, gid=4242).stdout.strip() == "4242"
    a.serve({8080: "a"})
    assert a.connect("127.0.0.1", 8080, uid=1337, gid=1337).label == "a"


def test_a_direct_link_between_two_pods(topology: Topology) -> None:
    a, b = topology.add_pod("a"), topology.add_pod("b")
    a_end, b_end = topology.link(a, b, "net1")
    b.serve({8080: "b"})
    assert a.connect(b_end, 8080).peer[0] == a_end
    assert "net1" in a.run(["ip", "-o", "link"]).stdout


def test_teardown_removes_namespaces_and_processes_even_on_failure(netns_session: None) -> None:
    with pytest.raises(RuntimeError, match="boom"), Topology() as topo:  # noqa: PT012
        pod = topo.add_pod("a")
        server = pod.serve({8080: "a"})
        extra = pod.popen(["sleep", "300"])
        raise RuntimeError("boom")
    assert not [n for n in harness_namespaces() if n.startswith(topo.id)]
    assert server.poll() is not None
    assert extra.poll() is not None


def test_sweep_removes_only_what_dead_runs_left(netns_session: None) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = f"{PREFIX}-{gone.pid}-sweep-x"
    live = f"{PREFIX}-{os.getpid()}-sweep-y"
    for name in (dead, live):
        ip("netns", "add", name)
    try:
        removed = sweep()
        assert dead in removed
        assert live not in removed
        assert live in harness_namespaces()
        assert live in sweep(include_own=True)
    finally:
        for name in (dead, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    assert not {dead, live} & set(harness_namespaces())


def test_the_uplink_reaches_a_server_in_the_test_process(topology: Topology) -> None:
    pod = topology.add_pod("a")
    address = topology.uplink()
    assert topology.uplink() == address  # once per topology
    with socket.create_server((address, 0)) as server:
        port = server.getsockname()[1]
        answer = threading.Thread(target=_answer_once, args=(server,), daemon=True)
        answer.start()
        landed = pod.connect(address, port)
        answer.join(timeout=5)
    assert (landed.label, landed.peer[0]) == ("test-process", pod.ip)


def _answer_once(server: socket.socket) -> None:
    conn, peer = server.accept()
    with conn:
        report = {"label": "test-process", "port": 0, "local": list(conn.getsockname()),
                  "peer": list(peer), "original_dst": None}  # fmt: skip
        conn.sendall(json.dumps(report).encode() + b"\n")


def test_a_pod_address_is_unreachable_from_the_test_process(topology: Topology) -> None:
    """Test traffic never leaves the machine: from the test's own namespace a pod address (or
    any address of the test ranges) is refused at once, not sent out by the default route."""
    pod = topology.add_pod("lonely")
    for address in (pod.ip, "198.19.255.1"):
        with socket.socket() as probe:
            probe.settimeout(5)
            code = probe.connect_ex((address, 80))
        assert code in (errno.EHOSTUNREACH, errno.ENETUNREACH), os.strerror(code)
