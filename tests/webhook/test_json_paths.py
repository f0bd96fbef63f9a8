"""The fast JSON paths (orjson) read and write what the standard library did: the same values
of the same JSON types, the same answers' bytes, and the careful path wherever orjson would
differ (lone surrogates, UTF-16, non-finite numbers, integers past 64 bits)."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from injector.jsondiff import json_equal
from webhook.framing import parse_json
from webhook.review import encode_patch, review_response

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
scalars = st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False)
documents = st.recursive(
    scalars | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_a_document_reads_as_the_standard_library_reads_it(document: Any) -> None:
    for body in (json.dumps(document).encode(), json.dumps(document, ensure_ascii=False).encode()):
        try:
            expected = json.loads(body)
        except UnicodeDecodeError:  # a lone surrogate written raw: not UTF-8
            continue
        assert json_equal(parse_json(body), expected)


def test_what_orjson_refuses_but_the_standard_library_reads_is_read_as_before() -> None:
    surrogate = b'{"uid": "a\\ud800b"}'
    assert parse_json(surrogate) == {"uid": "a\ud800b"}
    utf16 = '{"kind": "AdmissionReview"}'.encode("utf-16")
    assert parse_json(utf16) == {"kind": "AdmissionReview"}
    past_float = b'{"n": ' + b"7" * 400 + b"}"  # refused by orjson: read as before
    assert parse_json(past_float) == {"n": int("7" * 400)}


def test_an_integer_past_64_bits_is_read_as_a_float() -> None:
    """The one documented difference (the API server's integers are int32 or int64)."""
    assert parse_json(b"[18446744073709551615, 18446744073709551616]") == [2**64 - 1, 2.0**64]


def test_an_answer_is_the_compact_review_it_was() -> None:
    assert review_response("u-1", allowed=True) == (
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
        b'"response":{"uid":"u-1","allowed":true}}'
    )
    refused = review_response("u-2", allowed=False, code=400, message="é", warnings=["w"])
    assert refused == (
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u-2",'
        b'"allowed":false,"status":{"code":400,"message":"\xc3\xa9"},"warnings":["w"]}}'
    )
    patch = [{"op": "add", "path": "/metadata/labels/a", "value": "b"}]
    answer = json.loads(review_response("u-3", allowed=True, patch=patch))["response"]
    assert answer["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(answer["patch"])) == patch


def test_an_answer_to_a_uid_with_a_lone_surrogate_is_still_json() -> None:
    answer = review_response("a\ud800b", allowed=True)
    assert json.loads(answer)["response"]["uid"] == "a\ud800b"


def test_a_patch_with_null_keeps_it() -> None:
    patch: list[dict[str, Any]] = [{"op": "add", "path": "/spec/x", "value": {"z": None}}]
    assert json.loads(base64.b64decode(encode_patch(patch))) == patch
