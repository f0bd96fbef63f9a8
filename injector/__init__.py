"""The sidecar injector: a pure function from pod + context + config to an injected pod.

No I/O here: the webhook, the CLI preview and the tests all call `inject`.
"""

from injector import contract
from injector.config import InjectionConfig
from injector.inject import inject
from injector.model import (
    InjectionContext,
    InjectionError,
    InjectionResult,
    JsonPatch,
    SkipReason,
)
from injector.workload import controller_workload_name, workload_name

__all__ = [
    "InjectionConfig",
    "InjectionContext",
    "InjectionError",
    "InjectionResult",
    "JsonPatch",
    "SkipReason",
    "contract",
    "controller_workload_name",
    "inject",
    "workload_name",
]
