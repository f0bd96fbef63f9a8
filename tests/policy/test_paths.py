"""The path-normalisation bypass table (cases/paths.yaml) through a real Envoy: one listener
per MeshConfig `pathNormalization` mode, the same DENY policy on each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from control.config.mesh_config import MeshConfig
from tests.policy.envoy_harness import (
    PolicyEnvoy,
    Request,
    Slot,
    inbound_policy,
    run_policy_envoy,
    send,
)
from tests.policy.pki import MeshCA
from tests.policy.table import CASES, Case, documents

pytestmark = pytest.mark.envoy
TABLE: dict[str, Any] = yaml.safe_load((CASES / "paths.yaml").read_text())
MODES: list[str] = TABLE["modes"]
ROWS = [(row[0], mode, row[1 + i]) for row in TABLE["rows"] for i, mode in enumerate(MODES)]


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyEnvoy]:
    workdir = tmp_path_factory.mktemp("policy-paths")
    docs = documents(Case("paths", (TABLE["policy"],), {}, 0), {})
    slots = [
        Slot(mode, inbound_policy(docs, mesh=MeshConfig.from_mapping(
            {"pathNormalization": {"normalization": mode}})))
        for mode in MODES
    ]  # fmt: skip
    with run_policy_envoy(slots, MeshCA(workdir), workdir) as running:
        yield running


@pytest.mark.parametrize(("path", "mode", "expect"), ROWS, ids=[f"{m}:{p}" for p, m, _ in ROWS])
def test_path(envoy: PolicyEnvoy, path: str, mode: str, expect: int) -> None:
    outcome = send(envoy, mode, Request(path))
    assert outcome.status == expect, f"{mode} {path}: {outcome.status}, seen {outcome.seen_path}"
    if expect == 200:
        assert outcome.seen_path == path or mode != "NONE"
