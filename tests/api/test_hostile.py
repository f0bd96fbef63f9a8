"""Hostile and malformed input: refused quickly, never an exception, always a report."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from control.api import (
    FieldError,
    InvalidResourceError,
    ValidationReport,
    is_mesh_kind,
    parse_resource,
    validate_resource,
)


def _vs(spec: object, **metadata: object) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "x", **metadata},
        "spec": spec,
    }


def _timed(obj: object) -> tuple[ValidationReport, float]:
    """The report and the best of three timings (other tests may share the machine)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        report = validate_resource(obj)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - start)
    return report, best


def test_huge_regex_is_refused_before_compiling() -> None:
    pattern = "(a*)*" * 20_000  # 100,000 characters
    spec = {"hosts": ["a"], "http": [{"match": [{"uri": {"regex": pattern}}],
                                      "route": [{"destination": {"host": "a"}}]}]}  # fmt: skip
    report, seconds = _timed(_vs(spec))
    assert [str(e) for e in report.errors] == [
        "spec.http[0].match[0].uri.regex: regex is too large, max length allowed is 1024"
    ]
    assert seconds < 0.05


def test_deep_nesting_is_refused_fast() -> None:
    deep: Any = {}
    for _ in range(100_000):
        deep = {"a": deep}
    report, seconds = _timed(_vs({"hosts": ["a"], "http": [deep]}))
    assert not report.ok
    assert "nested too deeply" in str(report.errors[0])
    assert seconds < 0.05


def test_deep_lists_and_cycles_are_refused() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert "nested too deeply" in str(validate_resource(_vs({"hosts": cyclic})))


def test_alias_bomb_is_refused_fast() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 9):
        refs = ", ".join([f"*{chr(96 + level)}"] * 10)
        bomb += f"{chr(97 + level)}: &{chr(97 + level)} [{refs}]\n"
    document = yaml.load(bomb, Loader=yaml.CSafeLoader)  # shared references, 10^9 leaves
    report, seconds = _timed(_vs({"hosts": ["a"], "bomb": document}))
    assert "too large" in str(report.errors[0])
    assert seconds < 0.2


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ([], "a Kubernetes object must be a mapping"),
        ("text", "a Kubernetes object must be a mapping"),
        ({}, "apiVersion: required string field"),
        ({"apiVersion": "networking.istio.io/v1"}, "kind: required string field"),
        ({"apiVersion": "v1", "kind": "Pod"}, 'apiVersion: "v1" is not a mesh group'),
        ({"apiVersion": "networking.istio.io/v1", "kind": "Widget", "metadata": {"name": "g"}},
         'kind: unknown kind "Widget" in networking.istio.io'),
        ({"apiVersion": "security.istio.io/v1", "kind": "VirtualService"},
         'kind: unknown kind "VirtualService" in security.istio.io'),
        ({"apiVersion": "networking.istio.io/v2", "kind": "Sidecar"},
         'apiVersion: unsupported version "v2"'),
        ({"apiVersion": "security.istio.io/v1alpha3", "kind": "PeerAuthentication"},
         'unsupported version "v1alpha3"'),
        ({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication"},
         "metadata: required object"),
        ({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {}},
         "metadata.name: required string field"),
        ({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "Bad_Name"}}, "metadata.name: \"Bad_Name\" is not a valid name"),
        ({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "a", "namespace": "a.b"}}, "metadata.namespace: \"a.b\" is not"),
        ({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "a", "labels": {"a": 1}}}, "metadata.labels: must map strings"),
        ({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "a"}, "spec": []}, "spec: must be an object"),
        (_vs({"hosts": ["a"], 5: "x"}), "spec[5]: mapping key must be a string"),
        (_vs({"hosts": ["a"], None: "x"}), "spec: mapping key NoneType is not a string"),
        (_vs({"hosts": [b"bytes"]}), "spec.hosts[0]: unsupported value of type bytes"),
        (_vs({"hosts": [float("nan")], "http": []}), "spec.hosts[0]: must be a string"),
        (_vs({"hosts": [True], "http": []}), "spec.hosts[0]: must be a string"),
        (_vs({"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a"},
                                                   "weight": True}]}]}),
         "spec.http[0].route[0].weight: must be an integer"),
        (_vs({"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a"},
                                                   "weight": 1.5}]}]}),
         "spec.http[0].route[0].weight: must be an integer"),
    ],
)  # fmt: skip
def test_malformed_objects_get_a_clear_error(obj: Any, expected: str) -> None:
    report = validate_resource(obj)
    assert not report.ok
    assert any(expected in str(error) for error in report.errors), [str(e) for e in report.errors]


def test_generate_name_stands_in_for_name() -> None:
    obj = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
           "metadata": {"generateName": "pa-"}}  # fmt: skip
    assert validate_resource(obj).ok


def test_missing_spec_is_an_empty_spec() -> None:
    obj = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
           "metadata": {"name": "allow-nothing"}}  # fmt: skip
    assert validate_resource(obj).ok
    assert "http, tcp or tls" in str(validate_resource(_vs(None)))


def test_messages_quote_user_values_briefly() -> None:
    report = validate_resource(_vs({"hosts": ["x" * 10_000 + "_"], "http": []}))
    assert all(len(str(error)) < 400 for error in report.errors)


def test_parse_resource_raises_with_the_report() -> None:
    with pytest.raises(InvalidResourceError) as raised:
        parse_resource(_vs({"hosts": ["a"]}))
    assert raised.value.report.errors == (
        FieldError("spec", "http, tcp or tls must be provided in virtual service"),
    )


def test_field_error_reads_path_colon_message() -> None:
    assert str(FieldError("spec.hosts", "bad")) == "spec.hosts: bad"
    assert ValidationReport().ok
    assert not ValidationReport(errors=(FieldError("a", "b"),)).ok


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [("networking.istio.io/v1", "VirtualService", True),
     ("networking.istio.io/v1alpha3", "Sidecar", True),
     ("security.istio.io/v1beta1", "AuthorizationPolicy", True),
     ("security.istio.io/v1alpha3", "AuthorizationPolicy", False),
     ("networking.istio.io/v1", "Gateway", True),
     ("networking.istio.io/v1", "Widget", False),
     ("v1", "Service", False), (None, "VirtualService", False),
     ("networking.istio.io/v1", 3, False)],
)  # fmt: skip
def test_is_mesh_kind(api_version: object, kind: object, expected: bool) -> None:
    assert is_mesh_kind(api_version, kind) is expected


def test_many_hosts_and_sni_hosts_are_checked_in_linear_time() -> None:
    """Comparing every pair of 20,000 hosts (as Istio does) would take about a minute here."""
    hosts = [f"h{i}.example.com" for i in range(20_000)]
    spec = {
        "hosts": [*hosts, "*.example.com"],
        "tls": [{"match": [{"sniHosts": [f"s{i}.other.org" for i in range(20_000)]}],
                 "route": [{"destination": {"host": "a"}}]}],
    }  # fmt: skip
    start = time.perf_counter()
    report = validate_resource(_vs(spec))
    seconds = time.perf_counter() - start
    errors = [str(error) for error in report.errors]
    duplicates = [e for e in errors if e.startswith("spec.hosts: duplicate hosts")]
    assert len(duplicates) == 1  # the wildcard overlaps them all: one message, not 20,000
    assert duplicates[0].endswith("h0.example.com & *.example.com")
    not_covered = [e for e in errors if "is not a compatible subset" in e]
    assert len(not_covered) == 20_000
    assert all(len(message) < 400 for message in not_covered)
    assert seconds < 5
