"""The injector's fast paths against their slow originals: `canonical_json` through orjson must be
`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` byte for byte (floats,
nulls, huge integers, surrogates and other types fall back), and the cached pod settings must
equal a fresh read, which may read no annotation outside the cache's key."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from injector import InjectionConfig, InjectionError
from injector.annotations import SETTINGS_KEYS, _read_settings, pod_settings
from injector.pod import canonical_json
from tests.injector.test_properties import ANNOTATION_KEYS, PLAUSIBLE_VALUES


def _slow(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.sampled_from([1e-05, 1e16, 0.1, -0.0, 1.0, 5e-324, float("nan"), float("inf")])
    | st.text()
    | st.sampled_from(["a:1.5", "null", "\ud800", "é\u2028\x00\x1f\x7f", "1e5"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=1500, deadline=None)
@given(value=VALUES)
def test_canonical_json_is_the_standard_librarys(value: Any) -> None:
    assert canonical_json(value) == _slow(value)


def test_canonical_json_falls_back_for_what_orjson_writes_otherwise() -> None:
    for value in ([1e-05], {"a": 2**64}, {"b": float("nan")}, {1: "x"}, ("t", 1), {"s": "\ud800"}):
        assert canonical_json(value) == _slow(value)


class _Recording(Mapping[str, str]):
    """Annotations that record each key read and refuse iteration (a cache key lists keys)."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self.data

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("pod settings must not iterate the annotations")

    def __len__(self) -> int:
        raise AssertionError("pod settings must not size the annotations")


@settings(max_examples=400, deadline=None)
@given(
    annotations=st.dictionaries(
        st.sampled_from(ANNOTATION_KEYS),
        st.one_of(st.sampled_from(PLAUSIBLE_VALUES), st.text(max_size=20)),
        max_size=6,
    ),
    native=st.booleans(),
)
def test_cached_settings_equal_a_fresh_read_of_only_the_keyed_annotations(
    annotations: dict[str, str], native: bool
) -> None:
    config = InjectionConfig(native_sidecar=native)
    recording = _Recording(annotations)
    try:
        fresh = _read_settings(recording, config)
    except InjectionError as error:
        fresh_error: str | None = str(error)
    else:
        fresh_error = None
    assert recording.read <= set(SETTINGS_KEYS)
    for _ in range(2):  # a miss, then a hit
        if fresh_error is not None:
            with pytest.raises(InjectionError) as caught:
                pod_settings(annotations, config)
            assert str(caught.value) == fresh_error
        else:
            assert pod_settings(annotations, config) == fresh
