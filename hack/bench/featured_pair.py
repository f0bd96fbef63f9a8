"""The hand-written pair with mizzen's features: the benchmark's feature-equal reference, so
the report can tell what the features cost (vs the mTLS-only pair) from what the control plane's
way of delivering them costs (mizzen's pair vs this one).

The two static Envoys keep the hand-written pair's listeners, clusters and mTLS
(`handwritten_pair.py`), and take over, from the running mizzen pair's config dumps, everything
mizzen evaluates per request: the client's HTTP connection manager (fault, normalize_path, the
Istio-metrics stats loggers) with its route (retry policy, the `x-mizzen-peer` header), the
outbound cluster's and endpoint's metadata the loggers read; the server's inbound connection
manager (`header_to_metadata` and its guard, XFCC, the stats loggers) and the inbound cluster's
metadata. Taken from the dumps rather than retyped, so the pair stays feature-equal as mizzen's
features change. Not taken: the redirect, the listener hop (virtualOutbound -> the port's
listener), the inbound filter-chain match and TLS inspector, EDS, transport-socket matches:
what the control plane's layout costs."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any, Final

import yaml
from handwritten_pair import (
    CLIENT_PORT,
    client_bootstrap,
    make_pki,
    server_bootstrap,
)

from control.agent.envoy_binary import find_envoy
from control.cli.demo.mesh import MeshError, PodHandle, run_in
from control.cli.proxy_config_tables import envoy_resources

_DUMP: Final = "type.googleapis.com/envoy.admin.v3."
_HCM: Final = "envoy.filters.network.http_connection_manager"
ADMIN_PORT: Final = 15000  # localhost only: for `check_features`, never read during the rounds


def _section(dump: dict[str, Any], kind: str) -> dict[str, Any]:
    for config in dump.get("configs", []):
        if config.get("@type") == _DUMP + kind:
            return dict(config)
    raise MeshError(f"the config dump has no {kind}")


def _named(dump: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """A dynamic resource of `kind` (`proxy-config`'s kinds: listeners, clusters, routes) by
    name, as a copy the caller may change."""
    for resource in envoy_resources(kind, dump, dynamic_only=True):
        if resource.get("name") == name:
            return copy.deepcopy(dict(resource))
    raise MeshError(f"the config dump has no {kind} {name!r}")


def _hcm_filters(chain: dict[str, Any]) -> list[dict[str, Any]]:
    filters = copy.deepcopy(chain["filters"])
    if not any(f.get("name") == _HCM for f in filters):
        raise MeshError(f"filter chain {chain.get('name')!r} has no HTTP connection manager")
    return list(filters)


def _endpoint_metadata(dump: dict[str, Any], cluster: str) -> dict[str, Any]:
    """The first endpoint's `mizzen` filter metadata (the peer's labels the loggers read)."""
    for entry in _section(dump, "EndpointsConfigDump").get("dynamic_endpoint_configs", []):
        assignment = entry.get("endpoint_config", {})
        if assignment.get("cluster_name") == cluster:
            endpoint = assignment["endpoints"][0]["lb_endpoints"][0]
            mizzen = endpoint.get("metadata", {}).get("filter_metadata", {}).get("mizzen", {})
            return {"filter_metadata": {"mizzen": dict(mizzen)}}
    raise MeshError(f"the config dump has no endpoints for {cluster!r}")


def _route_config(dump: dict[str, Any], name: str, cluster: str) -> dict[str, Any]:
    """Route `name`, its first virtual host only, answering any host, routing to `cluster`."""
    config = _named(dump, "routes", name)
    host = config["virtual_hosts"][0]
    host["domains"] = ["*"]
    for route in host["routes"]:
        route["route"]["cluster"] = cluster
    config.pop("@type", None)
    config["virtual_hosts"] = [host]
    return config


def _set_route(filters: list[dict[str, Any]], route_config: dict[str, Any]) -> None:
    for entry in filters:
        if entry.get("name") == _HCM:
            manager = entry["typed_config"]
            manager.pop("rds", None)
            manager["route_config"] = route_config


def featured_client(
    directory: Path, server_ip: str, dump: dict[str, Any], port: int, service: str
) -> dict[str, Any]:
    """The hand-written client with mizzen's outbound features for `service`:`port`."""
    bootstrap = client_bootstrap(directory, server_ip)
    outbound = f"outbound|{port}||{service}"
    listener = _named(dump, "listeners", f"0.0.0.0_{port}")
    filters = _hcm_filters(listener["filter_chains"][0])
    _set_route(filters, _route_config(dump, str(port), "server"))
    static = bootstrap["static_resources"]
    static["listeners"][0]["filter_chains"][0]["filters"] = filters
    mizzen = _named(dump, "clusters", outbound)
    cluster = static["clusters"][0]
    for key in ("metadata", "lb_policy", "circuit_breakers"):
        if key in mizzen:
            cluster[key] = copy.deepcopy(mizzen[key])
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    endpoint["metadata"] = _endpoint_metadata(dump, outbound)
    return bootstrap


