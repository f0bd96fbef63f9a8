"""The fast YAML writer of `mizzen inject`: whatever it writes, PyYAML reads back unchanged."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from control.cli import inject_yaml

TRICKY = [
    "", " ", "yes", "no", "on", "off", "y", "n", "null", "Null", "~", "true", "False", "1e3",
    "1.5", ".5", "0x1F", "0o17", "017", "1_000", "1:20", "190:20:30.15", "+1", "-1", ".inf",
    "-.inf", ".nan", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "=", "<<", "-", "--", "---",
    "...", "- a", "-a", "--flag=x", "a: b", "a:", "a:b", "http://x:80/p", "#x", "a #b", "a#b",
    " a", "a ", "a  b", "'", "''", '"', "a'b", "\\", "\n", "a\n", "a\n\n", "\na", "a\nb",
    "a\n b\n", "a\n\nb\n", "a \nb", "\ta", "a\tb", "a\rb", "*a", "&a", "!x", "%x", "@x", "`x",
    "|", ">", "?", "? a", "[a]", "{a}", ",", "a,b", "a, b", "(a)", "\u2028", "a\u2029b", "\x85",
    "\ufeff", "\x00", "\x7f", "é", "😀", "a\U0001f600\nb", "-\n", "key: |\n  x\n",
]  # fmt: skip


def _roundtrip(document: Any) -> Any:
    text = inject_yaml.dump_document(document)
    return yaml.load(text, Loader=yaml.CSafeLoader)


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_as_values_keys_and_items(text: str) -> None:
    document = {"value": text, text: "key", "items": [text, {"nested": text}], "last": text}
    assert _roundtrip(document) == document


def test_non_json_values_fall_back_to_pyyaml() -> None:
    document = {"when": datetime.date(2024, 1, 2), "raw": b"\x00\x01", "set": {1, 2}}
    assert _roundtrip(document) == document
    complex_key = {("a", "b"): 1}
    assert inject_yaml.dump_document(complex_key)  # PyYAML's job, no crash


def test_numbers_and_constants() -> None:
    document = {"i": -3, "f": 1e20, "g": 0.1, "n": None, "b": [True, False], 3: "int key"}
    assert _roundtrip(document) == document
    special = _roundtrip({"nan": float("nan"), "inf": float("-inf")})
    assert special["nan"] != special["nan"]
    assert special["inf"] == float("-inf")


def test_documents_are_separated() -> None:
    text = inject_yaml.dump_all([{"a": 1}, {"b": [1, {"c": "d"}]}, {}])
    assert list(yaml.safe_load_all(text)) == [{"a": 1}, {"b": [1, {"c": "d"}]}, {}]


strings = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | strings,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(strings, st.integers()), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(strings, json_like, min_size=1, max_size=5))
def test_any_json_like_document_round_trips(document: dict[Any, Any]) -> None:
    assert _roundtrip(document) == document


@settings(max_examples=100, deadline=None)
@given(document=st.lists(json_like, min_size=1, max_size=4))
def test_top_level_lists_round_trip(document: list[Any]) -> None:
    assert _roundtrip(document) == document


@pytest.mark.parametrize("text", ["y", "Y", "n", "N"])
def test_go_yaml_booleans_are_quoted_for_kubectl(text: str) -> None:
    """kubectl's YAML library (go-yaml v2) reads a plain `y` or `n` as a boolean."""
    assert inject_yaml.scalar(text) == f"'{text}'"
