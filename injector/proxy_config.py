"""The `proxy.istio.io/config` annotation: a ProxyConfig in YAML or JSON.

mizzen interprets `holdApplicationUntilProxyStarts`, `proxyMetadata` (each entry becomes an env var
of the proxy, as in Istio), `concurrency` and `terminationDrainDuration`; the whole validated
mapping reaches the agent as JSON (`MIZZEN_PROXY_CONFIG`). Other ProxyConfig fields are passed on
with a warning that mizzen does not act on them yet.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from injector import contract
from injector.model import InjectionError

ANNOTATION: Final = "proxy.istio.io/config"
_ENV_NAME_RE: Final = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_DURATION_RE: Final = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,9})?s$")
_INTERPRETED: Final = frozenset(
    {"holdApplicationUntilProxyStarts", "proxyMetadata", "concurrency", "terminationDrainDuration"}
)
# Env vars the injector sets that a pod may still set (as in Istio: its own CA for its agent).
OVERRIDABLE_ENV: Final = frozenset({contract.ENV_CA_ADDRESS})
# Env vars the injector sets itself: proxyMetadata may not replace them.
RESERVED_ENV: Final = frozenset(
    value
    for name, value in vars(contract).items()
    if name.startswith("ENV_") and value not in OVERRIDABLE_ENV
)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A ProxyConfig is a few levels deep; JSON nested thousands deep would exhaust the stack.
_MAX_DEPTH: Final = 32
_TOO_DEEP: Final = f"is nested more than {_MAX_DEPTH} levels deep"


@dataclass(frozen=True)
class ProxyConfig:
    """What the annotation asked for; `raw` is the validated mapping, for the agent."""

    raw: Mapping[str, Any] = field(default_factory=dict)
    hold_application_until_proxy_starts: bool | None = None
    proxy_metadata: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _load(text: str) -> object:
    try:
        return json.loads(text)
    except RecursionError:
        raise InjectionError(ANNOTATION, _TOO_DEEP) from None
    except ValueError:
        pass
    try:
        # Aliases are refused: an alias bomb is small as YAML and huge as JSON.
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=_Loader)):
            raise InjectionError(ANNOTATION, "YAML aliases are not allowed")
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "cannot be parsed"
        raise InjectionError(ANNOTATION, f"is not valid YAML or JSON: {problem}") from None


def _check_json(value: object, path: str, depth: int = 0) -> None:
    """Only JSON values reach the agent (YAML also knows dates, sets, binary, NaN)."""
    if depth > _MAX_DEPTH:
        raise InjectionError(ANNOTATION, _TOO_DEEP)
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InjectionError(ANNOTATION, f"{path or 'value'} is not a finite number")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InjectionError(ANNOTATION, f"{path or 'the config'} has a non-string key")
            _check_json(item, f"{path}.{key}" if path else key, depth + 1)
        return
    raise InjectionError(ANNOTATION, f"{path or 'value'} is not a JSON value")


def parse_proxy_config(text: str) -> ProxyConfig:
    """Validates the annotation; raises `InjectionError` naming it."""
    if not text.strip():
        return ProxyConfig()
    data = _load(text)
    if data is None:
        return ProxyConfig()
    if not isinstance(data, dict):
        raise InjectionError(ANNOTATION, "must be a mapping of ProxyConfig fields")
    _check_json(data, "")
    hold = data.get("holdApplicationUntilProxyStarts")
    if hold is not None and not isinstance(hold, bool):
        raise InjectionError(ANNOTATION, "holdApplicationUntilProxyStarts must be true or false")
    metadata = data.get("proxyMetadata") or {}
    if not isinstance(metadata, dict):
        raise InjectionError(ANNOTATION, "proxyMetadata must be a mapping of strings")
    for name, value in metadata.items():
        if not _ENV_NAME_RE.fullmatch(name):
            raise InjectionError(ANNOTATION, f"proxyMetadata key {name!r} is not an env var name")
        if name in RESERVED_ENV:
            raise InjectionError(ANNOTATION, f"proxyMetadata may not set {name} (set by mizzen)")
        if not isinstance(value, str):
            raise InjectionError(ANNOTATION, f"proxyMetadata.{name} must be a string (quote it)")
        if "\x00" in value:  # an env var cannot carry NUL: the container would never start
            raise InjectionError(ANNOTATION, f"proxyMetadata.{name} contains a NUL character")
    concurrency = data.get("concurrency")
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0
    ):
        raise InjectionError(ANNOTATION, "concurrency must be a non-negative integer")
    drain = data.get("terminationDrainDuration")
    if drain is not None and (not isinstance(drain, str) or not _DURATION_RE.fullmatch(drain)):
        raise InjectionError(ANNOTATION, "terminationDrainDuration must be a duration like '5s'")
    ignored = sorted(set(data) - _INTERPRETED)
    warnings = (
        (f"{ANNOTATION}: mizzen does not act on {', '.join(ignored)} yet",) if ignored else ()
    )
    return ProxyConfig(
        raw=data,
        hold_application_until_proxy_starts=hold,
        proxy_metadata=dict(metadata),
        warnings=warnings,
    )
