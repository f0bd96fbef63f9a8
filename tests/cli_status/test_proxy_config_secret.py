"""`mizzen proxy-config secret`: the rows of Envoy's secrets dump, as istioctl shows them, from
real certificates of the mesh CA; hostile dumps give rows or nothing, never a traceback; an
Envoy admin that does not answer is one line and exit 1."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from control.cli.ca_wiring import build_identity
from control.cli.main import main
from control.cli.proxy_config_secret import secret_rows
from control.identity.keys import KeySpec, build_csr, generate_key
from control.identity.spiffe import SpiffeId
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.signer import Issued

WEB = SpiffeId("cluster.local", "shop", "web")


SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def _inline(pem: bytes) -> dict[str, str]:
    return {"inline_bytes": base64.b64encode(pem).decode()}


def _certificate_secret(name: str, source: dict[str, str]) -> dict[str, Any]:
    tls = {"certificate_chain": source, "private_key": {"inline_string": "[redacted]"}}
    return {"name": name, "secret": {"@type": SECRET_TYPE, "name": name, "tls_certificate": tls}}


def _roots_secret(name: str, source: dict[str, str]) -> dict[str, Any]:
    context = {"trusted_ca": source}
    return {"name": name, "secret": {"@type": SECRET_TYPE, "validation_context": context}}


def _dump(tmp_path: Path) -> tuple[dict[str, Any], Issued]:
    parts = build_identity(CaSettings(ca_dir=tmp_path / "ca"), None, CollectorRegistry())
    key = generate_key(KeySpec())
    issued = parts.authority.sign(build_csr(key, WEB.uri).decode(), WEB, timedelta(hours=1))
    assert isinstance(issued, Issued)
    roots = parts.authority.issuer.roots_pem.encode()
    parts.close()
    chain = "".join(issued.chain_pem).encode()
    configs = [
        _certificate_secret("default", _inline(chain)),
        _roots_secret("ROOTCA", _inline(roots)),
    ]
    return {"configs": configs}, issued


def test_each_secret_is_a_row_with_its_identity_and_validity(tmp_path: Path) -> None:
    dump, issued = _dump(tmp_path)
    default, roots = secret_rows(dump)
    leaf = issued.leaf
    assert default[:4] == ["default", "Cert Chain", WEB.uri, f"{leaf.serial_number:x}"]
    assert default[5] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert default[6].startswith("1: ")  # the chain ends at the root
    assert roots[:3] == ["ROOTCA", "CA", "-"]
    assert roots[6].startswith("1: ")


@pytest.mark.parametrize(
    "dump",
    [
        {},
        {"configs": "nope"},
        {"configs": [None, 3, {"secret": "x"}, {"secret": {"name": "odd"}}]},
        {"configs": [_certificate_secret("default", {"inline_bytes": "!!not base64!!"})]},
        {"configs": [_roots_secret("x" * 10_000, {"inline_string": "-----BEGIN CERT\ngarbage"})]},
    ],
)
def test_hostile_dumps_give_rows_or_nothing(dump: dict[str, Any]) -> None:
    rows = secret_rows(dump)
    assert all(len(row) == 7 for row in rows)
    assert all(len(cell) <= 200 for row in rows for cell in row)


def test_an_unreachable_envoy_admin_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["proxy-config", "secret", "web-1.shop", "--envoy-admin", "http://127.0.0.1:1"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("mizzen proxy-config secret: ")
    assert err.count("\n") == 1
