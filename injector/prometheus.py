"""Metrics merging (Istio's `enablePrometheusMerge`): the pod's `prometheus.io/*` annotations
are pointed at the agent's `:15020/stats/prometheus`, which serves the mesh's, Envoy's and the
app's metrics in one exposition; the app's own annotations travel to the agent in the proxy's
environment (`MIZZEN_PROMETHEUS_ANNOTATIONS`) and come back when the pod is un-injected.

As in Istio: nothing changes when the pod says `prometheus.io/scrape: "false"` or
`prometheus.istio.io/merge-metrics: "false"`, or when the mesh turns merging off.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, Final

from injector import contract

SCRAPE: Final = "prometheus.io/scrape"
PORT: Final = "prometheus.io/port"
PATH: Final = "prometheus.io/path"
MERGE_ANNOTATION: Final = "prometheus.istio.io/merge-metrics"
MERGED: Final = {SCRAPE: "true", PORT: str(contract.AGENT_STATUS_PORT), PATH: "/stats/prometheus"}
_KEYS: Final = {SCRAPE: "scrape", PORT: "port", PATH: "path"}


def _false(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("false", "0", "f")


_READ: Final = (SCRAPE, PORT, PATH, MERGE_ANNOTATION)
# Cache entries are bounded: 256 of them, each from annotations of at most this length.
_CACHED_CHARS: Final = 1024


def merge_metrics(
    annotations: Mapping[str, str], enabled: bool
) -> tuple[dict[str, str], str | None]:
    """(annotations to set, the app's own as the env value or None). Cached per value of the
    four annotations it reads (the pods of a mesh share a few)."""
    values = tuple(annotations.get(key) for key in _READ)
    if sum(len(value) for value in values if value is not None) > _CACHED_CHARS:
        merged, env = _merge(values, enabled)
    else:
        merged, env = _cached_merge(values, enabled)
    return dict(merged), env


def _merge(
    values: tuple[str | None, ...], enabled: bool
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    annotations = {
        key: value for key, value in zip(_READ, values, strict=True) if value is not None
    }
    merge = annotations.get(MERGE_ANNOTATION)
    if _false(annotations.get(SCRAPE)) or (merge is not None and _false(merge)):
        return (), None
    if merge is None and not enabled:
        return (), None
    if annotations.get(PORT) == MERGED[PORT] and annotations.get(PATH) == MERGED[PATH]:
        return (), None  # merged already (a re-injection of a pod a user copied)
    original = {short: annotations[key] for key, short in _KEYS.items() if key in annotations}
    env = json.dumps(original, sort_keys=True, separators=(",", ":")) if original else None
    return tuple(MERGED.items()), env


_cached_merge: Final = functools.lru_cache(maxsize=256)(_merge)


def restore(annotations: Mapping[str, str], proxy_env: Any) -> dict[str, str]:
    """The app's own scrape annotations back, from the proxy container's environment."""
    restored = dict(annotations)
    for item in proxy_env if isinstance(proxy_env, list) else []:
        if not isinstance(item, Mapping) or item.get("name") != contract.ENV_PROMETHEUS_ANNOTATIONS:
            continue
        try:
            original = json.loads(str(item.get("value")))
        except ValueError:
            return restored
        if isinstance(original, dict):
            for key, short in _KEYS.items():
                if isinstance(original.get(short), str):
                    restored[key] = original[short]
    return restored
