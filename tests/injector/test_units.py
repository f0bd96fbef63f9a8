"""Unit tests of the injector's parts: workload names, quantities, the decision table, the
contract's names in the injected pod, and the pruned diff."""

from __future__ import annotations

import copy
import json
import time
from decimal import Decimal
from typing import Any

import jsonpatch
import pytest
from pydantic import ValidationError

from injector import (
    InjectionConfig,
    InjectionContext,
    InjectionError,
    SkipReason,
    contract,
    inject,
    workload_name,
)
from injector.patch import make_patch
from injector.quantity import parse_quantity


def _pod(
    labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (
            {
                "generateName": "reviews-v1-5c7b9d6f8-",
                "labels": {"pod-template-hash": "5c7b9d6f8"},
                "ownerReferences": [
                    {"kind": "ReplicaSet", "name": "reviews-v1-5c7b9d6f8", "controller": True}
                ],
            },
            "reviews-v1",
        ),
        ({"ownerReferences": [{"kind": "ReplicaSet", "name": "standalone"}]}, "standalone"),
        ({"ownerReferences": [{"kind": "Job", "name": "backup-29012345"}]}, "backup"),
        ({"ownerReferences": [{"kind": "Job", "name": "migrate"}]}, "migrate"),
        ({"ownerReferences": [{"kind": "StatefulSet", "name": "db"}]}, "db"),
        ({"ownerReferences": [{"kind": "DaemonSet", "name": "agent"}]}, "agent"),
        (
            {
                "ownerReferences": [
                    {"kind": "Other", "name": "not-the-controller"},
                    {"kind": "StatefulSet", "name": "the-controller", "controller": True},
                ]
            },
            "the-controller",
        ),
        ({"name": "bare"}, "bare"),
        ({"generateName": "stem-"}, "stem"),
        ({}, None),
        ({"ownerReferences": "garbage", "generateName": 3}, None),
    ],
)
def test_workload_name(metadata: dict[str, Any], expected: str | None) -> None:
    assert workload_name({"metadata": metadata}) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("0.5", Decimal("0.5")),
        ("128Mi", Decimal(128 * 2**20)),
        ("1e3", Decimal(1000)),
        ("1.5Gi", Decimal(3 * 2**29)),
        (".5", Decimal("0.5")),
    ],
)
def test_quantities(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", " 1", "1 ", "-1", "+1", "1Kb", "\u0661", "1_000", "1e", "m", "0x10"]
)
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sidecar.istio.io/proxyImage", "nginx:1\n"),
        ("sidecar.istio.io/proxyCPU", "100m\n"),
        ("sidecar.istio.io/proxyMemoryLimit", "1Gi\n"),
        ("proxy.istio.io/config", '{"proxyMetadata": {"FOO\\n": "x"}}'),
        ("proxy.istio.io/config", '{"terminationDrainDuration": "5s\\n"}'),
        ("proxy.istio.io/config", '{"proxyMetadata": {"FOO": "a\\u0000b"}}'),
    ],
)
def test_a_trailing_newline_or_nul_is_refused(key: str, value: str) -> None:
    """`$` in a Python regex also matches before a final newline: values are matched whole."""
    with pytest.raises(InjectionError) as raised:
        inject(_pod(annotations={key: value}), InjectionContext("shop"), InjectionConfig())
    assert raised.value.field == key


@pytest.mark.parametrize(
    "value",
    ["fe80::%x\n-A OUTPUT -j ACCEPT /10", "fe80::%eth0/10", "10.0.0.0/8,fe80::1%lo/64",
     "10.0.0.0/8 -j ACCEPT", "::ffff:10.0.0.0%0/104"],
)  # fmt: skip
@pytest.mark.parametrize(
    "key",
    ["traffic.sidecar.istio.io/excludeOutboundIPRanges",
     "traffic.sidecar.istio.io/includeOutboundIPRanges"],
)  # fmt: skip
def test_zone_ids_and_stray_text_in_ip_ranges_are_refused(key: str, value: str) -> None:
    """Such a value would otherwise reach the init container's argv (and iptables)."""
    with pytest.raises(InjectionError) as raised:
        inject(_pod(annotations={key: value}), InjectionContext("shop"), InjectionConfig())
    assert raised.value.field == key
    assert "is not a CIDR" in str(raised.value)


