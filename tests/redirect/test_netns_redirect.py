"""`mizzen init` in real network namespaces: real TCP connections, asserting where each lands.

`app` gets the redirect and listens on 8080/9000 (the app), 15020 (the agent), 15001/15006 (the
capture listeners, standing in for Envoy); `peer` and `other` listen on 8080/9000. A capture
listener reports SO_ORIGINAL_DST, proving the original destination survived the redirect.
"""

from __future__ import annotations

import pytest

from tests.redirect.conftest import Mesh, where

pytestmark = pytest.mark.netns

PROXY = 1337
OUTBOUND = "outbound:15001"
INBOUND = "inbound:15006"


def test_outbound_is_captured_keeping_the_original_destination(mesh: Mesh) -> None:
    assert where(mesh.app, mesh.peer.ip, 8080) == "peer:8080"  # before: direct
    mesh.init("--no-ipv6")
    landed = mesh.app.connect(mesh.peer.ip, 8080)
    assert (landed.label, landed.port) == ("outbound", 15001)
    assert landed.original_dst == (mesh.peer.ip, 8080)


def test_proxy_uid_or_gid_goes_direct(mesh: Mesh) -> None:
    mesh.init("--no-ipv6")
    assert where(mesh.app, mesh.peer.ip, 8080, uid=PROXY, gid=PROXY) == "peer:8080"
    assert where(mesh.app, mesh.peer.ip, 8080, uid=4242, gid=PROXY) == "peer:8080"
    assert where(mesh.app, mesh.peer.ip, 8080, uid=PROXY, gid=4242) == "peer:8080"
    assert where(mesh.app, mesh.peer.ip, 8080, uid=4242, gid=4242) == OUTBOUND


def test_custom_proxy_uid(mesh: Mesh) -> None:
    mesh.init("--no-ipv6", "--proxy-uid=2000", "--proxy-gid=2000")
    assert where(mesh.app, mesh.peer.ip, 8080, uid=2000, gid=2000) == "peer:8080"
    assert where(mesh.app, mesh.peer.ip, 8080, uid=PROXY, gid=PROXY) == OUTBOUND


def test_excluded_outbound_port_and_cidr_go_direct(mesh: Mesh) -> None:
    mesh.init(
        "--no-ipv6", "--exclude-outbound-ports=9000", f"--exclude-outbound-cidrs={mesh.other.ip}/32"
    )
    assert where(mesh.app, mesh.peer.ip, 9000) == "peer:9000"
    assert where(mesh.app, mesh.other.ip, 8080) == "other:8080"
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND


def test_included_outbound_cidrs_and_ports(mesh: Mesh) -> None:
    mesh.init("--no-ipv6", f"--include-outbound-cidrs={mesh.peer.ip}/32")
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND
    assert where(mesh.app, mesh.other.ip, 8080) == "other:8080"
    mesh.init("--no-ipv6", "--include-outbound-cidrs=", "--include-outbound-ports=9000")
    assert where(mesh.app, mesh.other.ip, 9000) == OUTBOUND
    assert where(mesh.app, mesh.other.ip, 8080) == "other:8080"
    assert where(mesh.app, mesh.peer.ip, 8080) == "peer:8080"


def test_inbound_is_captured_but_not_the_agent_port(mesh: Mesh) -> None:
    mesh.init("--no-ipv6")
    landed = mesh.peer.connect(mesh.app.ip, 8080)
    assert (landed.label, landed.port) == ("inbound", 15006)
    assert landed.original_dst == (mesh.app.ip, 8080)
    assert landed.peer[0] == mesh.peer.ip  # REDIRECT rewrites the destination only
    assert where(mesh.peer, mesh.app.ip, 15020) == "agent:15020"


def test_excluded_inbound_port_reaches_the_app(mesh: Mesh) -> None:
    mesh.init("--no-ipv6", "--exclude-inbound-ports=9000")
    assert where(mesh.peer, mesh.app.ip, 9000) == "app:9000"
    assert where(mesh.peer, mesh.app.ip, 8080) == INBOUND
    assert where(mesh.peer, mesh.app.ip, 15020) == "agent:15020"  # never captured, even then


def test_included_inbound_ports_list_and_empty(mesh: Mesh) -> None:
    mesh.init("--no-ipv6", "--include-inbound-ports=9000,15020")
    assert where(mesh.peer, mesh.app.ip, 9000) == INBOUND
    assert where(mesh.peer, mesh.app.ip, 8080) == "app:8080"
    assert where(mesh.peer, mesh.app.ip, 15020) == "agent:15020"
    mesh.init("--no-ipv6", "--include-inbound-ports=")
    assert where(mesh.peer, mesh.app.ip, 9000) == "app:9000"
    assert not [rule for rule in mesh.rules() if rule.startswith("-A PREROUTING")]


def test_the_app_talking_to_itself_stays_local(mesh: Mesh) -> None:
    mesh.init("--no-ipv6")
    assert where(mesh.app, "127.0.0.1", 8080) == "app:8080"
    assert where(mesh.app, mesh.app.ip, 8080) == "app:8080"
    assert where(mesh.app, "127.0.0.1", 8080, uid=PROXY, gid=PROXY) == "app:8080"


