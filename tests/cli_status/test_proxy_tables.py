"""The pure parts of `proxy-status` and `proxy-config`: sync states, rows from resources, and
the sections of Envoy's admin output."""

from __future__ import annotations

from control.cli.proxy_config_tables import (
    cluster_row,
    cluster_status_rows,
    control_rows,
    envoy_resources,
    envoy_rows,
    listener_rows,
    route_rows,
)
from control.cli.proxy_status_cmd import newest_version, render_table, status_rows, type_state


def test_type_states() -> None:
    assert type_state(None) == "NOT SENT"
    assert type_state({"sent": None}) == "NOT SENT"
    assert type_state({"sent": "p-3", "acked": "p-3"}) == "SYNCED"
    assert type_state({"sent": "p-4", "acked": "p-3"}) == "STALE"
    behind = {"sent": "p-3", "acked": "p-3", "latest": "p-4", "inSync": False}
    assert type_state(behind) == "STALE"
    unknown = {"sent": "p-3", "acked": "p-3", "latest": None, "inSync": False}
    assert type_state(unknown) == "SYNCED"
    nacked = {"sent": "p-4", "acked": "p-3", "nacked": "p-4", "nackError": "bad\n  route"}
    assert type_state(nacked) == "NACKED (bad route)"
    # A NACK of an older version, then a good one ACKed: synced again.
    assert type_state({"sent": "p-5", "acked": "p-5", "nacked": "p-4"}) == "SYNCED"


def test_status_rows_skip_malformed_entries() -> None:
    """An odd server's /debug/syncz (not mizzen's shape) gives rows, never a traceback."""
    syncz = {"a.b": {"types": {"cds": "x", "lds": {"sent": "p-1", "acked": "p-1"}}},
             "c.d": 5, "e.f": {"types": [1]}}  # fmt: skip
    rows = status_rows(syncz)
    assert [row[:3] for row in rows] == [
        ["a.b", "NOT SENT", "SYNCED"],
        ["e.f", "NOT SENT", "NOT SENT"],
    ]


def test_newest_version_orders_by_counter() -> None:
    types: dict[str, dict[str, str | None]] = {
        "cds": {"sent": "ab-9"}, "rds": {"sent": "ab-12"}, "eds": {"sent": None},
    }  # fmt: skip
    assert newest_version(types) == "ab-12"
    assert newest_version({}) == "-"


def test_render_table_aligns_columns() -> None:
    text = render_table(["A", "LONGER"], [["wide-cell", "x"], ["y", "z"]])
    assert text.splitlines() == ["A          LONGER", "wide-cell  x", "y          z"]


def test_cluster_rows_follow_istio_names() -> None:
    assert cluster_row({"name": "outbound|9080|v1|reviews.default.svc.cluster.local",
                        "type": "EDS"}) == [
        "reviews.default.svc.cluster.local", "9080", "v1", "outbound", "EDS"]  # fmt: skip
    assert cluster_row({"name": "inbound|8080||", "type": "ORIGINAL_DST"}) == [
        "-", "8080", "-", "inbound", "ORIGINAL_DST"]  # fmt: skip
    assert cluster_row({"name": "BlackHoleCluster"}) == [
        "BlackHoleCluster",
        "-",
        "-",
        "-",
        "STATIC",
    ]


def test_listener_rows_show_match_and_destination() -> None:
    listener = {
        "name": "virtualInbound",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}},
        "filter_chains": [
            {"filter_chain_match": {"destination_port": 9080},
             "filters": [{"name": "tcp", "typed_config": {"cluster": "inbound|9080||"}}]},
            {"filters": [{"name": "hcm", "typed_config": {"rds": {"route_config_name": "80"}}}]},
        ],
    }  # fmt: skip
    assert listener_rows(listener) == [
        ["virtualInbound", "0.0.0.0", "15006", "port 9080", "Cluster: inbound|9080||"],
        ["virtualInbound", "0.0.0.0", "15006", "ALL", "Route: 80"],
    ]


def test_route_rows_one_per_route() -> None:
    config = {
        "name": "9080",
        "virtual_hosts": [{
            "name": "reviews:9080", "domains": ["reviews", "reviews.default", "10.0.0.1"],
            "routes": [
                {"match": {"prefix": "/", "headers": [{"name": "end-user"}]},
                 "route": {"cluster": "outbound|9080|v2|reviews"}},
                {"match": {"path": "/x"}, "route": {"weighted_clusters": {"clusters": [
                    {"name": "a", "weight": 80}, {"name": "b", "weight": 20}]}}},
                {"match": {"safe_regex": {"regex": "/y.*"}}, "direct_response": {"status": 418}},
            ],
        }],
    }  # fmt: skip
    domains = "reviews, reviews.default +1 more"
    assert route_rows(config) == [
        ["9080", "reviews:9080", domains, "/* [end-user]", "outbound|9080|v2|reviews"],
        ["9080", "reviews:9080", domains, "/x", "a(80), b(20)"],
        ["9080", "reviews:9080", domains, "~/y.*", "direct response 418"],
    ]