ENABLED = {"istio-injection": "enabled"}
DISABLED = {"istio-injection": "disabled"}
INJECT = "sidecar.istio.io/inject"


@pytest.mark.parametrize(
    ("namespace_labels", "labels", "annotations", "expected"),
    [
        (ENABLED, {}, {}, None),
        (None, {}, {}, None),  # the webhook's selectors chose the pod
        (None, {INJECT: "false"}, {}, SkipReason.POD_OPTED_OUT),
        (ENABLED, {INJECT: "false"}, {}, SkipReason.POD_OPTED_OUT),
        (ENABLED, {}, {INJECT: "false"}, SkipReason.POD_OPTED_OUT),
        (ENABLED, {INJECT: "true"}, {INJECT: "false"}, None),  # the label wins
        # Only exactly "true"/"false" count (Istio >= 1.27): other spellings are ignored.
        (ENABLED, {INJECT: "n"}, {}, None),
        (ENABLED, {INJECT: "no"}, {}, None),
        (ENABLED, {INJECT: "False"}, {}, None),
        (ENABLED, {INJECT: "no"}, {INJECT: "false"}, None),  # a present label hides the annotation
        (ENABLED, {INJECT: "garbage"}, {}, None),  # a warning, the default applies
        (DISABLED, {INJECT: "true"}, {}, SkipReason.NAMESPACE_DISABLED),
        ({}, {}, {}, SkipReason.NAMESPACE_NOT_ENABLED),
        ({}, {INJECT: "true"}, {}, None),
        ({}, {INJECT: "yes"}, {}, SkipReason.NAMESPACE_NOT_ENABLED),
        ({}, {INJECT: "True"}, {}, SkipReason.NAMESPACE_NOT_ENABLED),
        ({}, {}, {INJECT: "true"}, SkipReason.NAMESPACE_NOT_ENABLED),
        ({"istio.io/rev": "default"}, {}, {}, None),
        ({"istio.io/rev": "canary"}, {INJECT: "true"}, {}, SkipReason.REVISION_MISMATCH),
        ({"istio-injection": "enabled", "istio.io/rev": "canary"}, {}, {}, None),
        ({}, {"istio.io/rev": "default"}, {}, None),
        ({}, {"istio.io/rev": "canary"}, {}, SkipReason.REVISION_MISMATCH),
        ({"istio-injection": "on"}, {INJECT: "true"}, {}, SkipReason.NAMESPACE_NOT_ENABLED),
    ],
)
def test_decision_table(
    namespace_labels: dict[str, str] | None,
    labels: dict[str, str],
    annotations: dict[str, str],
    expected: SkipReason | None,
) -> None:
    context = InjectionContext(namespace="shop", namespace_labels=namespace_labels)
    result = inject(_pod(labels, annotations), context, InjectionConfig())
    assert result.skip_reason == expected
    assert result.explanation


@pytest.mark.parametrize(
    "namespace", ["kube-system", "kube-public", "kube-node-lease", "local-path-storage", "mesh"]
)
def test_never_injected_namespaces(namespace: str) -> None:
    config = InjectionConfig(mesh_namespace="mesh")
    pod = _pod({INJECT: "true"})
    result = inject(pod, InjectionContext(namespace=namespace), config)
    assert result.skip_reason is SkipReason.IGNORED_NAMESPACE
    assert result.pod == pod


def test_an_empty_inject_value_is_no_say_without_a_warning() -> None:
    result = inject(_pod({INJECT: ""}), InjectionContext("shop"), InjectionConfig())
    assert result.injected
    assert result.warnings == ()
    skipped = inject(_pod({INJECT: ""}), InjectionContext("shop", {}), InjectionConfig())
    assert skipped.skip_reason is SkipReason.NAMESPACE_NOT_ENABLED


def test_invalid_inject_value_warns() -> None:
    result = inject(_pod({INJECT: "maybe"}), InjectionContext("shop"), InjectionConfig())
    assert result.injected
    assert any("maybe" in warning for warning in result.warnings)


