"""Every name and port one part of the install uses to find another, tied: the injector's
discovery address and the webhooks to the Service, the Service to the container, the container's
arguments to `mizzen control` and to its mounts, the settings to their readers, the ConfigMap and
token audience the injected pods mount to the control plane's, RBAC to the calls it makes."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import yaml

from control.cli import control_cmd
from control.cli.ca_wiring import ca_settings
from control.cli.webhook_certs import webhook_names
from control.config.mesh_config import MeshConfig
from control.install import names as install_names
from control.install.names import Names
from control.install.values import InstallValues, values_from
from control.plane.kube.reflector import WATCHED_KINDS
from injector import InjectionConfig, contract
from injector.inject import inject
from injector.model import InjectionContext
from tests.install.rbac_check import Request, allowed
from tests.install.rendered import container, one, rendered

REVISIONS = [(), ("revision=canary", "namespace=mesh", "trustDomain=example.org")]


def _objects(sets: tuple[str, ...]) -> tuple[InstallValues, list[dict[str, Any]]]:
    values = values_from(sets)
    return values, rendered(*sets)


def _control_args(objects: list[dict[str, Any]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    control_cmd.configure(parser)
    args = container(objects)["args"]
    assert args[0] == "control"
    return parser.parse_args(args[1:])


def _service_port(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [port] = [p for p in one(objects, "Service")["spec"]["ports"] if p["name"] == name]
    return port


def _container_port(objects: list[dict[str, Any]], number: int) -> None:
    assert number in {p["containerPort"] for p in container(objects)["ports"]}


def _injection(objects: list[dict[str, Any]], values: InstallValues) -> InjectionConfig:
    data = one(objects, "ConfigMap", Names.of(values).injection_config)["data"]
    return InjectionConfig.from_mapping(yaml.safe_load(data[install_names.INJECTION_CONFIG_KEY]))


def test_the_default_install_is_the_injectors_default() -> None:
    """The injector's built-in defaults (what `mizzen inject` and tests use) describe the default
    install exactly: its discovery address, namespace, revision, root ConfigMap, audience."""
    values, objects = _objects(())
    assert _injection(objects, values) == InjectionConfig()


@pytest.mark.parametrize("sets", REVISIONS)
def test_the_discovery_address_reaches_the_secure_port(sets: tuple[str, ...]) -> None:
    values, objects = _objects(sets)
    injection = _injection(objects, values)
    service = one(objects, "Service")
    host, port = injection.discovery_address.rsplit(":", 1)
    assert host == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    xds = _service_port(objects, "grpc-xds-tls")
    assert int(port) == xds["port"] == 15012
    _container_port(objects, xds["targetPort"])
    args = _control_args(objects)
    assert xds["targetPort"] == args.secure_port
    # The CA's own port (CA_ADDR of the proxies), and the names its certificates carry.
    ca_host, ca_port = injection.ca_address.rsplit(":", 1)
    assert ca_host == host
    ca = _service_port(objects, "grpc-ca-tls")
    assert int(ca_port) == ca["port"] == ca["targetPort"] == args.ca_port == 15013
    _container_port(objects, args.ca_port)
    assert host == f"{args.service_name}.{args.ca_namespace}.svc"
    assert args.trust_domain == injection.trust_domain
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize("sets", REVISIONS)
def test_the_webhooks_reach_the_webhook_server(sets: tuple[str, ...]) -> None:
    values, objects = _objects(sets)
    service = one(objects, "Service")
    https = _service_port(objects, "https-webhook")
    args = _control_args(objects)
    assert https["targetPort"] == args.webhook_port
    _container_port(objects, args.webhook_port)
    assert args.webhook_cert_dir is not None  # the mesh CA issues the webhooks' certificate
    assert args.tls_cert is None
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for webhook in one(objects, kind)["webhooks"]:
            reference = webhook["clientConfig"]["service"]
            assert reference["name"] == service["metadata"]["name"]
            assert reference["namespace"] == service["metadata"]["namespace"] == values.namespace
            assert reference["port"] == https["port"]


@pytest.mark.parametrize("sets", REVISIONS)
def test_what_mizzen_control_derives_from_its_arguments_names_the_rendered_objects(
    sets: tuple[str, ...],
) -> None:
    """The composition root's own derivations (`control_cmd`): the leader's names (Lease, the
    webhook configurations it patches) and the DNS names of the webhooks' certificate (the API
    server checks them against the Service it calls)."""
    values, objects = _objects(sets)
    args = _control_args(objects)
    settings = ca_settings(args, kube=True)
    derived = Names(settings.namespace, args.revision)  # as control_cmd makes LeaderConfig's
    assert derived == Names.of(values)
    assert one(objects, "MutatingWebhookConfiguration", derived.mutating_webhook)
    assert one(objects, "ValidatingWebhookConfiguration", derived.validating_webhook)
    service = one(objects, "Service")["metadata"]
    assert f"{service['name']}.{service['namespace']}.svc" in webhook_names(settings)
    request = Request("update", "coordination.k8s.io", "leases", settings.namespace, derived.lease)
    assert allowed(objects, derived.control_plane, values.namespace, request)


@pytest.mark.parametrize("sets", REVISIONS)
def test_the_arguments_are_mizzen_controls_and_their_files_are_mounted(
    sets: tuple[str, ...],
) -> None:
    values, objects = _objects(sets)
    args = _control_args(objects)  # the real parser: an unknown flag fails here
    assert args.kube
    control = container(objects)
    volumes = {
        v["name"]: v for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    mounts = {m["mountPath"]: m for m in control["volumeMounts"]}
    names = Names.of(values)
    for path, config_map, key in (
        (args.mesh_config, names.mesh_config, install_names.MESH_CONFIG_KEY),
        (args.injection_config, names.injection_config, install_names.INJECTION_CONFIG_KEY),
    ):
        mount = mounts[str(path.parent)]
        assert volumes[mount["name"]]["configMap"]["name"] == config_map
        assert path.name == key
        assert key in one(objects, "ConfigMap", config_map)["data"]
    mount = mounts[str(args.webhook_cert_dir)]  # the replica writes its own pair there
    assert not mount.get("readOnly")
    assert "emptyDir" in volumes[mount["name"]]
    assert control["readinessProbe"]["httpGet"]["port"] == args.debug_port
    assert _service_port(objects, "http-monitoring")["targetPort"] == args.debug_port
    assert args.xds_port not in {p["targetPort"] for p in one(objects, "Service")["spec"]["ports"]}


@pytest.mark.parametrize("sets", REVISIONS)
def test_the_mesh_config_names_the_install_namespace_as_root(sets: tuple[str, ...]) -> None:
    values, objects = _objects(sets)
    data = one(objects, "ConfigMap", Names.of(values).mesh_config)["data"]
    mesh = MeshConfig.from_mapping(yaml.safe_load(data[install_names.MESH_CONFIG_KEY]))
    assert mesh.root_namespace == values.namespace
    injection = _injection(objects, values)
    assert (mesh.trust_domain, mesh.cluster_domain) == (
        injection.trust_domain, injection.cluster_domain,
    )  # fmt: skip
    assert injection.mesh_namespace == values.namespace
    assert injection.revision == values.revision


@pytest.mark.parametrize("sets", REVISIONS)
def test_injected_pods_mount_what_the_control_plane_provides(sets: tuple[str, ...]) -> None:
    values, objects = _objects(sets)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"containers": [{"name": "web", "image": "web:1"}]}}  # fmt: skip
    result = inject(pod, InjectionContext("shop"), _injection(objects, values))
    assert result.injected
    volumes = {v["name"]: v for v in result.pod["spec"]["volumes"]}
    root = volumes[contract.ROOT_CERT_VOLUME]["configMap"]["name"]
    assert root == install_names.ROOT_CERT_CONFIG_MAP  # what the leader writes in every namespace
    assert contract.ROOT_CERT_KEY == install_names.ROOT_CERT_KEY
    [source] = volumes[contract.TOKEN_VOLUME]["projected"]["sources"]
    # The CA, as the Deployment's arguments configure it, accepts the pods' tokens.
    ca = ca_settings(_control_args(objects), kube=True)
    assert source["serviceAccountToken"]["audience"] == ca.token_audience
    assert ca.token_audience == install_names.TOKEN_AUDIENCE
    assert ca.namespace == values.namespace
    assert ca.trust_domain == values.trust_domain
    [proxy] = [c for c in [*result.pod["spec"].get("initContainers", []),
                           *result.pod["spec"]["containers"]]
               if c["name"] == contract.PROXY_CONTAINER_NAME]  # fmt: skip
    assert proxy["image"] == values.image
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env[contract.ENV_DISCOVERY_ADDRESS] == Names.of(values).discovery_address(15012)
    assert env[contract.ENV_CA_ADDRESS] == Names.of(values).discovery_address(15013)


@pytest.mark.parametrize("sets", REVISIONS)
def test_rbac_grants_every_watched_kind(sets: tuple[str, ...]) -> None:
    values, objects = _objects(sets)
    names = Names.of(values)
    for kind in WATCHED_KINDS:
        for verb in ("list", "watch"):
            request = Request(verb, kind.group, kind.plural)
            assert allowed(objects, names.control_plane, values.namespace, request), request


@pytest.mark.parametrize("sets", REVISIONS)
def test_rbac_grants_no_more_than_needed(sets: tuple[str, ...]) -> None:
    """What the control plane must not be able to do (what it does is replayed against the fake
    API server: `test_rbac_calls.py`, `test_installed_process.py`)."""
    values, objects = _objects(sets)
    account, namespace = Names.of(values).control_plane, values.namespace

    def may(request: Request) -> bool:
        return allowed(objects, account, namespace, request)

    assert may(Request("create", "", "secrets", namespace))
    assert not may(Request("get", "", "secrets", "shop", "db-password"))
    # DestinationRule credentialName: Secrets are listed and watched (the code asks for one
    # name at a time; RBAC cannot narrow to names users choose later), never read or changed
    # otherwise.
    assert may(Request("watch", "", "secrets", "shop"))
    assert not may(Request("update", "", "secrets", "shop", "db-password"))
    assert not may(Request("delete", "", "secrets", namespace, "mizzen-ca"))
    assert not may(Request("delete", "", "secrets", namespace, "mizzen-ca"))
    assert not may(Request("create", "", "pods", "shop"))
    assert not may(Request("delete", "", "configmaps", "shop", "mizzen-ca-root-cert"))
    assert not may(Request("patch", "admissionregistration.k8s.io",
                           "mutatingwebhookconfigurations", "", "someone-elses"))  # fmt: skip
    assert not may(Request("update", "coordination.k8s.io", "leases", "kube-system", "x"))
    other = "mizzen-other"
    assert not allowed(objects, other, namespace, Request("list", "", "pods"))
