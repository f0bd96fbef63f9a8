"""Whether the pod has IPv6 to capture: a global-scope address on any interface."""

from __future__ import annotations

from pathlib import Path

IF_INET6 = Path("/proc/net/if_inet6")  # per network namespace: the reader's own
_SCOPE_GLOBAL = 0x00


def has_global_ipv6(if_inet6_text: str) -> bool:
    """Parses /proc/net/if_inet6 ("address ifindex prefixlen scope flags name" per line)."""
    for line in if_inet6_text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and int(fields[3], 16) == _SCOPE_GLOBAL:
            return True
    return False


def netns_has_global_ipv6(path: Path = IF_INET6) -> bool:
    """False when the kernel has IPv6 off (the file is then missing) or it cannot be read."""
    try:
        return has_global_ipv6(path.read_text())
    except OSError:
        return False