def test_injected_pod_speaks_the_contract() -> None:
    pod = _pod({"app": "shop"})
    pod["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/r", "port": 8080}}
    result = inject(pod, InjectionContext("shop", workload_name="shop-v1"), InjectionConfig())
    init, proxy = result.pod["spec"]["initContainers"]
    assert init["name"] == contract.INIT_CONTAINER_NAME
    assert init["command"] == list(contract.INIT_COMMAND)
    assert init["securityContext"]["capabilities"] == {
        "add": ["NET_ADMIN", "NET_RAW"],
        "drop": ["ALL"],
    }
    assert proxy["command"] == list(contract.PROXY_COMMAND)
    assert proxy["restartPolicy"] == "Always"
    env = {item["name"]: item for item in proxy["env"]}
    assert env[contract.ENV_WORKLOAD_NAME]["value"] == "shop-v1"
    probes = json.loads(env[contract.ENV_APP_PROBES]["value"])
    assert probes == {"/app-health/app/readyz": {"httpGet": {"path": "/r", "port": 8080}}}
    assert json.loads(env[contract.ENV_LABELS]["value"])["app"] == "shop"
    assert env[contract.ENV_POD_NAME]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    mounts = {m["name"]: m["mountPath"] for m in proxy["volumeMounts"]}
    assert mounts[contract.TOKEN_VOLUME] == contract.TOKEN_DIR
    volumes = {v["name"]: v for v in result.pod["spec"]["volumes"]}
    token = volumes[contract.TOKEN_VOLUME]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "mizzen-ca"
    status = json.loads(result.pod["metadata"]["annotations"][contract.STATUS_ANNOTATION])
    assert status["initContainers"] == ["mizzen-init", "mizzen-proxy"]


def _proxy_env(pod: dict[str, Any], config: InjectionConfig) -> list[dict[str, Any]]:
    result = inject(pod, InjectionContext("shop", workload_name="shop-v1"), config)
    proxy = result.pod["spec"]["initContainers"][1]
    env: list[dict[str, Any]] = proxy["env"]
    return env


def test_the_proxy_is_pointed_at_the_ca_port_unless_the_pod_says_otherwise() -> None:
    env = _proxy_env(_pod(), InjectionConfig(caAddress="ca.example:8443"))
    assert {"name": contract.ENV_CA_ADDRESS, "value": "ca.example:8443"} in env
    assert {"name": "CA_ADDR", "value": "mizzen.mizzen-system.svc:15013"} in _proxy_env(
        _pod(), InjectionConfig()
    )
    assert all(
        item["name"] != "CA_ADDR" for item in _proxy_env(_pod(), InjectionConfig(caAddress=""))
    )
    own = '{"proxyMetadata": {"CA_ADDR": "my-ca.shop:15013"}}'
    pinned = _proxy_env(_pod(annotations={"proxy.istio.io/config": own}), InjectionConfig())
    assert [item for item in pinned if item["name"] == "CA_ADDR"] == [
        {"name": "CA_ADDR", "value": "my-ca.shop:15013"}
    ]


def test_proxy_image_annotation_never_reaches_the_init_container() -> None:
    pod = _pod(annotations={"sidecar.istio.io/proxyImage": "evil.example/root:1"})
    result = inject(pod, InjectionContext("shop"), InjectionConfig(init_image="mesh/init:1"))
    init, proxy = result.pod["spec"]["initContainers"]
    assert init["image"] == "mesh/init:1"
    assert proxy["image"] == "evil.example/root:1"


def test_a_foreign_status_annotation_is_refused() -> None:
    pod = _pod(annotations={contract.STATUS_ANNOTATION: "[1, 2]"})
    with pytest.raises(InjectionError) as raised:
        inject(pod, InjectionContext("shop"), InjectionConfig())
    assert raised.value.field == contract.STATUS_ANNOTATION


def test_yaml_alias_bombs_are_refused() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    pod = _pod(annotations={"proxy.istio.io/config": bomb})
    with pytest.raises(InjectionError, match="aliases"):
        inject(pod, InjectionContext("shop"), InjectionConfig())


def _big_pod() -> dict[str, Any]:
    pod = _pod({"app": "big"}, {"last": "x" * 100_000})
    pod["metadata"]["managedFields"] = [
        {"manager": f"m{i}", "fieldsV1": {"f:a": {}}} for i in range(500)
    ]
    env = [{"name": f"V{i}", "value": str(i)} for i in range(3000)]
    pod["spec"]["containers"].append({"name": "second", "image": "s:1", "env": env})
    pod["spec"]["containers"][0]["livenessProbe"] = {"tcpSocket": {"port": 80}}
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "s:1", "env": env[:10]}]
    pod["spec"]["volumes"] = [{"name": f"v{i}", "emptyDir": {}} for i in range(100)]
    pod["status"] = {"phase": "Pending"}
    return pod