def featured_server(
    directory: Path, app_port: int, dump: dict[str, Any], chain: str
) -> dict[str, Any]:
    """The hand-written server with the filters of mizzen's inbound filter chain `chain`."""
    bootstrap = server_bootstrap(directory, app_port)
    chains = _named(dump, "listeners", "virtualInbound")["filter_chains"]
    inbound = next(
        (c for c in chains if c.get("name") == chain),
        None,
    )
    if inbound is None:
        raise MeshError(f"virtualInbound has no filter chain {chain!r}")
    filters = _hcm_filters(inbound)
    for entry in filters:
        if entry.get("name") == _HCM:
            routes = entry["typed_config"]["route_config"]
            mizzen_cluster = routes["virtual_hosts"][0]["routes"][0]["route"]["cluster"]
            for host in routes["virtual_hosts"]:
                for route in host["routes"]:
                    route["route"]["cluster"] = "app"
    static = bootstrap["static_resources"]
    static["listeners"][0]["filter_chains"][0]["filters"] = filters
    metadata = _named(dump, "clusters", mizzen_cluster).get("metadata")
    if metadata:
        static["clusters"][0]["metadata"] = copy.deepcopy(metadata)
    return bootstrap


def start_featured_pair(
    client: PodHandle,
    server: PodHandle,
    directory: Path,
    app_port: int,
    log: IO[str],
    dumps: tuple[dict[str, Any], dict[str, Any]],
    client_env: dict[str, str],
    service: str,
) -> str:
    """Both Envoys started (the client with the mizzen client Envoy's environment, which its
    `%ENVIRONMENT(...)%` headers read); returns the URL a client in `client` sends to."""
    make_pki(directory)
    client_dump, server_dump = dumps
    envoy = str(find_envoy())
    inbound = f"inbound|{app_port}||-mtls"
    admin = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ADMIN_PORT}}}
    for pod, bootstrap, env in (
        (client, featured_client(directory, server.ip, client_dump, 80, service), client_env),
        (server, featured_server(directory, app_port, server_dump, inbound), {}),
    ):
        bootstrap["admin"] = admin
        path = directory / f"{pod.name}.yaml"
        path.write_text(yaml.safe_dump(bootstrap))
        argv = [envoy, "-c", str(path), "--disable-hot-restart", "--concurrency", "1",
                "--log-level", "warning"]  # fmt: skip
        pod.popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    return f"http://127.0.0.1:{CLIENT_PORT}/"


def _stats(pod: PodHandle) -> str:
    fetch = (
        "import urllib.request;print(urllib.request.urlopen("
        f"'http://127.0.0.1:{ADMIN_PORT}/stats',timeout=10).read().decode())"
    )
    return run_in(pod, [sys.executable, "-c", fetch])


def check_features(
    client: PodHandle, server: PodHandle, client_peer: str, server_peer: str
) -> None:
    """After a request: both Envoys counted it in the Istio metrics with the other side's
    metadata (the server's from the `x-mizzen-peer` header, through its guard), so the features
    really run on this pair and the comparison is feature-equal."""
    wanted = (
        (client, f"istio.requests_total.facts.source|{server_peer}|"),
        (server, f"istio.requests_total.facts.destination|{client_peer}|"),
    )
    for pod, stat in wanted:
        if stat not in _stats(pod):
            raise MeshError(f"the featured pair's {pod.name} did not count {stat!r}")
