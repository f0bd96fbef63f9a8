"""What a review comes to, and the one place where failures become answers.

- `FramingError`: the request is not a usable AdmissionReview (wrong Content-Type, body too big,
  not JSON, wrong kind, no uid, ...) -> an HTTP 4xx; there is no uid to answer.
- `BadObjectError` and `injector.InjectionError`: a well-formed review of a bad object -> HTTP 200,
  `allowed: false`, the message naming the field or annotation.
- Anything else is a bug: logged with the review's uid, answered `allowed: false`; never a 500
  and never a traceback in the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from control.logsafe import untrusted
from injector import InjectionError

log = logging.getLogger("mizzen.webhook")


@dataclass(frozen=True)
class Verdict:
    """A handler's answer to one review. `decision` labels the injection metric (empty: none)."""

    allowed: bool
    patch: list[dict[str, object]] | None = None
    code: int = 200
    message: str = ""
    warnings: tuple[str, ...] = ()
    decision: str = ""

    @property
    def is_bug(self) -> bool:
        """The answer to an unexpected exception."""
        return self.decision == ERROR


class FramingError(Exception):
    """The HTTP request cannot be read as an AdmissionReview: answered with `status`."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # Close the connection after answering (a client we no longer want to hear from).
        self.close = close


class BadObjectError(ValueError):
    """The review is well formed but what it carries is not acceptable: `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# Decision labels of failures (the others are `injected`, a SkipReason value, `not_applicable`).
INVALID: Final = "invalid"
ERROR: Final = "error"


def verdict_for_failure(error: Exception, *, uid: str, route: str) -> Verdict:
    """Map an exception raised while deciding a well-formed review to its answer."""
    if isinstance(error, InjectionError):
        return Verdict(
            allowed=False,
            code=400,
            message=f"sidecar injection refused: {error.field}: {error.message}",
            decision=INVALID,
        )
    if isinstance(error, BadObjectError):
        return Verdict(
            allowed=False, code=400, message=f"{error.field}: {error.message}", decision=INVALID
        )
    if isinstance(error, RecursionError):
        return Verdict(
            allowed=False,
            code=400,
            message="request.object: nested too deeply to be processed",
            decision=INVALID,
        )
    log.error(
        "unexpected error answering %s review uid=%s", route, untrusted(uid, 100), exc_info=error
    )
    return Verdict(
        allowed=False,
        code=500,
        message=f"internal error in the mizzen webhook answering review {uid}; see its log",
        decision=ERROR,
    )
