"""mTLS in a sidecar's resources, without Envoy: the inbound chains per PeerAuthentication mode
(policy and telemetry kept on each), XFCC, and the outbound TLS per DestinationRule and
auto-mTLS. The wire tests (tests/e2e/test_mtls.py) prove the same with real Envoys."""

from __future__ import annotations

from typing import Any

from control.config.mesh_config import MeshConfig
from control.plane.model.build import build_state
from control.plane.model.state import Document, MeshState
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.shared import MeshTranslation
from control.plane.xds.translate.tls_sockets import MESH_ALPN, REFUSED_SAN
from tests.control.test_peer_authn import pa

TLS_LABEL = "security.istio.io/tlsMode"
WEB = "outbound|80||web.shop.svc.cluster.local"
DB = "outbound|5432||db.shop.svc.cluster.local"


def _pod(name: str, ip: str, labels: dict[str, str], account: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"serviceAccountName": account, "containers": [{"name": "app"}]},
        "status": {"phase": "Running", "podIP": ip},
    }


def _service(name: str, port: int, target: int, port_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "clusterIP": f"10.96.0.{port % 250}",
            "selector": {"app": name},
            "ports": [{"name": port_name, "port": port, "targetPort": target}],
        },
    }


def _state(*extra: dict[str, Any], **mesh: Any) -> MeshState:
    docs = [
        _service("web", 80, 8080, "http"),
        _service("db", 5432, 5432, "tcp"),
        _pod("web-1", "10.1.0.1", {"app": "web", TLS_LABEL: "istio"}, "web"),
        _pod("web-2", "10.1.0.2", {"app": "web"}, "web-plain"),
        _pod("db-1", "10.1.0.3", {"app": "db", TLS_LABEL: "istio"}, "db"),
        _pod("client", "10.1.0.9", {"app": "client", TLS_LABEL: "istio"}, "client"),
        *extra,
    ]
    state = build_state([Document(str(i), d) for i, d in enumerate(docs)], MeshConfig(**mesh))
    assert not [p for p in state.problems if p.severity == "error"], state.problems
    return state


def _proxy(pod: str, ip: str, sds: bool = True) -> Any:
    node = f"sidecar~{ip}~{pod}.shop~shop.svc.cluster.local"
    return parse_node(node, {"SDS": "true"} if sds else {})


def _dump(state: MeshState, pod: str = "web-1", ip: str = "10.1.0.1", sds: bool = True) -> Any:
    return translate(state, _proxy(pod, ip, sds)).to_json()


def _inbound(dump: Any) -> dict[str, Any]:
    (listener,) = [x for x in dump["lds"] if x["name"] == "virtualInbound"]
    return listener


def _chains(dump: Any, port: int) -> dict[str, dict[str, Any]]:
    return {
        c["name"]: c
        for c in _inbound(dump)["filter_chains"]
        if c["filter_chain_match"].get("destination_port") == port
    }


def _cluster(dump: Any, name: str) -> dict[str, Any]:
    (found,) = [c for c in dump["cds"] if c["name"] == name]
    return found


def _tls_context(socket: dict[str, Any]) -> dict[str, Any]:
    assert socket["name"] == "envoy.transport_sockets.tls"
    return socket["typed_config"]


def _hcm(chain: dict[str, Any]) -> dict[str, Any]:
    (manager,) = chain["filters"]
    return manager["typed_config"]


def test_without_a_workload_certificate_everything_stays_plaintext() -> None:
    dump = _dump(_state(pa("m", "istio-system", "STRICT")), sds=False)
    chains = _chains(dump, 8080)
    assert list(chains) == ["inbound|8080||"]
    assert "transport_socket" not in chains["inbound|8080||"]
    assert "transport_socket" not in _inbound(dump)["default_filter_chain"]
    web = _cluster(_dump(_state(), "client", "10.1.0.9", sds=False), WEB)
    assert "transport_socket_matches" not in web
    assert "transport_socket" not in web


