"""The `kubernetes` package, imported when first used: importing it loads every API model
(~0.2-0.6 s of a start-up), and a control plane on `--config-dir` never calls it. Code that
holds an `ApiClient` has imported it already, so these cost nothing then."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes.client.exceptions import ApiException


def api_exception() -> type[ApiException]:
    """kubernetes' ApiException, for an `except` clause (evaluated only when something was
    raised, by a call on an `ApiClient`)."""
    from kubernetes.client.exceptions import ApiException

    return ApiException
