"""The AdmissionReview envelope (`admission.k8s.io/v1`), typed; the object inside stays a dict.

Only the fields the webhook reads are modelled; the API server's other fields are ignored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import to_json

API_VERSION: Final = "admission.k8s.io/v1"
KIND: Final = "AdmissionReview"
# Kubernetes shows each warning to the user; longer ones are truncated by kubectl anyway.
MAX_WARNING_CHARS: Final = 120


class _Envelope(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )


class GroupVersionKind(_Envelope):
    group: str = ""
    version: str = ""
    kind: str = ""


class GroupVersionResource(_Envelope):
    group: str = ""
    version: str = ""
    resource: str = ""


class AdmissionRequest(_Envelope):
    uid: str = Field(min_length=1)
    kind: GroupVersionKind = GroupVersionKind()
    resource: GroupVersionResource = GroupVersionResource()
    sub_resource: str = ""
    name: str = ""
    namespace: str = ""
    operation: str = ""
    # The object under review stays untyped: checking it is the handler's job, so that a bad
    # object is answered `allowed: false` (HTTP 200) rather than refused as bad framing.
    object: Any = None
    old_object: Any = None
    dry_run: bool | None = None


def encode_patch(patch: Sequence[dict[str, Any]]) -> str:
    """A JSON Patch as the API server wants it: base64 of its JSON (finite numbers only).

    Encoded by orjson (several times faster than pydantic-core, and this is most of a review's
    encoding cost). orjson writes a non-finite float as `null` and refuses integers past 64
    bits, so a patch that has a `null` or such an integer is encoded the careful way:
    pydantic-core, then `json.dumps` for text with `NaN`/`Infinity`, which refuses a real one
    (`ValueError`)."""
    try:
        data = orjson.dumps(patch)
    except orjson.JSONEncodeError:
        data = b"null"
    if b"null" in data:
        data = to_json(list(patch), inf_nan_mode="constants")
        if b"NaN" in data or b"Infinity" in data:
            data = json.dumps(list(patch), separators=(",", ":"), allow_nan=False).encode()
    return base64.b64encode(data).decode("ascii")


def clip_warnings(warnings: Sequence[str]) -> list[str] | None:
    """Warnings as the response carries them: one line each, at most 120 characters."""
    clipped = []
    for warning in warnings:
        line = " ".join(warning.split())
        if len(line) > MAX_WARNING_CHARS:
            line = line[: MAX_WARNING_CHARS - 3] + "..."
        clipped.append(line)
    return clipped or None


def review_response(
    uid: str,
    *,
    allowed: bool,
    patch: Sequence[dict[str, Any]] | None = None,
    code: int = 200,
    message: str = "",
    warnings: Sequence[str] = (),
) -> bytes:
    """The JSON body answering the review `uid` (an `admission.k8s.io/v1` AdmissionReview with
    its `response`; absent fields are left out, as the API server's own encoder does)."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = encode_patch(patch)
    if not allowed:
        response["status"] = {"code": code, "message": message}
    clipped = clip_warnings(warnings)
    if clipped is not None:
        response["warnings"] = clipped
    review = {"apiVersion": API_VERSION, "kind": KIND, "response": response}
    try:
        return orjson.dumps(review)
    except orjson.JSONEncodeError:  # a lone surrogate (from the request's uid or text): escaped
        return json.dumps(review, separators=(",", ":")).encode()
