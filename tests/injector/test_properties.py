"""Property-based tests: random pods and annotation values never crash the injector, its patch
touches only metadata and spec and gives the injected pod, and injection is a fixed point."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from injector import InjectionConfig, InjectionContext, InjectionError, InjectionResult, inject

ANNOTATION_KEYS = [
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    "traffic.sidecar.istio.io/includeInboundPorts",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "traffic.sidecar.istio.io/includeOutboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
    "traffic.sidecar.istio.io/excludeInterfaces",
    "sidecar.istio.io/interceptionMode",
    "status.sidecar.istio.io/port",
    "sidecar.istio.io/proxyCPU",
    "sidecar.istio.io/proxyMemory",
    "sidecar.istio.io/proxyCPULimit",
    "sidecar.istio.io/proxyMemoryLimit",
    "sidecar.istio.io/proxyImage",
    "sidecar.istio.io/rewriteAppHTTPProbers",
    "sidecar.istio.io/nativeSidecar",
    "sidecar.istio.io/inject",
    "proxy.istio.io/config",
    "sidecar.mizzen.io/status",
    "kubectl.kubernetes.io/default-container",
]
PLAUSIBLE_VALUES = [
    "", "*", "80", "80, 443", " 8080 ,9090", "0", "15020", "65535", "65536", "٨٠", "8_0", "-1",
    "10.0.0.0/8", "10.0.0.0/8, fd00::/8", "10.0.0.1", "eth0", "net1,eth1.100", "a" * 16,
    "REDIRECT", "NONE", "TPROXY", "true", "false", "True", "0.5", "100m", "128Mi", "1e3", "1.5Gi",
    "nginx:1", "reg.example:5000/a/b:1", "{}", "holdApplicationUntilProxyStarts: true",
    '{"proxyMetadata": {"A": "b"}}', "proxyMetadata: [1]", "&a [*a]", "{not json",
    '{"initContainers":["mizzen-init"],"volumes":[]}', "null", "\x00", "\n",
]  # fmt: skip
LABEL_KEYS = ["app", "version", "sidecar.istio.io/inject", "istio.io/rev",
              "app.kubernetes.io/name", "service.istio.io/canonical-name"]  # fmt: skip

names = st.sampled_from(["app", "web", "sidecar", "db", "cache", "mizzen-proxy", "x" * 70])
ports = st.one_of(
    st.integers(min_value=-5, max_value=70000),
    st.sampled_from(["http", "8080", "grpc", "", "٨٠"]),
    st.none(),
)
probes = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"httpGet": st.fixed_dictionaries({"path": st.just("/h"), "port": ports})},
        optional={"timeoutSeconds": st.integers(1, 5), "periodSeconds": st.integers(1, 5)},
    ),
    st.fixed_dictionaries({"tcpSocket": st.fixed_dictionaries({"port": ports})}),
    st.fixed_dictionaries({"grpc": st.fixed_dictionaries({"port": ports})}),
    st.fixed_dictionaries({"exec": st.just({"command": ["true"]})}),
    st.just({"httpGet": {"port": 1}, "exec": {"command": ["x"]}}),
    st.just("not a probe"),
)
container_ports = st.lists(
    st.fixed_dictionaries(
        {"containerPort": st.integers(1, 65535)},
        optional={"name": st.sampled_from(["http", "grpc"])},
    ),
    max_size=3,
)
containers = st.fixed_dictionaries(
    {"name": names, "image": st.just("img:1")},
    optional={
        "ports": container_ports,
        "livenessProbe": probes,
        "readinessProbe": probes,
        "startupProbe": probes,
        "env": st.lists(
            st.fixed_dictionaries({"name": st.just("A"), "value": st.text(max_size=5)})
        ),
    },
)
string_maps = st.dictionaries(
    st.sampled_from(ANNOTATION_KEYS),
    st.one_of(st.sampled_from(PLAUSIBLE_VALUES), st.text(max_size=20)),
    max_size=4,
)
pods = st.fixed_dictionaries(
    {
        "apiVersion": st.just("v1"),
        "kind": st.just("Pod"),
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["p", "web-1"]),
                "generateName": st.just("web-"),
                "labels": st.dictionaries(
                    st.sampled_from(LABEL_KEYS),
                    st.sampled_from(["true", "false", "maybe", "default", "canary", "v1"]),
                ),
                "annotations": string_maps,
                "managedFields": st.just([{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]),
            },
        ),
        "spec": st.fixed_dictionaries(
            {
                "containers": st.lists(
                    containers, min_size=1, max_size=3, unique_by=lambda c: c["name"]
                )
            },
            optional={
                "initContainers": st.lists(containers, max_size=2),
                "hostNetwork": st.sampled_from([False, False, False, True]),
                "volumes": st.lists(st.fixed_dictionaries({"name": names}), max_size=2),
            },
        ),
    },
    optional={"status": st.just({"phase": "Pending"})},
)
contexts = st.builds(
    InjectionContext,
    namespace=st.sampled_from(
        ["default", "shop", "default", "shop", "kube-system", "mizzen-system"]
    ),
    namespace_labels=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["istio-injection", "istio.io/rev"]),
            st.sampled_from(["enabled", "disabled", "default", "canary", "yes"]),
        ),
    ),
)
configs = st.builds(
    InjectionConfig,
    native_sidecar=st.booleans(),
    hold_application_until_proxy_starts=st.booleans(),
    rewrite_app_http_probers=st.booleans(),
)


def _attempt(
    pod: Any, context: InjectionContext, config: InjectionConfig
) -> InjectionResult | InjectionError:
    """The result, or the InjectionError (any other exception fails the test)."""
    try:
        return inject(pod, context, config)
    except InjectionError as error:
        return error


def _check(pod: dict[str, Any], context: InjectionContext, config: InjectionConfig) -> None:
    before = copy.deepcopy(pod)
    result = _attempt(pod, context, config)
    event("refused" if isinstance(result, InjectionError) else str(result.skip_reason))
    if isinstance(result, InjectionError):
        assert result.field
        assert "\n" not in result.message
        assert pod == before
        return
    assert pod == before, "the input pod was mutated"
    for operation in result.patch:
        assert operation["path"].startswith(("/metadata", "/spec")), operation
        assert not operation["path"].startswith("/metadata/managedFields"), operation
    assert jsonpatch.apply_patch(pod, result.patch) == result.pod
    if not result.injected:
        assert result.pod == pod
        assert result.patch == []
        return
    again = _attempt(result.pod, context, config)
    assert isinstance(again, InjectionResult), again
    assert again.pod == result.pod
    assert again.patch == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod=pods, context=contexts, config=configs)
def test_random_pods_never_crash_and_patch_only_metadata_and_spec(
    pod: dict[str, Any], context: InjectionContext, config: InjectionConfig
) -> None:
    _check(pod, context, config)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "metadata",
                    "spec",
                    "containers",
                    "name",
                    "labels",
                    "annotations",
                    "initContainers",
                    "volumes",
                    "httpGet",
                    "readinessProbe",
                    "port",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(pod=json_values)
def test_arbitrary_json_is_injected_or_refused_with_a_field(pod: Any) -> None:
    result = _attempt(pod, InjectionContext(namespace="default"), InjectionConfig())
    if isinstance(result, InjectionError):
        assert result.field
        return
    assert jsonpatch.apply_patch(pod, result.patch) == result.pod


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(ANNOTATION_KEYS), value=st.text(max_size=40))
def test_any_annotation_value_is_honoured_or_refused_by_name(key: str, value: str) -> None:
    pod = {"metadata": {"annotations": {key: value}}, "spec": {"containers": [{"name": "a"}]}}
    result = _attempt(pod, InjectionContext(namespace="default"), InjectionConfig())
    if isinstance(result, InjectionError):
        assert result.field == key
        return
    assert jsonpatch.apply_patch(pod, result.patch) == result.pod
