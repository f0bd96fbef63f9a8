"""The install's values: `--set` keys checked against the model (a typo is named, never
ignored), values typed by the model, shortcuts winning."""

from __future__ import annotations

import pytest

from control.install.values import InstallValues, ValuesError, parse_sets, values_from


def test_defaults_are_the_mesh_namespace_and_default_revision() -> None:
    values = InstallValues()
    assert (values.namespace, values.revision) == ("mizzen-system", "default")
    assert values.control_plane.replicas == 2


def test_sets_are_typed_by_the_model() -> None:
    values = values_from([
        "controlPlane.replicas=3",
        "proxy.nativeSidecar=false",
        "mesh.outboundTrafficPolicy.mode=REGISTRY_ONLY",
        "controlPlane.resources.memoryLimit=4Gi",
        "addons=prometheus,grafana",
    ])  # fmt: skip
    assert values.control_plane.replicas == 3
    assert values.proxy.native_sidecar is False
    assert values.mesh.outbound_traffic_policy.mode == "REGISTRY_ONLY"
    assert values.control_plane.resources.memory_limit == "4Gi"
    assert values.addons == ("prometheus", "grafana")


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("controlPlane.replica=3", "unknown key 'controlPlane.replica'"),
        ("nope=1", "unknown key 'nope'"),
        ("controlPlane=3", "'controlPlane' is a group of keys"),
        ("revision.name=x", "'revision' is a value"),
        ("replicas", "expected key=value"),
        ("=3", "expected key=value"),
    ],
)
def test_bad_keys_are_named(pair: str, message: str) -> None:
    with pytest.raises(ValuesError, match=message):
        parse_sets([pair])


@pytest.mark.parametrize(
    ("pair", "where"),
    [
        ("controlPlane.replicas=0", "controlPlane.replicas"),
        ("controlPlane.replicas=many", "controlPlane.replicas"),
        ("revision=Canary", "revision"),
        ("namespace=a_b", "namespace"),
        ("image=not an image", "image"),
        ("proxy.cpu=lots", "proxy.cpu"),
        ("webhook.failurePolicy=Sometimes", "webhook.failurePolicy"),
        ("trustDomain=-bad-", "trustDomain"),
    ],
)
def test_bad_values_name_their_key(pair: str, where: str) -> None:
    with pytest.raises(ValuesError) as error:
        values_from([pair])
    assert str(error.value).startswith(f"{where}: ")
    assert "Value error," not in str(error.value)


def test_shortcut_flags_win_over_sets() -> None:
    values = values_from(["revision=a", "image=x/y:1"], revision="b", image=None)
    assert (values.revision, values.image) == ("b", "x/y:1")


def test_values_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        InstallValues().namespace = "x"  # type: ignore[misc]
