"""The patch's encoding: base64 of JSON equal to the patch; a non-finite number is refused."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest

from webhook.review import encode_patch


def _decoded(patch: list[dict[str, Any]]) -> Any:
    return json.loads(base64.b64decode(encode_patch(patch)))


def test_the_encoded_patch_decodes_to_the_same_operations() -> None:
    patch: list[dict[str, Any]] = [
        {"op": "add", "path": "/metadata/labels/a~1b", "value": 'é "quoted" \\ NaN Infinity'},
        {"op": "add", "path": "/spec/x", "value": {"n": 10**30, "f": 1.5, "t": True, "z": None}},
        {"op": "replace", "path": "/spec/y", "value": [1, 1.0, False, -0.0]},
    ]
    decoded = _decoded(patch)
    assert decoded == patch
    assert isinstance(decoded[2]["value"][1], float)
    assert isinstance(decoded[2]["value"][2], bool)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_non_finite_number_is_refused(number: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode_patch([{"op": "add", "path": "/spec/x", "value": number}])
