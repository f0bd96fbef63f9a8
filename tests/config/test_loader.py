"""The one YAML/JSON loader: YAML 1.2 types as Kubernetes reads them, libyaml only, one guard
against hostile shapes, one rule for Lists."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import yaml

from control.config.loader import (
    MAX_VALUES,
    LoadError,
    TooManyDocumentsError,
    list_items,
    load_single,
    parse_text,
    plain_is_string,
    yaml_loader,
)


def _one(text: str) -> Any:
    documents, errors = parse_text(text, "t.yaml")
    assert not errors, errors
    return documents[0].obj["v"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("N", "N"),
        ("true", True), ("False", False), ("TRUE", True),
        ("0777", 777), ("0o17", 15), ("0x1F", 31), ("-12", -12), ("+5", 5),
        ("1e3", 1000.0), (".5", 0.5), ("1.", 1.0), ("-.INF", -math.inf),
        ("1_000", "1_000"), ("1:20", "1:20"), ("2024-01-01", "2024-01-01"),
        ("~", None), ("null", None), ("", None), ("'yes'", "yes"), ("=", "="),
    ],
)  # fmt: skip
def test_yaml_1_2_core_types(text: str, value: object) -> None:
    assert _one(f"v: {text}\n") == value


def test_merge_keys_are_honoured() -> None:
    assert _one("base: &b {a: 1}\nv: {<<: *b, c: 2}\n") == {"a": 1, "c": 2}


def test_an_ipv6_literal_in_a_flow_sequence() -> None:
    """Kubernetes (go-yaml) reads `[1.2.3.4, 2001:db8::]`; libyaml refuses a plain scalar that
    ends in `:` before `]` or `,`, and PyYAML's pure-Python parser would read it as a mapping.
    With libyaml only, the case is refused with its position, never misread; quoted, or with
    any digit after `::`, it loads."""
    documents, errors = parse_text("addresses: [1.2.3.4, 2001:db8::]\n", "se.yaml")
    assert documents == []
    assert errors[0].line == 1
    assert "unexpected ':'" in errors[0].problem
    assert _one('v: [1.2.3.4, "2001:db8::"]') == ["1.2.3.4", "2001:db8::"]
    assert _one("v: [1.2.3.4, 2001:db8::1]") == ["1.2.3.4", "2001:db8::1"]
    # In block style the last `:` is a key indicator for every YAML reader, go-yaml included.
    assert _one("v:\n- 2001:db8::\n") == [{"2001:db8:": None}]


def test_the_loader_is_libyaml() -> None:
    assert yaml_loader().__mro__[1].__module__ == "yaml._yaml"


def test_plain_scalars_that_are_not_strings() -> None:
    assert not plain_is_string("1e9")
    assert not plain_is_string("true")
    assert plain_is_string("yes")
    assert plain_is_string("1Gi")


def test_json_by_name_and_by_look() -> None:
    documents, errors = parse_text('{"v": 1}', "a.json")
    assert [d.origin for d in documents] == ["a.json"]
    documents, errors = parse_text("{not json", "b.json")
    assert errors[0].message.startswith("invalid JSON at line 1 column 2")
    documents, errors = parse_text('{"v": [1, 2]}', "c.yaml")
    assert documents[0].obj == {"v": [1, 2]}
    documents, errors = parse_text("{v: yes}", "d.yaml")  # not JSON: YAML reads it
    assert documents[0].obj == {"v": "yes"}


def test_documents_before_a_syntax_error_are_kept() -> None:
    documents, errors = parse_text("v: 1\n---\nv: [\n", "t.yaml")
    assert [d.obj for d in documents] == [{"v": 1}]
    assert errors[0].index == 1
    assert errors[0].document_origin == "t.yaml#1"
    assert errors[0].describe().startswith("invalid YAML: ")


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in itertools.pairwise("abcdefgh")
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ALIAS_BOMB, f"more than {MAX_VALUES} values (YAML aliases?)"),
        ("a: &a [*a]\n", "nested too deeply"),
    ],
)
def test_the_guard_refuses_hostile_shapes(text: str, problem: str) -> None:
    documents, errors = parse_text(text, "t.yaml")
    assert documents == []
    assert errors[0].hostile
    assert errors[0].problem == problem
    assert errors[0].describe() == problem


def test_yaml_nested_too_deeply_is_libyamls_error() -> None:
    _, errors = parse_text("[" * 100_000 + "]" * 100_000, "t.yaml")
    assert "exceeded maximum nesting depth" in errors[0].problem


def test_json_nested_too_deeply() -> None:
    _, errors = parse_text("[" * 100_000, "deep.json")
    assert errors[0].message == "invalid JSON: nested too deeply"


def test_document_cap() -> None:
    with pytest.raises(TooManyDocumentsError):
        parse_text("---\n{}\n" * 11, "t.yaml", max_documents=10)
    assert len(parse_text("---\n{}\n" * 10, "t.yaml", max_documents=10)[0]) == 10


def test_load_single() -> None:
    assert load_single("", "s.yaml") is None
    assert load_single("a: 1\n", "s.yaml") == {"a": 1}
    with pytest.raises(LoadError):
        load_single("a: [\n", "s.yaml")


@pytest.mark.parametrize(
    ("obj", "items"),
    [
        ({"kind": "List", "items": [1]}, [1]),
        ({"kind": "ServiceList", "items": []}, []),
        ({"kind": "List", "items": "x"}, None),
        ({"kind": "Service", "items": [1]}, None),
        ([1], None),
    ],
)
def test_lists_unroll_by_one_rule(obj: object, items: list[Any] | None) -> None:
    assert list_items(obj) == items


def test_the_pure_python_parser_would_misread() -> None:
    """Why there is no fallback: the same text means something else to it."""
    text = "v: [fe80::]\n"
    assert yaml.load(text, Loader=yaml.SafeLoader) == {"v": [{"fe80:": None}]}
    assert parse_text(text, "t.yaml")[1]


def test_mapping_keys_are_one_string_across_documents() -> None:
    """The file source keeps every parsed document: a key repeated in thousands of them is one
    string (interned), while values and long keys are read as written."""
    long_key = "k" * 65
    text = "".join(
        f"---\nmetadata: {{name: svc-{i}, namespace: ns}}\n{long_key}: {i}\n" for i in range(3)
    )
    documents, errors = parse_text(text, "mesh.yaml")
    assert not errors
    first, second = (d.obj for d in documents[:2])
    key_one = next(k for k in first if k == "metadata")
    key_two = next(k for k in second if k == "metadata")
    assert key_one is key_two
    assert next(iter(first["metadata"])) is next(iter(second["metadata"]))
    assert [d.obj["metadata"]["name"] for d in documents] == ["svc-0", "svc-1", "svc-2"]
    assert [d.obj[long_key] for d in documents] == [0, 1, 2]