def test_route_tables_keep_envoys_route_order() -> None:
    """Envoy takes a virtual host's first matching route: a catch-all printed before the header
    match it follows would misstate precedence (issue 17). Route tables come sorted by name."""
    header = {"match": {"prefix": "/", "headers": [{"name": "x-user"}]}, "route": {"cluster": "z"}}
    catch_all = {"match": {"prefix": "/"}, "route": {"cluster": "a"}}
    tables = [
        {"name": "9090", "virtual_hosts": [{"name": "b", "domains": ["b"], "routes": [catch_all]}]},
        {"name": "80", "virtual_hosts": [
            {"name": "z", "domains": ["z"], "routes": [header, catch_all]},
            {"name": "a", "domains": ["a"], "routes": [catch_all]},
        ]},
    ]  # fmt: skip
    expected = [
        ["80", "z", "z", "/* [x-user]", "z"],
        ["80", "z", "z", "/*", "a"],
        ["80", "a", "a", "/*", "a"],
        ["9090", "b", "b", "/*", "a"],
    ]
    assert control_rows("routes", tables) == expected
    assert envoy_rows("routes", tables) == expected


def test_envoy_sections_and_cluster_statuses() -> None:
    dump = {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "static_clusters": [{"cluster": {"name": "xds-grpc"}}],
         "dynamic_active_clusters": [{"cluster": {"name": "outbound|80||a"}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": [{"name": "warming-only", "warming_state": {}},
                               {"name": "l", "active_state": {"listener": {"name": "l"}}}]},
    ]}  # fmt: skip
    assert [c["name"] for c in envoy_resources("clusters", dump)] == ["xds-grpc", "outbound|80||a"]
    assert [x["name"] for x in envoy_resources("listeners", dump)] == ["l"]
    status = {"name": "outbound|80||a", "host_statuses": [
        {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}},
         "health_status": {"eds_health_status": "HEALTHY"}},
        {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 80}},
         "health_status": {"failed_outlier_check": True}},
    ]}  # fmt: skip
    assert cluster_status_rows(status) == [
        ["10.0.0.1:80", "HEALTHY", "OK", "outbound|80||a"],
        ["10.0.0.2:80", "HEALTHY", "FAILED", "outbound|80||a"],
    ]


def test_tls_settings_show_in_the_tables() -> None:
    """The mTLS work's transport sockets: clusters (auto, mesh, files) and inbound chains."""
    tls = "envoy.transport_sockets.tls"
    mesh = {"name": tls, "typed_config": {"common_tls_context": {
        "tls_certificate_sds_secret_configs": [{"name": "default"}]}}}  # fmt: skip
    files = {"name": tls, "typed_config": {"common_tls_context": {}}}
    name = "outbound|80||web.shop.svc.cluster.local"
    auto = {"name": name, "type": "EDS", "transport_socket_matches": [{"name": "tlsMode-istio"}]}
    assert cluster_row(auto)[-1] == "EDS (auto mTLS)"
    assert cluster_row({"name": name, "type": "EDS", "transport_socket": mesh})[-1] == "EDS (mTLS)"
    assert cluster_row({"name": name, "type": "EDS", "transport_socket": files})[-1] == "EDS (TLS)"
    ads = {"ads": {}}
    secret = {"name": tls, "typed_config": {"common_tls_context": {
        "tls_certificate_sds_secret_configs": [{"name": "kubernetes://pay", "sds_config": ads}],
        "combined_validation_context": {"validation_context_sds_secret_config": {
            "name": "kubernetes://pay-cacert", "sds_config": ads}}}}}  # fmt: skip
    row = cluster_row({"name": name, "type": "EDS", "transport_socket": secret})
    assert row[-1] == "EDS (mTLS, Secret pay)"
    del secret["typed_config"]["common_tls_context"]["tls_certificate_sds_secret_configs"]
    row = cluster_row({"name": name, "type": "EDS", "transport_socket": secret})
    assert row[-1] == "EDS (TLS, Secret pay)"
    strict = {"name": tls, "typed_config": {"require_client_certificate": True}}
    listener = {
        "name": "virtualInbound",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}},
        "filter_chains": [{"filter_chain_match": {"destination_port": 8080},
                           "transport_socket": strict, "filters": []}],
        "default_filter_chain": {"transport_socket": strict, "filters": []},
    }  # fmt: skip
    rows = listener_rows(listener)
    assert [r[3] for r in rows] == ["port 8080; mTLS", "default; mTLS"]
