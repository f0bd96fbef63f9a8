"""Tables of one proxy's Envoy config, with istioctl `proxy-config`'s columns, from either view:
the control plane's (`/debug/config_dump`: lists of resources per type) or Envoy's admin
(`/config_dump` sections, `/clusters?format=json` for endpoints). Both speak protobuf JSON with
proto field names, so the row builders are shared. Pure: dicts in, rows out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

Json = Mapping[str, Any]
Rows = list[list[str]]

HEADERS: Final[Mapping[str, Sequence[str]]] = {
    "clusters": ("SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"),
    "listeners": ("NAME", "ADDRESSES", "PORT", "MATCH", "DESTINATION"),
    "routes": ("NAME", "VHOST NAME", "DOMAINS", "MATCH", "DESTINATION"),
    "endpoints": ("ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"),
}
# The control plane's config dump key of each kind.
DUMP_KEYS: Final = {"clusters": "cds", "listeners": "lds", "routes": "rds", "endpoints": "eds"}


def _dicts(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _dict(value: Any) -> Json:
    return value if isinstance(value, Mapping) else {}


def _more(items: Sequence[str], shown: int = 2) -> str:
    if not items:
        return "-"
    head = ", ".join(items[:shown])
    return head if len(items) <= shown else f"{head} +{len(items) - shown} more"


# clusters ----------------------------------------------------------------------------------


def _upstream_tls(cluster: Json) -> str:
    """What the cluster's TLS is, for the TYPE column: auto mTLS (per endpoint), mesh mTLS
    (the SDS certificate), TLS with a Secret's certificates (DestinationRule credentialName,
    `kubernetes://<name>`), TLS (files), or nothing."""
    if cluster.get("transport_socket_matches"):
        return " (auto mTLS)"
    socket = _dict(cluster.get("transport_socket"))
    if socket.get("name") != "envoy.transport_sockets.tls":
        return ""
    common = _dict(_dict(socket.get("typed_config")).get("common_tls_context"))
    certificates = common.get("tls_certificate_sds_secret_configs")
    validation = _dict(_dict(common.get("combined_validation_context")).get(
        "validation_context_sds_secret_config"))  # fmt: skip
    for config in [*(certificates if isinstance(certificates, list) else []), validation]:
        name = _dict(config).get("name")
        if isinstance(name, str) and name.startswith("kubernetes://"):
            secret = name.removeprefix("kubernetes://").removesuffix("-cacert")[:64]
            return f" ({'mTLS' if certificates else 'TLS'}, Secret {secret})"
    return " (mTLS)" if certificates else " (TLS)"


def cluster_row(cluster: Json) -> list[str]:
    name = str(cluster.get("name", ""))
    kind = str(cluster.get("type") or _dict(cluster.get("cluster_type")).get("name") or "STATIC")
    kind += _upstream_tls(cluster)
    parts = name.split("|")
    if len(parts) == 4 and parts[0] in ("outbound", "inbound") and parts[1].isdigit():
        direction, port, subset, host = parts
        return [host or "-", port, subset or "-", direction, kind]
    return [name, "-", "-", "-", kind]


# listeners ---------------------------------------------------------------------------------


def _chain_match(chain: Json) -> str:
    match = _dict(chain.get("filter_chain_match"))
    parts = []
    if "destination_port" in match:
        parts.append(f"port {match['destination_port']}")
    ranges = [f"{r.get('address_prefix')}/{r.get('prefix_len', 32)}"
              for r in _dicts(match.get("prefix_ranges"))]  # fmt: skip
    if ranges:
        parts.append("addr " + _more(ranges))
    if match.get("server_names"):
        parts.append("SNI " + _more([str(s) for s in match["server_names"]]))
    if match.get("transport_protocol"):
        parts.append(f"trans {match['transport_protocol']}")
    if match.get("application_protocols"):
        parts.append("app " + ",".join(str(p) for p in match["application_protocols"]))
    socket = _dict(chain.get("transport_socket"))
    if socket.get("name") == "envoy.transport_sockets.tls":
        required = _dict(socket.get("typed_config")).get("require_client_certificate")
        parts.append("mTLS" if required else "TLS")
    return "; ".join(parts) or "ALL"


def _filter_destination(network_filter: Json) -> str | None:
    config = _dict(network_filter.get("typed_config"))
    rds = _dict(config.get("rds"))
    if rds.get("route_config_name"):
        return f"Route: {rds['route_config_name']}"
    if "route_config" in config:
        hosts = _dicts(_dict(config["route_config"]).get("virtual_hosts"))
        targets = sorted({_route_destination(r) for h in hosts for r in _dicts(h.get("routes"))})
        return f"Inline Route: {_more(targets)}"
    if config.get("cluster"):
        return f"Cluster: {config['cluster']}"
    weighted = _dicts(_dict(config.get("weighted_clusters")).get("clusters"))
    if weighted:
        return "Cluster: " + ", ".join(f"{c.get('name')}({c.get('weight', 0)})" for c in weighted)
    return None


def listener_rows(listener: Json) -> Rows:
    name = str(listener.get("name", ""))
    address = _dict(_dict(listener.get("address")).get("socket_address"))
    host, port = str(address.get("address", "-")), str(address.get("port_value", "-"))
    chains = [(c, _chain_match(c)) for c in _dicts(listener.get("filter_chains"))]
    if "default_filter_chain" in listener:
        default = _dict(listener["default_filter_chain"])
        chains.append((default, "default" + ("; mTLS" if "transport_socket" in default else "")))
    rows = []
    for chain, match in chains:
        found = [_filter_destination(f) for f in _dicts(chain.get("filters"))]
        targets = [d for d in found if d] or [
            str(f.get("name", "?")) for f in _dicts(chain.get("filters"))
        ]
        rows.append([name, host, port, match, "; ".join(targets) or "-"])
    if not rows:
        note = "original dst" if listener.get("use_original_dst") else "-"
        rows.append([name, host, port, "ALL", note])
    return rows


# routes ------------------------------------------------------------------------------------


def _route_match(match: Json) -> str:
    if "prefix" in match:
        text = f"{match['prefix']}*"
    elif "path" in match:
        text = str(match["path"])
    elif "safe_regex" in match:
        text = f"~{_dict(match['safe_regex']).get('regex', '')}"
    elif "path_separated_prefix" in match:
        text = f"{match['path_separated_prefix']}/*"
    else:
        text = "*"
    extra = [str(h.get("name")) for h in _dicts(match.get("headers"))]
    extra += [f"?{q.get('name')}" for q in _dicts(match.get("query_parameters"))]
    return f"{text} [{', '.join(extra)}]" if extra else text


def _route_destination(route: Json) -> str:
    action = _dict(route.get("route"))
    if action.get("cluster"):
        return str(action["cluster"])
    weighted = _dicts(_dict(action.get("weighted_clusters")).get("clusters"))
    if weighted:
        return ", ".join(f"{c.get('name')}({c.get('weight', 0)})" for c in weighted)
    if "redirect" in route:
        return "redirect"
    if "direct_response" in route:
        return f"direct response {_dict(route['direct_response']).get('status', '?')}"
    return "-"


def route_rows(config: Json) -> Rows:
    name = str(config.get("name", ""))
    rows = []
    for vhost in _dicts(config.get("virtual_hosts")):
        domains = [str(d) for d in vhost.get("domains", []) if isinstance(d, str)]
        routes = _dicts(vhost.get("routes")) or [{}]
        for route in routes:
            rows.append([
                name, str(vhost.get("name", "")), _more(domains),
                _route_match(_dict(route.get("match"))), _route_destination(route),
            ])  # fmt: skip
    return rows or [[name, "-", "-", "-", "-"]]


# endpoints ---------------------------------------------------------------------------------


def _socket(address: Any) -> str:
    socket = _dict(_dict(address).get("socket_address"))
    return f"{socket.get('address', '?')}:{socket.get('port_value', '?')}"


def assignment_rows(assignment: Json) -> Rows:
    """The control plane's view: a ClusterLoadAssignment (EDS); no outlier state there."""
    cluster = str(assignment.get("cluster_name", ""))
    rows = []
    for locality in _dicts(assignment.get("endpoints")):
        for lb in _dicts(locality.get("lb_endpoints")):
            address = _socket(_dict(lb.get("endpoint")).get("address"))
            rows.append([address, str(lb.get("health_status") or "HEALTHY"), "n/a", cluster])
    return rows


