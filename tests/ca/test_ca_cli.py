"""`mizzen token create`, `mizzen ca inspect`, `mizzen ca rotate-root`, and `mizzen ca serve`'s
flag errors, through the CLI's entry point."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from control.cli.main import main
from control.identity.keys import KeySpec, generate_key
from control.identity.spiffe import SpiffeId
from control.plane.ca import jwt
from control.plane.ca.local_tokens import LocalTokenAuthenticator, load_or_create_token_key
from control.plane.ca.material import self_signed_root
from control.plane.ca.store import FileCaStore


def _ca(directory: Path) -> Path:
    FileCaStore(directory).create(
        self_signed_root(generate_key(KeySpec()), datetime.now(UTC), "cluster.local")
    )
    return directory


def test_token_create_prints_a_token_the_ca_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["token", "create", "--ca-dir", str(tmp_path / "ca"), "--namespace", "shop",
                 "--service-account", "web", "--ttl", "30m"])  # fmt: skip
    assert code == 0
    token = capsys.readouterr().out.strip()
    claims = json.loads(jwt.b64url_decode(token.split(".")[1]))
    assert claims["exp"] - claims["iat"] == 1800
    key = load_or_create_token_key(tmp_path / "ca")
    authenticator = LocalTokenAuthenticator.for_key(
        key, "mizzen-ca", "cluster.local", lambda: datetime.now(UTC)
    )
    assert authenticator.authenticate(token) == SpiffeId("cluster.local", "shop", "web")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ttl", "12"], '--ttl: duration "12" has no unit'),
        (["--ttl", "9000h"], "--ttl: token lifetime"),
        (["--namespace", "Bad_NS"], "--namespace:"),
        (["--service-account", "web_1"], "--service-account:"),
    ],
)
def test_token_create_names_a_bad_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = {"--namespace": "shop", "--service-account": "web"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["token", "create", "--ca-dir", str(tmp_path / "ca")]
    for flag, value in base.items():
        argv += [flag, value]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_ca_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _ca(tmp_path / "ca")
    assert main(["ca", "inspect", "--ca-dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "signing certificate:" in out
    assert "CN=mizzen root CA,O=cluster.local" in out
    assert "trust bundle (1 root(s))" in out
    assert "root rotation: none under way" in out
    assert main(["ca", "inspect", "--ca-dir", str(tmp_path / "absent")]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_rotate_root_phase_by_phase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(_ca(tmp_path / "ca"))
    assert main(["ca", "rotate-root", "--ca-dir", directory]) == 0
    assert "no rotation under way (1 root(s) trusted)" in capsys.readouterr().out
    assert main(["ca", "rotate-root", "--ca-dir", directory, "--phase", "finish"]) == 1
    assert "comes after --phase add" in capsys.readouterr().err
    assert main(["ca", "rotate-root", "--ca-dir", directory, "--phase", "add"]) == 0
    assert "once every proxy has it, run --phase activate" in capsys.readouterr().out
    assert main(["ca", "rotate-root", "--ca-dir", directory]) == 0
    assert "added to the trust bundle" in capsys.readouterr().out
    assert main(["ca", "rotate-root", "--ca-dir", directory, "--phase", "activate"]) == 0
    assert "run --phase finish" in capsys.readouterr().out
    assert main(["ca", "inspect", "--ca-dir", directory]) == 0
    assert "trust bundle (2 root(s))" in capsys.readouterr().out
    assert main(["ca", "rotate-root", "--ca-dir", directory, "--phase", "finish"]) == 0
    assert "old root dropped" in capsys.readouterr().out
    assert main(["ca", "inspect", "--ca-dir", directory]) == 0
    assert "trust bundle (1 root(s))" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--ca-dir is required without --kube"),
        (
            ["--ca-dir", "x", "--workload-cert-ttl", "2h", "--max-workload-cert-ttl", "1h"],
            "--max-workload-cert-ttl must be at least --workload-cert-ttl",
        ),
        (["--ca-dir", "x", "--workload-cert-ttl", "soon"], "--workload-cert-ttl: invalid"),
        (["--ca-dir", "x", "--trust-domain", "Bad Domain"], "--trust-domain:"),
    ],
)
def test_ca_serve_names_a_bad_flag(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["ca", "serve", "--secure-port", "0", *args]) == 2
    assert message in capsys.readouterr().err
