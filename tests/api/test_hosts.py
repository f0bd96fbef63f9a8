"""The host-list relations against the pairwise definitions they replace (Istio's Matches and
SubsetOf), on random hosts built from a few labels so that overlaps are common."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from control.api.rules.hosts import HostSet, duplicate_hosts


def _matches(first: str, second: str) -> bool:
    if first == second:
        return True
    if first.startswith("*") and second.endswith(first[1:]):
        return True
    return second.startswith("*") and first.endswith(second[1:])


def _subset_of(host: str, of: str) -> bool:
    if host == of:
        return True
    if of.startswith("*"):
        return host.endswith(of[1:]) and (not host.startswith("*") or len(host) >= len(of))
    return False


_labels = st.lists(st.sampled_from(["a", "b", "ab", "com"]), min_size=1, max_size=3)
_hosts = st.builds(
    lambda prefix, labels: prefix + ".".join(labels),
    st.sampled_from(["", "", "*.", "*", "x"]),
    _labels,
) | st.just("*")


@settings(max_examples=300, deadline=None)
@given(hosts=st.lists(_hosts, max_size=8))
def test_duplicate_hosts_names_each_later_host_that_overlaps(hosts: list[str]) -> None:
    found = duplicate_hosts(hosts)
    expected_later = [
        j for j in range(len(hosts)) if any(_matches(hosts[i], hosts[j]) for i in range(j))
    ]
    assert [second for _, second in found] == [hosts[j] for j in expected_later]
    for first, second in found:
        assert _matches(first, second)


@settings(max_examples=300, deadline=None)
@given(hosts=st.lists(_hosts, max_size=6), host=_hosts)
def test_host_set_covers_as_subset_of_any(hosts: list[str], host: str) -> None:
    assert HostSet(hosts).covers(host) == any(_subset_of(host, of) for of in hosts)


def test_listed_is_bounded() -> None:
    assert HostSet(["a", "b"]).listed() == "a, b"
    assert HostSet([f"h{i}" for i in range(12)]).listed(2) == "h0, h1, … (10 more)"