def test_permissive_by_default_mtls_by_alpn_app_tls_passed_through_plaintext_served() -> None:
    dump = _dump(_state())
    listener = _inbound(dump)
    filters = [f["name"] for f in listener["listener_filters"]]
    assert filters == [
        "envoy.filters.listener.original_dst",
        "envoy.filters.listener.tls_inspector",
    ]
    chains = _chains(dump, 8080)
    assert set(chains) == {"inbound|8080||-mtls", "inbound|8080||-tls", "inbound|8080||"}
    mtls = chains["inbound|8080||-mtls"]
    assert mtls["filter_chain_match"]["transport_protocol"] == "tls"
    assert mtls["filter_chain_match"]["application_protocols"] == list(MESH_ALPN)
    context = _tls_context(mtls["transport_socket"])
    assert context["require_client_certificate"] is True
    common = context["common_tls_context"]
    assert common["tls_certificate_sds_secret_configs"][0]["name"] == "default"
    validation = common["combined_validation_context"]["validation_context_sds_secret_config"]
    assert validation["name"] == "ROOTCA"
    assert _hcm(mtls)["forward_client_cert_details"] == "APPEND_FORWARD"
    assert _hcm(mtls)["set_current_client_cert_details"] == {"subject": True, "uri": True}
    passthrough = chains["inbound|8080||-tls"]
    assert passthrough["filter_chain_match"] == {
        "destination_port": 8080,
        "transport_protocol": "tls",
    }
    assert "transport_socket" not in passthrough  # the app's own TLS, untouched
    assert passthrough["filters"][-1]["name"] == "envoy.filters.network.tcp_proxy"
    plain = chains["inbound|8080||"]
    assert plain["filter_chain_match"]["transport_protocol"] == "raw_buffer"
    assert "transport_socket" not in plain


def test_strict_one_tls_chain_per_port_and_undeclared_ports_too() -> None:
    dump = _dump(_state(pa("n", "shop", "STRICT")))
    chains = _chains(dump, 8080)
    assert list(chains) == ["inbound|8080||"]
    chain = chains["inbound|8080||"]
    assert chain["filter_chain_match"] == {"destination_port": 8080}  # plaintext lands here too
    assert _tls_context(chain["transport_socket"])["require_client_certificate"] is True
    default = _inbound(dump)["default_filter_chain"]
    assert _tls_context(default["transport_socket"])["require_client_certificate"] is True
    db = _chains(_dump(_state(pa("n", "shop", "STRICT")), "db-1", "10.1.0.3"), 5432)
    (tcp,) = db.values()
    assert tcp["filters"][-1]["name"] == "envoy.filters.network.tcp_proxy"
    assert (
        "istio-peer-exchange"
        in _tls_context(tcp["transport_socket"])["common_tls_context"]["alpn_protocols"]
    )


def test_disable_and_port_level_override() -> None:
    state = _state(pa("w", "shop", "DISABLE", {"app": "web"}, {8080: "STRICT"}))
    dump = _dump(state)
    (chain,) = _chains(dump, 8080).values()
    assert "transport_socket" in chain
    assert "transport_socket" not in _inbound(dump)["default_filter_chain"]  # workload: DISABLE
    (plain,) = _chains(_dump(_state(pa("n", "shop", "DISABLE"))), 8080).values()
    assert "transport_socket" not in plain


def test_policy_filters_and_telemetry_on_every_chain() -> None:
    deny = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny", "namespace": "shop"},
        "spec": {"action": "DENY", "rules": [{"from": [{"source": {"principals": ["x"]}}]}]},
    }
    chains = _chains(_dump(_state(deny)), 8080)
    for name in ("inbound|8080||-mtls", "inbound|8080||"):
        http = [f["name"] for f in _hcm(chains[name])["http_filters"]]
        assert "envoy.filters.http.rbac" in http, name
        assert _hcm(chains[name]).get("access_log"), name  # telemetry's stats loggers
    tls = [f["name"] for f in chains["inbound|8080||-tls"]["filters"]]
    assert tls[:1] == ["envoy.filters.network.rbac"]


def test_auto_mtls_per_endpoint_by_the_injectors_label() -> None:
    dump = _dump(_state(), "client", "10.1.0.9")
    web = _cluster(dump, WEB)
    matches = web["transport_socket_matches"]
    assert [m["match"] for m in matches] == [{"tlsMode": "istio"}, {}]
    context = _tls_context(matches[0]["transport_socket"])
    assert context["sni"] == "outbound_.80_._.web.shop.svc.cluster.local"
    sans = context["common_tls_context"]["combined_validation_context"][
        "default_validation_context"
    ]["match_typed_subject_alt_names"]
    assert [s["matcher"]["exact"] for s in sans] == [
        "spiffe://cluster.local/ns/shop/sa/web",
        "spiffe://cluster.local/ns/shop/sa/web-plain",
    ]
    assert context["common_tls_context"]["alpn_protocols"][0] == "istio-http/1.1"
    assert matches[1]["transport_socket"]["name"] == "envoy.transport_sockets.raw_buffer"
    (assignment,) = [a for a in dump["eds"] if a["cluster_name"] == WEB]
    marks = {
        e["endpoint"]["address"]["socket_address"]["address"]: e.get("metadata", {})
        .get("filter_metadata", {})
        .get("envoy.transport_socket_match")
        for e in assignment["endpoints"][0]["lb_endpoints"]
    }
    assert marks == {"10.1.0.1": {"tlsMode": "istio"}, "10.1.0.2": None}


