"""Writes the Grafana dashboards of `manifests/addons/grafana/dashboards/` and the Grafana addon
that serves them (`manifests/addons/grafana.yaml`); a test fails when the files drift from this
script. Dashboards: mesh overview, service, workload, control plane, built from Istio's
standard metrics and the control plane's `pilot_*`/`citadel_*` series.

    .venv/bin/python hack/gen_dashboards.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_addon import grafana_manifest

ADDONS = Path(__file__).resolve().parent.parent / "manifests" / "addons"
OUT = ADDONS / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "[$__rate_interval]"
OK = 'response_code!~"5.."'


class Board:
    """Panels laid out two per row (stats four per row)."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid, self.title, self.description = uid, title, description
        self.panels: list[dict[str, Any]] = []
        self.variables: list[dict[str, Any]] = []
        self._x = self._y = 0

    def _place(self, width: int, height: int) -> dict[str, int]:
        if self._x + width > 24:
            self._x, self._y = 0, self._y + height
        position = {"x": self._x, "y": self._y, "w": width, "h": height}
        self._x += width
        return position

    def row(self, title: str) -> None:
        self._x, self._y = 0, self._y + 8
        self.panels.append(
            {"id": len(self.panels) + 1, "type": "row", "title": title, "collapsed": False,
             "gridPos": {"x": 0, "y": self._y, "w": 24, "h": 1}, "panels": []}
        )  # fmt: skip
        self._y += 1

    def panel(
        self, title: str, targets: list[tuple[str, str]], *, kind: str = "timeseries",
        unit: str = "short", width: int = 12,
    ) -> None:  # fmt: skip
        height = 4 if kind == "stat" else 8
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": kind,
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": self._place(width, height),
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {},
                "targets": [
                    {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                     "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)
                ],
            }
        )  # fmt: skip

    def variable(self, name: str, label: str, query: str, regex: str = "") -> None:
        self.variables.append(
            {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
             "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
             "includeAll": False, "multi": False, "sort": 1, "regex": regex}
        )  # fmt: skip

    def json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["mizzen", "istio"],
            "schemaVersion": 39,
            "version": 1,
            "editable": True,
            "time": {"from": "now-30m", "to": "now"},
            "refresh": "10s",
            "timezone": "browser",
            "templating": {"list": self.variables},
            "annotations": {"list": []},
            "panels": self.panels,
        }


def _quantiles(
    selector: str, by: str, metric: str = "istio_request_duration_milliseconds"
) -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    legend = f"{{{{{by}}}}} " if by else ""
    return [
        (f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}{RATE})))",
         f"{legend}p{int(q * 100)}")
        for q in (0.5, 0.9, 0.99)
    ]  # fmt: skip


def _rate(selector: str, by: str, metric: str = "istio_requests_total") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({metric}{{{selector}}}{RATE}))"


def _success(selector: str, by: str = "") -> str:
    return f"{_rate(f'{selector},{OK}', by)} / {_rate(selector, by)}"


def mesh() -> Board:
    board = Board("mizzen-mesh", "mizzen: Mesh", "Every request between workloads of the mesh.")
    src = 'reporter="source"'
    board.panel("Global request volume", [(_rate(src, ""), "requests/s")], kind="stat",
                unit="reqps", width=6)  # fmt: skip
    board.panel("Global success rate (non-5xx)", [(_success(src), "success")], kind="stat",
                unit="percentunit", width=6)  # fmt: skip
    board.panel("4xxs", [(_rate(f'{src},response_code=~"4.."', ""), "4xx/s")], kind="stat",
                unit="reqps", width=6)  # fmt: skip
    board.panel("5xxs", [(_rate(f'{src},response_code=~"5.."', ""), "5xx/s")], kind="stat",
                unit="reqps", width=6)  # fmt: skip
    board.row("HTTP/gRPC services")
    board.panel(
        "Requests by destination service",
        [(_rate(src, "destination_service"), "{{destination_service}}")],
        unit="reqps",
    )
    board.panel(
        "Success rate by destination service",
        [(_success(src, "destination_service"), "{{destination_service}}")],
        unit="percentunit",
    )
    board.panel("Latency by destination service", _quantiles(src, "destination_service"), unit="ms")
    board.panel(
        "Requests by source and destination workload",
        [
            (
                _rate(src, "source_workload, destination_workload, response_code"),
                "{{source_workload}} -> {{destination_workload}} ({{response_code}})",
            )
        ],
        unit="reqps",
    )
    board.row("TCP services")
    board.panel(
        "TCP bytes sent by destination service",
        [
            (
                _rate(src, "destination_service", "istio_tcp_sent_bytes_total"),
                "{{destination_service}}",
            )
        ],
        unit="Bps",
    )
    board.panel("TCP bytes received by destination service",
                [(_rate(src, "destination_service", "istio_tcp_received_bytes_total"),
                  "{{destination_service}}")], unit="Bps")  # fmt: skip
    return board


