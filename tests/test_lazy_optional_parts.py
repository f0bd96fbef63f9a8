"""A control plane on `--config-dir` without webhooks or `--kube` does not load what only those
use: the JWKS client (httpx and its TLS context, until a RequestAuthentication names a
`jwksUri`), the webhooks' server, the Lease's duties. Each is resident memory for the process's
life: together ~5 MB of the scale benchmark's peak (README, "Memory")."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ("httpx", "webhook.app", "webhook.server", "control.cli.control_leader")

PROBE = f"""
import sys
from pathlib import Path
from control.cli.control_cmd import _plane
from control.cli.control_process import ControlSettings
plane = _plane(ControlSettings(config_dir=Path(".")), None)
assert plane.source is not None
print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))
"""


def _run(probe: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip()


def test_a_plane_on_a_config_dir_loads_no_optional_part() -> None:
    assert _run(PROBE) == "[]"


def test_the_jwks_cache_loads_httpx_for_its_first_fetch() -> None:
    probe = "import sys\nfrom control.plane.sources.jwks import JwksCache\n"
    probe += "cache = JwksCache()\nprint('httpx' in sys.modules)\n"
    probe += "print(type(cache.client).__module__, 'httpx' in sys.modules)\n"
    assert _run(probe).splitlines() == ["False", "httpx True"]
