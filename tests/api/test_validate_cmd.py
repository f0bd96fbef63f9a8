"""`mizzen validate`: output lines, exit codes 0/1/2, directories, stdin, YAML errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from control.cli.main import main
from tests.api.corpus import CASES_DIR

VALID_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
"""
INVALID_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}, weight: -1}], timeout: 10}]
"""
SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n"
GATEWAY = "apiVersion: networking.istio.io/v1\nkind: Widget\nmetadata: {name: gw}\n"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_valid_file_prints_ok_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(VALID_VS + "---\n" + SERVICE)
    code, lines, err = _run(capsys, "-f", str(path))
    assert code == 0
    assert lines == [
        f"{path}:0 VirtualService/reviews: ok",
        f"{path}:1 Service/reviews: skipped (not a mesh kind)",
    ]
    assert "1 valid, 0 invalid, 1 skipped" in err


def test_invalid_document_lists_errors_with_paths_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(INVALID_VS.replace("timeout: 10", "timeout: 10s") + "---\n" + VALID_VS)
    code, lines, _ = _run(capsys, "-f", str(path))
    assert code == 1
    assert f"{path}:0 VirtualService/broken: error: spec.http[0].route[0].weight: weight -1 < 0" \
        in lines  # fmt: skip
    assert f"{path}:1 VirtualService/reviews: ok" in lines


def test_structural_errors_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(INVALID_VS)
    code, lines, _ = _run(capsys, "-f", str(path))
    assert code == 1
    assert lines == [f"{path}:0 VirtualService/broken: error: spec.http[0].timeout: must be a "
                     "string, not an integer"]  # fmt: skip


def test_unknown_kind_in_mesh_group_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(GATEWAY)
    code, lines, _ = _run(capsys, "-f", str(path))
    assert code == 1
    assert lines[0].startswith(f'{path}:0 Widget/gw: error: kind: unknown kind "Widget"')


BOOKINFO_GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}]
    route: [{destination: {host: productpage, port: {number: 9080}}}]
"""
UNSERVED = """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef}
spec: {configPatches: []}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec: {address: 198.18.0.5}
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec: {template: {}}
---
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: pc}
spec: {concurrency: 2}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: tel}
spec: {}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: wasm}
spec: {url: oci://example/plugin}
"""


def test_bookinfo_gateway_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bookinfo-gateway.yaml"
    path.write_text(BOOKINFO_GATEWAY)
    code, lines, _ = _run(capsys, "-f", str(path))
    assert code == 0
    assert f"{path}:0 Gateway/bookinfo-gateway: ok" in lines
    assert f"{path}:1 VirtualService/bookinfo: ok" in lines


def test_istio_kinds_mizzen_does_not_serve_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "unserved.yaml"
    path.write_text(UNSERVED)
    code, lines, _ = _run(capsys, "-f", str(path))
    assert code == 0
    skipped = [line for line in lines if "skipped" in line and "does not serve" in line]
    assert len(skipped) == 6, lines


def test_yaml_syntax_error_names_file_and_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VALID_VS + "---\nkind: [unclosed\n")
    code, lines, err = _run(capsys, "-f", str(path))
    assert code == 1
    assert lines[0] == f"{path}:0 VirtualService/reviews: ok"
    assert lines[1].startswith(f"{path}:1 YAML syntax error: ")
    assert "line" in lines[1]
    assert "Traceback" not in err


def test_unreadable_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "vs.yaml"
    good.write_text(VALID_VS)
    code, lines, err = _run(capsys, "-f", str(tmp_path / "missing.yaml"), "-f", str(good))
    assert code == 2
    assert "missing.yaml: cannot read" in err
    assert lines == [f"{good}:0 VirtualService/reviews: ok"]


def test_directory_means_its_yaml_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(VALID_VS)
    (tmp_path / "b.yml").write_text(SERVICE)
    (tmp_path / "c.json").write_text(
        '{"apiVersion": "security.istio.io/v1", '
        '"kind": "PeerAuthentication", "metadata": {"name": "d"}}'
    )
    (tmp_path / "notes.txt").write_text("not yaml: [")
    code, lines, _ = _run(capsys, "-f", str(tmp_path))
    assert code == 0
    assert [line.split(" ", 1)[1] for line in lines] == [
        "VirtualService/reviews: ok", "Service/reviews: skipped (not a mesh kind)",
        "PeerAuthentication/d: ok",
    ]  # fmt: skip


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(INVALID_VS))
    code, lines, _ = _run(capsys, "-f", "-")
    assert code == 1
    assert lines[0].startswith("<stdin>:0 VirtualService/broken: error: ")


def test_list_kind_is_expanded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("apiVersion: v1\nkind: List\nitems:\n- " + VALID_VS.replace("\n", "\n  "))
    code, lines, _ = _run(capsys, "-f", str(path))
    assert code == 0
    assert lines == [f"{path}:0.0 VirtualService/reviews: ok"]


def test_warnings_are_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dr.yaml"
    path.write_text("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                    "metadata: {name: r}\nspec: {host: r, subsets: [{name: all}]}\n")  # fmt: skip
    code, lines, _ = _run(capsys, "-f", str(path))
    assert code == 0
    assert lines[1].startswith(f"{path}:0 DestinationRule/r: warning: spec.subsets[0]: subset")


def test_the_case_files_validate_as_annotated(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = _run(capsys, "-q", "-f", str(CASES_DIR / "bookinfo.yaml"),
                          "-f", str(CASES_DIR / "valid.yaml"))  # fmt: skip
    assert code == 0
    assert not any(": error: " in line for line in lines)
    code, _, err = _run(capsys, "-q", "-f", str(CASES_DIR / "invalid.yaml"))
    assert code == 1
    assert err.startswith("0 valid, ")