def test_proxy_to_its_own_pod_ip_takes_the_inbound_path(mesh: Mesh) -> None:
    mesh.init("--no-ipv6")
    landed = mesh.app.connect(mesh.app.ip, 8080, uid=PROXY, gid=PROXY)
    assert (landed.label, landed.port) == ("inbound", 15006)
    assert landed.original_dst == (mesh.app.ip, 8080)
    assert where(mesh.app, mesh.app.ip, 8080, uid=4242, gid=PROXY) == INBOUND
    # Envoy's inbound passthrough binds 127.0.0.6: it reaches the app.
    assert (
        where(mesh.app, mesh.app.ip, 8080, uid=PROXY, gid=PROXY, source="127.0.0.6") == "app:8080"
    )


def test_rerun_is_idempotent_and_replaces_the_flags(mesh: Mesh) -> None:
    mesh.init()
    first = (mesh.rules(), mesh.rules("ip6tables-nft-save"))
    mesh.init()
    assert (mesh.rules(), mesh.rules("ip6tables-nft-save")) == first
    assert first[0].count("-A OUTPUT -p tcp -j MIZZEN_OUTPUT") == 1
    assert first[0].count("-A PREROUTING -p tcp -j MIZZEN_INBOUND") == 1
    assert first[1].count("-A OUTPUT -p tcp -j MIZZEN_OUTPUT") == 1
    mesh.init("--exclude-outbound-ports=9000")
    after = mesh.rules()
    assert len(after) == len(first[0]) + 1
    assert after.count("-A MIZZEN_OUTPUT -p tcp -m tcp --dport 9000 -j RETURN") == 1
    assert where(mesh.app, mesh.peer.ip, 9000) == "peer:9000"
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND


def test_cleanup_restores_direct_connectivity(mesh: Mesh) -> None:
    mesh.init()
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND
    assert where(mesh.peer, mesh.app.ip, 8080) == INBOUND
    mesh.init("--cleanup")
    assert mesh.rules() == []
    assert mesh.rules("ip6tables-nft-save") == []
    saved = mesh.app.run(["iptables-nft-save", "-t", "nat"]).stdout
    assert "MIZZEN" not in saved
    assert where(mesh.app, mesh.peer.ip, 8080) == "peer:8080"
    assert where(mesh.peer, mesh.app.ip, 8080) == "app:8080"
    mesh.init("--cleanup")  # nothing left: still fine


def test_excluded_interface_is_left_alone(mesh: Mesh) -> None:
    app_end, other_end = mesh.topology.link(mesh.app, mesh.other, "net1")
    mesh.init("--no-ipv6")
    assert where(mesh.app, other_end, 8080) == OUTBOUND  # control: captured without exclusion
    assert where(mesh.other, app_end, 8080) == INBOUND
    mesh.init("--no-ipv6", "--exclude-interfaces=net1")
    assert where(mesh.app, other_end, 8080) == "other:8080"
    assert where(mesh.other, app_end, 8080) == "app:8080"
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND  # eth0 still captured
    assert where(mesh.peer, mesh.app.ip, 8080) == INBOUND


def test_ipv6_is_captured_when_the_pod_has_ipv6(mesh: Mesh) -> None:
    assert mesh.app.ip6
    assert mesh.peer.ip6
    mesh.init()  # detects the pod's global IPv6 address
    landed = mesh.app.connect(mesh.peer.ip6, 8080)
    assert (landed.label, landed.port) == ("outbound", 15001)
    assert landed.original_dst == (mesh.peer.ip6, 8080)
    assert where(mesh.peer, mesh.app.ip6, 8080) == INBOUND
    assert where(mesh.app, "::1", 8080) == "app:8080"
    assert where(mesh.app, mesh.app.ip6, 8080, uid=PROXY, gid=PROXY) == INBOUND
    assert mesh.rules("ip6tables-nft-save")
    mesh.init("--no-ipv6")  # replaces the earlier run: no IPv6 rules left
    assert mesh.rules("ip6tables-nft-save") == []
    assert where(mesh.app, mesh.peer.ip6, 8080) == "peer:8080"
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND


def test_mode_none_applies_nothing(mesh: Mesh) -> None:
    done = mesh.init("--mode=NONE")
    assert "NONE" in done.stdout
    assert mesh.rules() == []
    assert where(mesh.app, mesh.peer.ip, 8080) == "peer:8080"


def test_legacy_backend_and_one_copy_across_backends(mesh: Mesh) -> None:
    mesh.init("--no-ipv6", "--iptables-backend=legacy")
    assert mesh.rules("iptables-legacy-save")
    assert mesh.rules("iptables-nft-save") == []
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND
    legacy = mesh.rules("iptables-legacy-save")
    mesh.init("--no-ipv6")  # auto keeps the backend that holds the rules
    assert mesh.rules("iptables-legacy-save") == legacy
    assert mesh.rules("iptables-nft-save") == []
    mesh.init("--no-ipv6", "--iptables-backend=nft")  # forced elsewhere: the old copy goes
    assert mesh.rules("iptables-legacy-save") == []
    assert len(mesh.rules("iptables-nft-save")) == len(legacy)
    assert where(mesh.app, mesh.peer.ip, 8080) == OUTBOUND