def test_the_pruned_diff_equals_a_full_diff_in_effect() -> None:
    pod = _big_pod()
    result = inject(pod, InjectionContext("shop"), InjectionConfig())
    full = jsonpatch.make_patch(
        {"metadata": pod["metadata"], "spec": pod["spec"]},
        {"metadata": result.pod["metadata"], "spec": result.pod["spec"]},
    )
    assert jsonpatch.apply_patch(pod, result.patch) == jsonpatch.apply_patch(pod, full.patch)
    assert jsonpatch.apply_patch(pod, result.patch) == result.pod
    paths = [op["path"] for op in result.patch]
    assert not any(p.startswith(("/status", "/metadata/managedFields")) for p in paths)
    assert "\x00" not in json.dumps(result.patch)


def test_the_pruned_diff_on_a_deep_copy_has_no_shared_objects() -> None:
    """Without shared objects nothing is pruned; the diff is still right."""
    pod = _big_pod()
    result = inject(pod, InjectionContext("shop"), InjectionConfig())
    patch = make_patch(pod, copy.deepcopy(result.pod))
    assert jsonpatch.apply_patch(pod, patch) == result.pod


def test_aliased_subtrees_are_restored_in_patch_values() -> None:
    shared = {"name": "x", "value": "y"}
    src = {"spec": {"a": [shared], "b": []}}
    dst = {"spec": {"a": [shared], "b": [shared, shared]}}
    patch = make_patch(src, dst)
    assert jsonpatch.apply_patch(src, patch) == dst
    assert "\x00" not in json.dumps(patch)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"proxyUID": -1}, "proxyUID"),
        ({"proxyGid": 2**31}, "proxyGid"),
        ({"proxyImage": "reg.example/p:1\n"}, "proxyImage"),
        ({"initImage": "a b"}, "initImage"),
        ({"imagePullPolicy": "Sometimes"}, "imagePullPolicy"),
        ({"proxyCpu": "1x"}, "proxyCpu"),
        ({"proxyMemoryLimit": "-1Gi"}, "proxyMemoryLimit"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        InjectionConfig.from_mapping(data)
    assert raised.value.errors()[0]["loc"] == (field,)


def test_settings_spell_the_proxy_ids_as_istio_does() -> None:
    config = InjectionConfig.from_mapping({"proxyUID": 1000, "proxyGID": 2000, "proxyCpu": ""})
    assert (config.proxy_uid, config.proxy_gid) == (1000, 2000)
    init = inject(_pod(), InjectionContext("shop"), config).pod["spec"]["initContainers"][0]
    assert "--proxy-uid=1000" in init["args"]
    assert "--proxy-gid=2000" in init["args"]
    assert "cpu" not in init["resources"]["requests"]


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": ' * 40 + "1" + "}" * 40])
def test_a_deeply_nested_proxy_config_is_refused_by_name(text: str) -> None:
    pod = _pod(annotations={"proxy.istio.io/config": text})
    with pytest.raises(InjectionError, match="nested") as raised:
        inject(pod, InjectionContext("shop"), InjectionConfig())
    assert raised.value.field == "proxy.istio.io/config"


def test_a_huge_port_list_is_handled_in_linear_time() -> None:
    """40,000 ports (an annotation near Kubernetes' 256 KiB limit) took 18 s when each port was
    looked up in a list; the webhook has 10 s."""
    ports = ",".join(str(port) for port in range(1, 40_000))
    pod = _pod(annotations={"traffic.sidecar.istio.io/excludeInboundPorts": ports})
    start = time.perf_counter()
    result = inject(pod, InjectionContext("shop"), InjectionConfig())
    assert time.perf_counter() - start < 3
    args = result.pod["spec"]["initContainers"][0]["args"]
    excluded = next(a for a in args if a.startswith("--exclude-inbound-ports="))
    assert excluded.startswith("--exclude-inbound-ports=15090,15021,15020,1,2,3,")
    assert excluded.count(",15020,") == 1
