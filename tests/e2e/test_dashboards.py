"""Every PromQL query of every dashboard panel, evaluated by a real Prometheus that scraped
real sidecars and the control plane: a panel naming a metric or label that does not exist, or
that this traffic cannot fill, fails. Dashboards with variables are evaluated for each value
this traffic gives them; a panel passes when one of them returns a finite number."""

from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.addons.dashboards import ADDONS, dashboards, expressions, substitute
from tests.e2e.telemetry_mesh import ECHO_HOST, NAMESPACE, TCP_HOST, TelemetryMesh, send_traffic

pytestmark = [pytest.mark.netns, pytest.mark.envoy, pytest.mark.slow]

BINDINGS: dict[str, list[dict[str, str]]] = {
    "mesh.json": [{}],
    "service.json": [{"service": ECHO_HOST}, {"service": TCP_HOST}],
    "workload.json": [
        {"namespace": NAMESPACE, "workload": "echo-v1"},
        {"namespace": NAMESPACE, "workload": "client"},
    ],
    "control-plane.json": [{}],
}


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def _value(mesh: TelemetryMesh, expr: str) -> float:
    result = mesh.prometheus.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def _wait(mesh: TelemetryMesh, expr: str, done: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = mesh.prometheus.query(expr)
        if result and done(float(result[0]["value"][1])):
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus did not see {what} within {timeout}s")


@pytest.fixture(scope="module")
def scraped(telemetry_mesh: TelemetryMesh) -> TelemetryMesh:
    """Two rounds of traffic, each seen by Prometheus (so rates are not zero), a config change
    in between (the control plane pushes, proxies converge), then Envoy's histogram flush."""
    mesh = telemetry_mesh
    requests = 'sum(istio_requests_total{reporter="source"})'
    start = _value(mesh, requests)
    send_traffic(mesh, "dashboards-1")
    _wait(mesh, requests, lambda n: n > start, "the first round")
    seen = _value(mesh, requests)
    convergence = "sum(pilot_proxy_convergence_time_count)"
    # The count before the change must come from a scrape of the control plane, or the change
    # may converge before Prometheus first sees the series, leaving no increase to rate().
    _wait(mesh, convergence, lambda n: n > 0, "the control plane's convergence series")
    converged = _value(mesh, convergence)
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "dead", "namespace": NAMESPACE},
        "spec": {
            "host": f"dead.{NAMESPACE}.svc.cluster.local",
            "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 100}}},
        },
    }
    (mesh.config_dir / "extra.yaml").write_text(yaml.safe_dump(rule))  # fmt: skip
    send_traffic(mesh, "dashboards-2")
    _wait(mesh, requests, lambda n: n > seen, "the second round")
    _wait(mesh, convergence, lambda n: n > converged, "the proxies converging on the change")
    histograms = 'sum(istio_request_duration_milliseconds_count{reporter="source"})'
    total = _value(mesh, requests)
    _wait(mesh, histograms, lambda n: n >= total, "the histograms flushed")
    return mesh


def test_prometheus_scrapes_every_sidecar_and_the_control_plane(scraped: TelemetryMesh) -> None:
    targets = scraped.prometheus.targets_up()
    assert len(targets) == 3
    assert set(targets.values()) == {"up"}, targets


@pytest.mark.parametrize("name", sorted(BINDINGS))
def test_every_panel_query_returns_data(scraped: TelemetryMesh, name: str) -> None:
    board = dashboards()[name]
    empty = []
    for title, expr in expressions(board):
        results = [
            scraped.prometheus.query(substitute(expr, bindings)) for bindings in BINDINGS[name]
        ]
        if not any(_finite(result) for result in results):
            empty.append(f"{title}: {expr} -> {results}")
    assert not empty, "\n".join(empty)


def _variable_values(mesh: TelemetryMesh, query: str, regex: str) -> set[str]:
    """What Grafana would list: `label_values([match,] label)` through the label API, or
    `query_result(expr)` with the variable's regex applied to each series."""
    if query.startswith("query_result(") and query.endswith(")"):
        pattern = re.compile(regex.strip("/"))
        values = set()
        for sample in mesh.prometheus.query(query[len("query_result(") : -1]):
            text = "{" + ",".join(f'{k}="{v}"' for k, v in sample["metric"].items()) + "}"
            found = pattern.search(text)
            if found:
                values.add(found.group(1))
        return values
    assert query.startswith("label_values("), query
    assert query.endswith(")"), query
    match, _, label = query[len("label_values(") : -1].rpartition(",")
    return set(mesh.prometheus.label_values(label.strip(), match.strip() or '{__name__=~".+"}'))


@pytest.mark.parametrize("name", sorted(BINDINGS))
def test_variables_list_the_values_of_this_traffic(scraped: TelemetryMesh, name: str) -> None:
    board = dashboards()[name]
    for variable in board["templating"]["list"]:
        query = substitute(variable["query"]["query"], {"namespace": NAMESPACE})
        values = _variable_values(scraped, query, variable.get("regex", ""))
        wanted = {v[variable["name"]] for v in BINDINGS[name] if variable["name"] in v}
        assert wanted, variable["name"]
        assert wanted <= values, (variable["name"], values)


def test_the_addons_prometheus_config_is_valid(tmp_path: Path) -> None:
    """promtool checks everything but the Kubernetes discovery (the Debian build leaves that
    plugin out), which is swapped for a static target of the same shape."""
    [config_map] = [d for d in yaml.safe_load_all((ADDONS / "prometheus.yaml").read_text())
                    if d and d["kind"] == "ConfigMap"]  # fmt: skip
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    for job in config["scrape_configs"]:
        roles = {sd["role"] for sd in job.pop("kubernetes_sd_configs")}
        assert roles <= {"pod", "endpoints"}
        job["static_configs"] = [{"targets": ["127.0.0.1:15020"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(["promtool", "check", "config", str(path)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
