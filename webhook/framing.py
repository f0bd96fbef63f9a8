"""Reading an AdmissionReview off the wire, defensively: bounded in size and time, hardened JSON.

Every problem here is a `FramingError` carrying its HTTP status (see `webhook.outcome`).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, NoReturn

import orjson
from pydantic import ValidationError
from starlette.types import Receive

from webhook.outcome import BadObjectError, FramingError
from webhook.review import API_VERSION, KIND, AdmissionRequest
from webhook.settings import WebhookSettings

JSON_MEDIA_TYPE = "application/json"


def check_content_type(header: str | None) -> None:
    """Only `application/json` (parameters such as charset allowed) is an AdmissionReview."""
    if header is None:
        raise FramingError(415, f"missing Content-Type: expected {JSON_MEDIA_TYPE}")
    media_type = header.split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise FramingError(415, f"Content-Type {header[:64]!r} is not {JSON_MEDIA_TYPE}")


def check_declared_length(declared: str | None, expect: str | None, limit: int) -> None:
    """A `Content-Length` that is not a number, or over the cap, is refused before any of the
    body is read."""
    if declared is None:
        return
    declared = declared.strip()
    if not (declared.isascii() and declared.isdigit()):
        raise FramingError(400, "Content-Length is not a number")
    if len(declared) > 18 or int(declared) > limit:
        # A client waiting for `100 Continue` will not send the body: close after answering.
        # Any other client is sending it; the connection drains it and stays usable.
        waiting = (expect or "").lower() == "100-continue"
        raise FramingError(
            413, f"body of {declared[:20]} bytes is over the {limit}-byte limit", close=waiting
        )


async def read_body(receive: Receive, settings: WebhookSettings) -> bytes:
    """The body, read message by message off the ASGI channel: never more than the cap is held,
    never waited on longer than `body_read_timeout`."""
    limit = settings.max_body_bytes
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(settings.body_read_timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":  # http.disconnect
                    raise FramingError(400, "the client went away before the body was complete")
                chunk: bytes = message.get("body", b"")
                if chunk:
                    received += len(chunk)
                    if received > limit:
                        raise FramingError(413, f"body is over the {limit}-byte limit")
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise FramingError(
            408,
            f"the body did not arrive within {settings.body_read_timeout:g} s",
            close=True,
        ) from None
    if not received:
        raise FramingError(400, "empty body: expected an AdmissionReview")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:32]} is out of range")
    return value


def parse_json(body: bytes) -> object:
    """Strict JSON: no NaN/Infinity, no overflowing floats; excessive nesting and integers past
    Python's digit limit are errors like any other, not crashes.

    orjson reads it first (2-3 times faster): it refuses all of those, and also lone surrogates,
    text not in UTF-8 and nesting past 1024 levels, so whatever it refuses is read again by the
    standard library, which either accepts it as before (escaped lone surrogates, UTF-16) or
    gives the precise error. One difference: an integer past 64 bits (which the API server never
    sends: its objects are typed, their integers int32 or int64) is read as a float."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise FramingError(400, "body is not usable JSON: nested too deeply") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise FramingError(400, f"body is not valid JSON: {error.msg} at {where}") from None
    except ValueError as error:  # encoding errors, integer digit limit, rejected constants
        raise FramingError(400, f"body is not usable JSON: {str(error)[:200]}") from None


def review_uid(document: object) -> str:
    """Check the envelope enough to answer it: an `admission.k8s.io/v1` AdmissionReview whose
    `request` has a `uid`. Returns that uid."""
    if not isinstance(document, dict):
        raise FramingError(400, f"body is a JSON {_json_type(document)}, not an AdmissionReview")
    kind, api_version = document.get("kind"), document.get("apiVersion")
    if kind != KIND:
        raise FramingError(400, f"kind must be {KIND}, not {_shown(kind)}")
    if api_version != API_VERSION:
        raise FramingError(400, f"apiVersion must be {API_VERSION}, not {_shown(api_version)}")
    request = document.get("request")
    if not isinstance(request, dict):
        raise FramingError(400, "request: missing (an AdmissionReview to answer has a request)")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise FramingError(400, "request.uid: missing or not a non-empty string")
    return uid


def admission_request(document: dict[str, Any]) -> AdmissionRequest:
    """The typed request of an envelope that `review_uid` accepted; a field of the wrong type is
    a `BadObjectError` (answered allowed: false), as the review can be answered."""
    try:
        return AdmissionRequest.model_validate(document["request"])
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(["request", *(str(part) for part in first["loc"])])
        raise BadObjectError(path, first["msg"]) from None


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    return "nothing" if value is None else repr(value)[:64]
