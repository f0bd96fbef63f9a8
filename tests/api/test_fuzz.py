"""Hypothesis: random documents, and random mutations of valid ones, never crash the validator."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control.api import ValidationReport, inspect_resource, validate_resource
from control.api.kinds import KINDS
from tests.api.corpus import valid_cases

_KEYS = st.sampled_from(
    ["hosts", "http", "route", "destination", "host", "weight", "match", "uri", "regex",
     "prefix", "exact", "fault", "abort", "delay", "httpStatus", "percentage", "value",
     "timeout", "retries", "attempts", "retryOn", "subsets", "name", "labels", "trafficPolicy",
     "tls", "mode", "rules", "from", "source", "principals", "action", "port", "number",
     "portLevelMtls", "selector", "matchLabels", "jwtRules", "issuer", "egress", "x"]
)  # fmt: skip
_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
    | st.sampled_from(["1s", "0.5ms", "*", "a(b", "ISTIO_MUTUAL", "DENY", "5xx", "reviews"])
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)
_MESH_KINDS = [(group, kind) for group, kinds in KINDS.items() for kind in kinds]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(_MESH_KINDS),
    version=st.sampled_from(["v1", "v1beta1", "v1alpha3", "v9"]),
    spec=_JSON,
    metadata=_JSON,
)
def test_random_documents_never_crash(
    kind: tuple[str, str], version: str, spec: Any, metadata: Any
) -> None:
    obj = {"apiVersion": f"{kind[0]}/{version}", "kind": kind[1], "metadata": metadata,
           "spec": spec}  # fmt: skip
    report = validate_resource(obj)
    assert isinstance(report, ValidationReport)
    assert not any("internal validation error" in str(e) for e in report.errors)


@settings(max_examples=100, deadline=None)
@given(st.one_of(_JSON, st.dictionaries(st.text(max_size=10), _JSON, max_size=4)))
def test_random_top_level_values_never_crash(value: Any) -> None:
    report = validate_resource(value)
    # validate_resource catches everything: a crash shows as an internal error, not a raise.
    assert not any("internal validation error" in str(e) for e in report.errors)
    assert not report.ok


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


_VALID = [case.obj for case in valid_cases()]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), replacement=_JSON)
def test_mutated_valid_objects_never_crash(data: st.DataObject, replacement: Any) -> None:
    obj = copy.deepcopy(data.draw(st.sampled_from(_VALID)))
    paths = [p for p in _paths(obj["spec"]) if p]
    if paths:
        path = data.draw(st.sampled_from(paths))
        parent = obj["spec"]
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = replacement
    report, resource = inspect_resource(obj)
    assert not any("internal validation error" in str(e) for e in report.errors)
    assert (resource is not None) == report.ok
