"""The structural diff behind the injector's patch: applied with `jsonpatch`, it must give exactly
the destination, JSON types included (`true` is not `1`, `1` is not `1.0`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from injector.jsondiff import diff, escape, json_equal
from injector.model import SkipReason

KEYS = st.sampled_from(["a", "b", "name", "a/b", "~", "~1", "/", "", "x~0/y", "0", "-"]) | st.text(
    max_size=4
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, -1, 0.0, 1.0, 2.5])
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=30,
)


def _exact(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _assert_turns(src: Any, dst: Any) -> list[dict[str, Any]]:
    before = _exact(src)
    patch = diff(src, dst)
    result = jsonpatch.apply_patch(src, patch)
    assert _exact(result) == _exact(dst), patch
    assert _exact(src) == before, "the diff mutated its input"
    return patch


@st.composite
def mutated(draw: st.DrawFn, document: Any, depth: int = 0) -> Any:
    """A copy of `document` with random edits that share unchanged subtrees, as the injector's
    copy-on-write output does."""
    if depth > 4 or draw(st.integers(0, 4)) == 0:
        return document
    if isinstance(document, dict):
        result = dict(document)
        for key in draw(st.lists(st.sampled_from(sorted(result)), max_size=2)) if result else []:
            action = draw(st.sampled_from(["remove", "recurse", "replace"]))
            if action == "remove":
                result.pop(key, None)
            elif action == "recurse" and key in result:
                result[key] = draw(mutated(result[key], depth + 1))
            else:
                result[key] = draw(JSON)
        for key in draw(st.lists(KEYS, max_size=2)):
            result[key] = draw(JSON)
        return result
    if isinstance(document, list):
        items = list(document)
        for _ in range(draw(st.integers(0, 3))):
            action = draw(st.sampled_from(["insert", "remove", "recurse", "swap"]))
            index = draw(st.integers(0, len(items)))
            if action == "insert":
                items.insert(index, draw(JSON))
            elif items and index < len(items):
                if action == "remove":
                    del items[index]
                elif action == "recurse":
                    items[index] = draw(mutated(items[index], depth + 1))
                else:
                    items[index], items[-1] = items[-1], items[index]
        return items
    return draw(st.sampled_from([document, True, False, 1, 0, 1.0, None, "1"]))


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    source = draw(JSON)
    if draw(st.booleans()):
        return source, draw(mutated(source))
    return source, draw(JSON)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=pairs())
def test_the_patch_turns_the_source_into_the_destination(pair: tuple[Any, Any]) -> None:
    _assert_turns(*pair)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=pairs())
def test_deep_copies_give_the_same_document(pair: tuple[Any, Any]) -> None:
    """Without shared objects nothing is skipped by identity; the result is the same."""
    src, dst = pair
    patch = diff(copy.deepcopy(src), copy.deepcopy(dst))
    assert _exact(jsonpatch.apply_patch(src, patch)) == _exact(dst)


@settings(max_examples=200, deadline=None)
@given(document=JSON)
def test_equal_documents_give_an_empty_patch(document: Any) -> None:
    assert diff(document, copy.deepcopy(document)) == []


@settings(max_examples=200, deadline=None)
@given(a=JSON, b=JSON)
def test_json_equal_is_equality_of_the_json_text(a: Any, b: Any) -> None:
    assert json_equal(a, b) == (_exact(a) == _exact(b))


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ({"a": 1}, {"a": True}),
        ({"a": True}, {"a": 1}),
        ({"a": 0}, {"a": False}),
        ({"a": 1}, {"a": 1.0}),
        ([1, True, 0], [True, 1, False]),
        ({"a": [1, 2]}, {"a": [1.0, 2]}),
        ({"a": {"b": 1}}, {"a": {"b": True}}),
    ],
)
def test_bools_ints_and_floats_are_different_json(src: Any, dst: Any) -> None:
    assert _assert_turns(src, dst)


def test_keys_with_slash_and_tilde_are_escaped() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert escape("~1") == "~01"
    patch = _assert_turns({"k": {"~1": 1}}, {"k": {"~1": 2, "a/b": 3}})
    assert {"op": "add", "path": "/k/a~1b", "value": 3} in patch
    assert {"op": "replace", "path": "/k/~01", "value": 2} in patch


def test_dict_edits_are_one_operation_each() -> None:
    shared = {"big": list(range(100))}
    src = {"keep": shared, "gone": 1, "change": {"x": 1}}
    dst = {"keep": shared, "change": {"x": 2}, "new": "v"}
    assert _assert_turns(src, dst) == [
        {"op": "remove", "path": "/gone"},
        {"op": "replace", "path": "/change/x", "value": 2},
        {"op": "add", "path": "/new", "value": "v"},
    ]


def test_list_insertions_and_removals_keep_the_common_ends() -> None:
    items = [{"name": f"v{i}"} for i in range(6)]
    assert _assert_turns(items, [*items[:3], {"name": "new"}, *items[3:]]) == [
        {"op": "add", "path": "/3", "value": {"name": "new"}}
    ]
    assert _assert_turns(items, [*items[:2], *items[4:]]) == [
        {"op": "remove", "path": "/3"},
        {"op": "remove", "path": "/2"},
    ]


def test_an_item_inserted_before_a_changed_one_is_not_paired_with_it() -> None:
    """A sidecar placed first, the app container edited: the app is diffed against the app."""
    app = {"name": "app", "image": "a:1", "probe": {"port": 8080}}
    changed = {**app, "probe": {"port": 15020}}
    sidecar = {"name": "istio-proxy", "image": "proxy:1"}
    assert _assert_turns([app], [sidecar, changed]) == [
        {"op": "add", "path": "/0", "value": sidecar},
        {"op": "replace", "path": "/1/probe/port", "value": 15020},
    ]


def test_a_list_of_unrelated_scalars_is_replaced_whole() -> None:
    assert _assert_turns({"l": [1, 2, 3]}, {"l": [4, 5, 6]}) == [
        {"op": "replace", "path": "/l", "value": [4, 5, 6]}
    ]
    assert _assert_turns({"l": [1, 2]}, {"l": []}) == [{"op": "replace", "path": "/l", "value": []}]


def test_type_changes_replace_the_value() -> None:
    assert _assert_turns({"a": [1]}, {"a": {"0": 1}}) == [
        {"op": "replace", "path": "/a", "value": {"0": 1}}
    ]
    assert _assert_turns([1, 2], {"a": 1}) == [{"op": "replace", "path": "", "value": {"a": 1}}]


def test_fresh_items_are_added_whole() -> None:
    """A subtree known to be new is never paired with an old item, even an alike one."""
    old = {"name": "istio-proxy", "image": "proxy:1"}
    new = {"name": "istio-proxy", "image": "proxy:2"}
    kept = {"name": "istio-proxy", "image": "proxy:3"}
    assert diff([old], [new, kept]) == [
        {"op": "add", "path": "/1", "value": kept},
        {"op": "replace", "path": "/0/image", "value": "proxy:2"},
    ]
    assert diff([old], [new, kept], fresh=frozenset({id(new)})) == [
        {"op": "add", "path": "/0", "value": new},
        {"op": "replace", "path": "/1/image", "value": "proxy:3"},
    ]


@settings(max_examples=100, deadline=None)
@given(
    length=st.integers(30, 80),
    edits=st.lists(st.tuples(st.sampled_from(["insert", "remove", "change"]), st.integers(0, 99))),
)
def test_long_lists_past_the_alignment_limit(length: int, edits: list[tuple[str, int]]) -> None:
    """Middles longer than the searched ones are paired by position: still exact."""
    src: list[dict[str, Any]] = [{"name": f"V{i}", "value": str(i)} for i in range(length)]
    dst = list(src)
    for action, where in edits:
        index = where % (len(dst) + 1)
        if action == "insert":
            dst.insert(index, {"name": f"N{where}", "value": where})
        elif dst and index < len(dst):
            if action == "remove":
                del dst[index]
            else:
                dst[index] = {**dst[index], "value": True}
    _assert_turns(src, dst)


def test_string_subclasses_equal_their_text() -> None:
    """An enum member the injector writes is the same JSON as the string it stands for."""
    assert json_equal(SkipReason.HOST_NETWORK, "host_network")
    assert diff({"a": "host_network"}, {"a": SkipReason.HOST_NETWORK}) == []