def cluster_status_rows(status: Json) -> Rows:
    """Envoy's view: one entry of `/clusters?format=json`'s `cluster_statuses`."""
    cluster = str(status.get("name", ""))
    rows = []
    for host in _dicts(status.get("host_statuses")):
        health = _dict(host.get("health_status"))
        outlier = "FAILED" if health.get("failed_outlier_check") else "OK"
        state = str(health.get("eds_health_status") or "HEALTHY")
        if health.get("failed_active_health_check"):
            state = "UNHEALTHY"
        rows.append([_socket(host.get("address")), state, outlier, cluster])
    return rows


# assembling --------------------------------------------------------------------------------

_ROW_BUILDERS: Final[Mapping[str, Callable[[Json], Rows]]] = {
    "clusters": lambda c: [cluster_row(c)],
    "listeners": listener_rows,
    "routes": route_rows,
    "endpoints": assignment_rows,
}


def control_rows(kind: str, resources: Sequence[Json]) -> Rows:
    """Rows sorted, except a route table's: its routes stay in Envoy's order (the first match
    wins, so order is precedence); the tables themselves come by name."""
    if kind == "routes":
        tables = sorted(resources, key=lambda table: str(table.get("name", "")))
        return [row for table in tables for row in route_rows(table)]
    return sorted(row for resource in resources for row in _ROW_BUILDERS[kind](resource))