def test_auto_mtls_off_and_towards_a_disabled_destination() -> None:
    off = _cluster(_dump(_state(enableAutoMtls=False), "client", "10.1.0.9"), WEB)
    assert "transport_socket_matches" not in off
    disabled = _dump(_state(pa("w", "shop", "DISABLE", {"app": "web"})), "client", "10.1.0.9")
    assert "transport_socket_matches" not in _cluster(disabled, WEB)
    assert "transport_socket_matches" in _cluster(disabled, DB)


def _rule(traffic_policy: dict[str, Any], subsets: list[dict[str, Any]] | None = None) -> Any:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"host": "web", "trafficPolicy": traffic_policy, "subsets": subsets or []},
    }


def test_destination_rule_tls_modes_port_and_subset_levels() -> None:
    rule = _rule(
        {
            "tls": {"mode": "ISTIO_MUTUAL"},
            "portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "DISABLE"}}],
        },
        [
            {
                "name": "v1",
                "labels": {"app": "web"},
                "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
            },
        ],
    )
    dump = _dump(_state(rule), "client", "10.1.0.9")
    plain = _cluster(dump, WEB)  # port level DISABLE over the top level
    assert "transport_socket" not in plain
    assert "transport_socket_matches" not in plain
    subset = _cluster(dump, "outbound|80|v1|web.shop.svc.cluster.local")
    assert _tls_context(subset["transport_socket"])["sni"] == (
        "outbound_.80_.v1_.web.shop.svc.cluster.local"
    )


def test_simple_and_mutual_with_files() -> None:
    tls = {
        "mode": "MUTUAL",
        "caCertificates": "/etc/certs/ca.pem",
        "clientCertificate": "/etc/certs/cert.pem",
        "privateKey": "/etc/certs/key.pem",
        "subjectAltNames": ["web.example.com"],
        "sni": "web.example.com",
    }
    context = _tls_context(
        _cluster(_dump(_state(_rule({"tls": tls})), "client", "10.1.0.9"), WEB)["transport_socket"]
    )
    assert context["sni"] == "web.example.com"
    common = context["common_tls_context"]
    assert common["validation_context"]["trusted_ca"] == {"filename": "/etc/certs/ca.pem"}
    assert common["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "web.example.com"}}
    ]
    assert common["tls_certificates"][0]["private_key"] == {"filename": "/etc/certs/key.pem"}


def test_credential_name_without_secrets_fails_closed_with_a_warning() -> None:
    """A source that reads no Secrets (`--config-dir`): refused, saying `--kube` serves it."""
    rule = _rule({"tls": {"mode": "SIMPLE", "credentialName": "web-cert"}})
    docs = [Document("0", rule)]
    warned = build_state(docs, MeshConfig()).problems
    assert any(
        "credentialName: certificates from a Secret are served only with `mizzen control --kube`"
        in p.message
        for p in warned
    ), warned
    socket = _cluster(_dump(_state(rule), "client", "10.1.0.9"), WEB)["transport_socket"]
    sans = _tls_context(socket)["common_tls_context"]["validation_context"][
        "match_typed_subject_alt_names"
    ]
    assert sans == [{"san_type": "DNS", "matcher": {"exact": REFUSED_SAN}}]


def test_istio_mutual_from_a_proxy_without_a_certificate_fails_closed() -> None:
    rule = _rule({"tls": {"mode": "ISTIO_MUTUAL"}})
    socket = _cluster(_dump(_state(rule), "client", "10.1.0.9", sds=False), WEB)["transport_socket"]
    assert "tls_certificate_sds_secret_configs" not in _tls_context(socket)["common_tls_context"]


def test_shared_translation_keeps_certificate_holders_apart() -> None:
    state = _state()
    translation = MeshTranslation(state)
    with_sds = translation.for_proxy(_proxy("client", "10.1.0.9")).to_json()
    without = translation.for_proxy(_proxy("client", "10.1.0.9", sds=False)).to_json()
    assert "transport_socket_matches" in _cluster(with_sds, WEB)
    assert "transport_socket_matches" not in _cluster(without, WEB)