def service() -> Board:
    board = Board("mizzen-service", "mizzen: Service", "One service: its clients and latency.")
    board.variable("service", "Service", "label_values(destination_service)")
    dst = 'reporter="destination",destination_service=~"$service"'
    src = 'reporter="source",destination_service=~"$service"'
    board.panel(
        "Client request volume",
        [(_rate(src, ""), "requests/s")],
        kind="stat",
        unit="reqps",
        width=8,
    )
    board.panel(
        "Client success rate (non-5xx)",
        [(_success(src), "success")],
        kind="stat",
        unit="percentunit",
        width=8,
    )
    board.panel(
        "Server request volume",
        [(_rate(dst, ""), "requests/s")],
        kind="stat",
        unit="reqps",
        width=8,
    )
    board.row("Inbound (server side)")
    board.panel(
        "Requests by source workload and code",
        [(_rate(dst, "source_workload, response_code"), "{{source_workload}} {{response_code}}")],
        unit="reqps",
    )
    board.panel(
        "Success rate by source workload",
        [(_success(dst, "source_workload"), "{{source_workload}}")],
        unit="percentunit",
    )
    board.panel("Request duration", _quantiles(dst, ""), unit="ms")
    board.panel(
        "Request and response size",
        [
            (_quantiles(dst, "", "istio_request_bytes")[0][0], "request p50"),
            (_quantiles(dst, "", "istio_response_bytes")[0][0], "response p50"),
        ],
        unit="decbytes",
    )
    board.row("TCP")
    board.panel(
        "TCP bytes received by source workload",
        [(_rate(dst, "source_workload", "istio_tcp_received_bytes_total"), "{{source_workload}}")],
        unit="Bps",
    )
    board.panel("TCP connections opened",
                [(_rate(src, "source_workload", "istio_tcp_connections_opened_total"),
                  "{{source_workload}}")], unit="cps")  # fmt: skip
    return board


