"""The agent ↔ control plane contract: the node the agent writes is the node the control plane
reads, through the one shared module of keys."""

from __future__ import annotations

from control.agent.node import node
from control.agent.settings import AgentSettings
from control.config import node_metadata
from control.plane.xds.translate.proxy import parse_node
from tests.agent.conftest import pod_env


def test_what_the_agent_writes_the_plane_reads() -> None:
    env = pod_env(MIZZEN_LABELS='{"app": "reviews", "version": "v2"}')
    settings = AgentSettings.from_env(env)
    written = node(settings, "1.2.3")
    proxy = parse_node(written["id"], written["metadata"])
    assert proxy.node_id == settings.node_id
    assert proxy.pod == settings.pod_name
    assert proxy.namespace == settings.namespace
    assert proxy.ip == settings.instance_ip
    assert dict(proxy.labels) == {"app": "reviews", "version": "v2"}
    assert proxy.service_account == settings.service_account
    ports = written["metadata"][node_metadata.META_PROXY_PORTS]
    assert ports[node_metadata.PORT_OUTBOUND] == settings.options.outbound_port
    assert ports[node_metadata.PORT_INBOUND] == settings.options.inbound_port
