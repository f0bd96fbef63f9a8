"""Host-list relations (Istio's host.Name.Matches and SubsetOf) computed without comparing every
pair: a wildcard `*X` covers a host that ends with `X`, so each host looks up its own suffixes in
a table of the wildcards. That is linear in the hosts' total length, where comparing every pair,
as Istio does, takes minutes on a hostile list of 50,000 hosts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence


def _wildcards(hosts: Sequence[str]) -> dict[str, int]:
    """`X` -> the index of the first wildcard host `*X`."""
    table: dict[str, int] = {}
    for index, host in enumerate(hosts):
        if host.startswith("*"):
            table.setdefault(host[1:], index)
    return table


def _covering(host: str, wildcards: Mapping[str, int], *, start: int = 0) -> Iterator[int]:
    """Indices of the wildcards `*X` with `host` ending in `X` (from `host[start:]` on)."""
    for cut in range(start, len(host) + 1):
        index = wildcards.get(host[cut:])
        if index is not None:
            yield index


def duplicate_hosts(hosts: Sequence[str]) -> list[tuple[str, str]]:
    """(earlier, later) for each host that equals or overlaps an earlier one (one pair per later
    host): equal, or one a wildcard covering the other."""
    first: dict[str, int] = {}
    for index, host in enumerate(hosts):
        first.setdefault(host, index)
    wildcards = _wildcards(hosts)
    partner: dict[int, int] = {}

    def pair(one: int, other: int) -> None:
        earlier, later = min(one, other), max(one, other)
        partner[later] = min(partner.get(later, earlier), earlier)

    for index, host in enumerate(hosts):
        if first[host] != index:
            pair(first[host], index)
            continue
        for other in _covering(host, wildcards):
            if other != index:
                pair(other, index)
    return [(hosts[partner[later]], hosts[later]) for later in sorted(partner)]


class HostSet:
    """Hosts to test others against (SubsetOf: `a.b.com` is within `*.b.com`, `*.b.com` within
    `*.com`, `*.com` not within `*.b.com`)."""

    def __init__(self, hosts: Sequence[str]) -> None:
        self._hosts = tuple(hosts)
        self._exact = frozenset(hosts)
        self._wildcards = _wildcards(hosts)

    def listed(self, most: int = 10) -> str:
        """The hosts for a message, at most `most` of them."""
        shown = ", ".join(self._hosts[:most])
        more = len(self._hosts) - most
        return f"{shown}, … ({more} more)" if more > 0 else shown

    def covers(self, host: str) -> bool:
        if host in self._exact:
            return True
        # A wildcard is within a wildcard at least as long: cut after its own `*`.
        start = 1 if host.startswith("*") else 0
        return next(_covering(host, self._wildcards, start=start), None) is not None
