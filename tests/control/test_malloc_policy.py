"""The control plane's allocator policy (`control/cli/malloc_policy.py`): with it, buffers of a
push's size come from the heap and stay there once freed (reused by the next push instead of
mapped and faulted in again); `mizzen control`'s plane installs it, a plane inside another
process does not. glibc's settings cannot be undone, so the effect is measured in processes of
the test's own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from control.cli import malloc_policy
from control.cli.control_process import ControlPlane
from tests.control.planes import bookinfo_config, fast_settings

_MEASURE = """
import ctypes, json, sys
from control.cli import malloc_policy

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
installed = int(malloc_policy.install()) if sys.argv[1] == "policy" else -1
mapped_before = libc.mallinfo2().hblkhd
held = [bytearray(1 << 20) for _ in range(16)]  # a push's buffers: 16 of 1 MiB
mapped = libc.mallinfo2().hblkhd - mapped_before
del held
print(json.dumps({"installed": installed, "mapped": mapped, "kept": libc.mallinfo2().fordblks}))
"""
MiB = 1 << 20


def _measure(mode: str) -> dict[str, int]:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, mode], cwd=root, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, int] = json.loads(done.stdout)
    return result


def test_buffers_come_from_the_heap_and_stay_for_the_next_push() -> None:
    default, policy = _measure("default"), _measure("policy")
    assert policy["installed"] == 1
    # glibc's defaults map each new 1 MiB buffer and unmap it when freed ...
    assert default["mapped"] >= 8 * MiB, default
    # ... with the policy they come from the heap, and the freed memory is kept for reuse.
    assert policy["mapped"] < MiB, policy
    assert policy["kept"] >= 15 * MiB, policy


@pytest.mark.anyio
@pytest.mark.parametrize("manage", [True, False])
async def test_the_plane_installs_it_only_when_it_manages_the_process_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manage: bool
) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(malloc_policy, "install", lambda: calls.append(True) or True)
    settings = fast_settings(bookinfo_config(tmp_path), manage_memory=manage)
    async with ControlPlane(settings):
        pass
    assert calls == ([True] if manage else [])
