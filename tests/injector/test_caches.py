"""The injector's caches of per-config parts (the parsed redirect, the init container's argv):
results equal to uncached ones, never shared mutable objects, errors every time, bounded keys."""

from __future__ import annotations

import pytest

from injector import InjectionConfig, InjectionContext, InjectionError, contract, inject
from injector.annotations import EXCLUDE_OUTBOUND_IP_RANGES, _build_redirect, _cached_redirect
from injector.redirect.spec import InterceptionMode

CONTEXT = InjectionContext(namespace="shop", namespace_labels=None)


def _pod(annotations: dict[str, str]) -> dict[str, object]:
    return {
        "metadata": {"name": "p", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }


def _init(result_pod: object) -> dict[str, object]:
    assert isinstance(result_pod, dict)
    containers = result_pod["spec"]["initContainers"]
    return next(c for c in containers if c["name"] == contract.INIT_CONTAINER_NAME)


def test_cached_argv_is_a_new_list_for_each_pod() -> None:
    config = InjectionConfig()
    first = _init(inject(_pod({}), CONTEXT, config).pod)
    first_args = first["args"]
    assert isinstance(first_args, list)
    expected = list(first_args)
    first_args.append("--mutated-by-a-caller")
    second = _init(inject(_pod({}), CONTEXT, config).pod)
    assert second["args"] == expected
    assert second["args"] is not first_args


def test_a_bad_traffic_annotation_is_refused_every_time() -> None:
    for _ in range(3):
        with pytest.raises(InjectionError) as caught:
            inject(
                _pod({EXCLUDE_OUTBOUND_IP_RANGES: "10.0.0.0/8,nope"}), CONTEXT, InjectionConfig()
            )
        assert caught.value.field == EXCLUDE_OUTBOUND_IP_RANGES


def test_cached_spec_equals_a_fresh_parse() -> None:
    traffic = (None, "10.0.0.0/8, 192.168.0.0/16", None, "8080", None, None, "5432")
    args = (1337, 1337, InterceptionMode.REDIRECT, 15020, traffic)
    assert _cached_redirect(*args) == _build_redirect(*args)
    assert _cached_redirect(*args) is _cached_redirect(*args)


def test_long_traffic_annotations_are_not_cached() -> None:
    cidrs = ",".join(f"10.{i // 256}.{i % 256}.0/24" for i in range(200))
    before = _cached_redirect.cache_info()
    first = inject(_pod({EXCLUDE_OUTBOUND_IP_RANGES: cidrs}), CONTEXT, InjectionConfig())
    after = _cached_redirect.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    args = _init(first.pod)["args"]
    assert isinstance(args, list)
    assert any(arg.startswith("--exclude-outbound-cidrs=10.0.0.0/24,") for arg in args)
