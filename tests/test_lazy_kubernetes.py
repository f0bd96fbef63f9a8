"""`mizzen control --config-dir` never imports the `kubernetes` package (it loads every API
model: a large part of the start-up); only `--kube` and the commands that talk to a cluster do."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from control.cli.main import build_parser
args = build_parser("control").parse_args(["control", "--config-dir", "."])
import control.cli.control_process, control.plane.sources.kube, control.cli.control_leader
print(sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")))
"""


def test_control_with_a_config_dir_does_not_import_kubernetes() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_kube_client_still_imports_it() -> None:
    probe = "import sys\nfrom control.plane.sources.kube import kube_client\n"
    probe += "try:\n    kube_client(None, environ={})\nexcept ValueError as e:\n    print(e)\n"
    probe += "print('kubernetes.client' in sys.modules)\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "True"
    assert "in-cluster" in out.stdout
