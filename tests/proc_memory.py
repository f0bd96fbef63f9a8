"""A process's resident memory, as the memory-bound tests read it (/proc, Linux)."""

from __future__ import annotations

from pathlib import Path

MiB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """The process's resident set now (`VmRSS`), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")