def envoy_rows(kind: str, resources: Sequence[Json]) -> Rows:
    """Rows of Envoy's view; `resources` as `envoy_resources` returns them."""
    if kind == "endpoints":
        return sorted(row for status in resources for row in cluster_status_rows(status))
    return control_rows(kind, resources)


_SECTIONS: Final = {
    "clusters": ("ClustersConfigDump", ("static_clusters", "dynamic_active_clusters"), "cluster"),
    "listeners": ("ListenersConfigDump", ("static_listeners", "dynamic_listeners"), "listener"),
    "routes": (
        "RoutesConfigDump", ("static_route_configs", "dynamic_route_configs"), "route_config"
    ),
}  # fmt: skip


def envoy_resources(kind: str, dump: Json, *, dynamic_only: bool = False) -> list[Json]:
    """The resources of one kind in Envoy's admin output: `/config_dump` for clusters, listeners
    and routes (static ones, i.e. the bootstrap's and routes inlined in listeners, unless
    `dynamic_only`; and the active dynamic ones: warming listeners are not serving yet), the
    `/clusters?format=json` document for endpoints (only clusters that have hosts)."""
    if kind == "endpoints":
        return [s for s in _dicts(dump.get("cluster_statuses")) if s.get("host_statuses")]
    suffix, lists, field = _SECTIONS[kind]
    found: list[Json] = []
    for section in _dicts(dump.get("configs")):
        if not str(section.get("@type", "")).endswith(suffix):
            continue
        for list_name in lists[1:] if dynamic_only else lists:
            for item in _dicts(section.get(list_name)):
                holder = _dict(item.get("active_state")) if kind == "listeners" else item
                if field in holder:
                    found.append(_dict(holder[field]))
    return found


def resource_names(kind: str, resources: Sequence[Json], *, envoy: bool) -> set[str]:
    """Names to compare the two views by (endpoints: by cluster, which EDS calls
    `cluster_name` and Envoy's `/clusters` calls `name`)."""
    key = "cluster_name" if kind == "endpoints" and not envoy else "name"
    return {str(r.get(key, "")) for r in resources}