def workload() -> Board:
    board = Board(
        "mizzen-workload", "mizzen: Workload", "One workload: what it serves, what it calls."
    )
    board.variable(
        "namespace",
        "Namespace",
        "label_values(istio_requests_total, destination_workload_namespace)",
    )
    # Every workload of the namespace, whether it serves (destination) or only calls (source).
    workloads = " or ".join(
        f'label_replace(istio_requests_total{{{side}_workload_namespace=~"$namespace"}}, '
        f'"workload", "$1", "{side}_workload", "(.+)")'
        for side in ("destination", "source")
    )
    board.variable(
        "workload", "Workload", f"query_result(sum by (workload) ({workloads}))",
        regex='/workload="([^"]+)"/',
    )  # fmt: skip
    inbound = (
        'reporter="destination",destination_workload_namespace=~"$namespace",'
        'destination_workload=~"$workload"'
    )
    outbound = (
        'reporter="source",source_workload_namespace=~"$namespace",source_workload=~"$workload"'
    )
    board.row("Inbound")
    board.panel(
        "Incoming requests by source and code",
        [
            (
                _rate(inbound, "source_workload, response_code"),
                "{{source_workload}} {{response_code}}",
            )
        ],
        unit="reqps",
    )
    board.panel(
        "Incoming success rate",
        [(_success(inbound, "source_workload"), "{{source_workload}}")],
        unit="percentunit",
    )
    board.panel("Incoming request duration", _quantiles(inbound, ""), unit="ms")
    board.panel(
        "Incoming TCP bytes",
        [
            (
                _rate(inbound, "source_workload", "istio_tcp_received_bytes_total"),
                "received from {{source_workload}}",
            ),
            (
                _rate(inbound, "source_workload", "istio_tcp_sent_bytes_total"),
                "sent to {{source_workload}}",
            ),
        ],
        unit="Bps",
    )
    board.row("Outbound")
    board.panel(
        "Outgoing requests by destination and code",
        [
            (
                _rate(outbound, "destination_service, response_code"),
                "{{destination_service}} {{response_code}}",
            )
        ],
        unit="reqps",
    )
    board.panel("Outgoing request duration", _quantiles(outbound, "destination_service"), unit="ms")
    sent = _rate(outbound, "destination_service", "istio_tcp_sent_bytes_total")
    board.panel("Outgoing TCP bytes", [(sent, "sent to {{destination_service}}")], unit="Bps")
    return board


def control_plane() -> Board:
    board = Board(
        "mizzen-control-plane",
        "mizzen: Control plane",
        "The control plane under Istio's pilot/citadel names (and mizzen's own).",
    )
    board.panel("Connected proxies", [("sum(pilot_xds)", "proxies")], kind="stat", width=6)
    board.panel(
        "Invalid config documents",
        [("sum(mizzen_config_invalid_documents)", "invalid")],
        kind="stat",
        width=6,
    )
    board.panel(
        "Pushes/s",
        [(f"sum(rate(pilot_xds_pushes{RATE}))", "pushes/s")],
        kind="stat",
        unit="ops",
        width=6,
    )
    board.panel(
        "NACKs/s",
        [(f"sum(rate(pilot_total_xds_rejects{RATE}))", "rejects/s")],
        kind="stat",
        unit="ops",
        width=6,
    )
    board.row("xDS")
    board.panel(
        "Pushes by type",
        [(f"sum by (type) (rate(pilot_xds_pushes{RATE}))", "{{type}}")],
        unit="ops",
    )
    board.panel(
        "Rejected pushes (NACKs) by type",
        [(f"sum by (type) (rate(pilot_total_xds_rejects{RATE}))", "{{type}}")],
        unit="ops",
    )
    board.panel(
        "Proxy convergence time", _quantiles("", "", "pilot_proxy_convergence_time"), unit="s"
    )
    board.panel(
        "Translations/s",
        [(f"sum(rate(mizzen_xds_translations_total{RATE}))", "translations/s")],
        unit="ops",
    )
    board.row("Certificates")
    board.panel(
        "Certificate requests",
        [
            (f"sum(rate(citadel_server_csr_count{RATE}))", "CSRs/s"),
            (f"sum(rate(citadel_server_success_cert_issuance_count{RATE}))", "issued/s"),
        ],
        unit="ops",
    )
    refused = f"sum(rate(citadel_server_csr_sign_err_count{RATE}))"
    board.panel("Certificate refusals", [(refused, "refused/s")], unit="ops")
    return board


BOARDS = {"mesh.json": mesh, "service.json": service, "workload.json": workload,
          "control-plane.json": control_plane}  # fmt: skip


def render() -> dict[str, str]:
    return {name: json.dumps(build().json(), indent=2) + "\n" for name, build in BOARDS.items()}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    dashboards = render()
    for name, text in dashboards.items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    (ADDONS / "grafana.yaml").write_text(grafana_manifest(dashboards))
    print(f"wrote {ADDONS / 'grafana.yaml'}")


if __name__ == "__main__":
    main()
