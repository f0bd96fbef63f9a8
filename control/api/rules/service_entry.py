"""ServiceEntry rules (Istio's ValidateServiceEntry)."""

from __future__ import annotations

from control.api.errors import shown
from control.api.models.service_entry import ServiceEntry, WorkloadEntry
from control.api.rules import common
from control.api.rules.context import Findings

UNIX_PREFIX = "unix://"


def check(spec: ServiceEntry, findings: Findings) -> None:
    resolution = spec.resolution or "NONE"
    if spec.workload_selector is not None:
        labels = spec.workload_selector.labels
        common.check_selector_labels(findings, "spec.workloadSelector.labels", labels)
        if spec.endpoints:
            findings.error(
                "spec", "only one of WorkloadSelector or Endpoints is allowed in Service Entry"
            )
        if resolution != "STATIC":
            findings.warn(
                "spec.workloadSelector",
                f"workloadSelector should not be set when resolution mode is {resolution}",
            )
    _check_hosts(findings, spec)
    if resolution == "DYNAMIC_DNS":
        findings.warn(
            "spec.resolution",
            "mizzen does not serve DYNAMIC_DNS yet: this ServiceEntry's hosts get no clusters",
        )
    cidr = False
    for index, address in enumerate(spec.addresses):
        cidr = cidr or "/" in address
        problem = common.subnet_error(address)
        if problem:
            findings.error(f"spec.addresses[{index}]", problem)
    if cidr and resolution not in {"NONE", "STATIC"}:
        findings.error(
            "spec.addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types"
        )
    port_names = _check_ports(findings, spec, resolution)
    if resolution == "NONE" and spec.endpoints:
        findings.error("spec.endpoints", "no endpoints should be provided for resolution type none")
    elif resolution in {"DNS", "DNS_ROUND_ROBIN"}:
        if not spec.endpoints:
            for index, host in enumerate(spec.hosts):
                if common.fqdn_error(host):
                    findings.error(
                        f"spec.hosts[{index}]",
                        f"hosts must be FQDN if no endpoints "
                        f"are provided for resolution mode {resolution}",
                    )
        if resolution == "DNS_ROUND_ROBIN" and len(spec.endpoints) > 1:
            findings.error(
                "spec.endpoints",
                f"there must only be 0 or 1 endpoint for resolution mode {resolution}",
            )
    for index, endpoint in enumerate(spec.endpoints):
        _check_endpoint(
            findings,
            f"spec.endpoints[{index}]",
            endpoint,
            port_names,
            ip_only=resolution == "STATIC",
        )
    if resolution != "NONE" and len(spec.hosts) > 1:
        for port in spec.ports:
            protocol = (port.protocol or "").lower()
            if protocol not in common.HTTP_PROTOCOLS | common.TLS_PROTOCOLS:
                findings.error("spec.hosts", "multiple hosts provided with non-HTTP, non-TLS ports")
                break
    common.check_export_to(findings, "spec.exportTo", spec.export_to, service_entry=True)


def _check_hosts(findings: Findings, spec: ServiceEntry) -> None:
    if not spec.hosts:
        findings.error("spec.hosts", "service entry must have at least one host")
    for index, host in enumerate(spec.hosts):
        where = f"spec.hosts[{index}]"
        if host == "*":
            findings.error(where, "invalid host *")
            continue
        problem = common.wildcard_domain_error(host)
        if problem:
            findings.error(where, problem)
        elif host.startswith("*") and not host.startswith("*."):
            findings.warn(where, f"partial wildcard {shown(host)} not allowed")


def _check_ports(findings: Findings, spec: ServiceEntry, resolution: str) -> set[str]:
    names: set[str] = set()
    numbers: set[int] = set()
    for index, port in enumerate(spec.ports):
        where = f"spec.ports[{index}]"
        name, number = port.name or "", port.number or 0
        if name in names:
            findings.error(
                f"{where}.name", f"service entry port name {shown(name)} already defined"
            )
        if number in numbers:
            findings.error(f"{where}.number", f"service entry port {number} already defined")
        names.add(name)
        numbers.add(number)
        if port.target_port:
            common.check_port(findings, f"{where}.targetPort", port.target_port)
            if resolution == "NONE":
                findings.warn(
                    f"{where}.targetPort", "targetPort has no effect when resolution mode is NONE"
                )
        if not spec.addresses and (port.protocol or "TCP").upper() == "TCP":
            findings.warn(
                where,
                "addresses are required for ports serving TCP (or unset) "
                "protocol when ISTIO_META_DNS_AUTO_ALLOCATE is not set on a proxy",
            )
        common.check_port_name(findings, f"{where}.name", name)
        common.check_protocol(findings, f"{where}.protocol", port.protocol)
        common.check_port(findings, f"{where}.number", number)
    return names


def _check_endpoint(
    findings: Findings, path: str, endpoint: WorkloadEntry, port_names: set[str], *, ip_only: bool
) -> None:
    address = endpoint.address or ""
    if not address:
        if not endpoint.network:
            findings.error(f"{path}.address", "address is required")
        else:
            findings.warn(
                f"{path}.address", f"address is unset with network {shown(endpoint.network)}"
            )
    elif address.startswith(UNIX_PREFIX):
        common.check_unix_address(findings, f"{path}.address", address[len(UNIX_PREFIX) :])
        if endpoint.ports:
            findings.error(
                f"{path}.ports", f"unix endpoint {shown(address)} must not include ports"
            )
        if len(port_names) != 1:
            findings.error(path, "exactly 1 service port required for unix endpoints")
    elif not common.is_ip(address):
        if ip_only:
            findings.error(
                f"{path}.address", f"endpoint address {shown(address)} is not a valid IP address"
            )
        elif common.fqdn_error(address):
            findings.error(
                f"{path}.address",
                f"endpoint address {shown(address)} is not a valid FQDN or an IP address",
            )
    for name, port in endpoint.ports.items():
        where = f"{path}.ports[{name}]"
        if name not in port_names:
            findings.error(where, f"endpoint port {port} is not defined by the service entry")
        common.check_port_name(findings, where, name)
        common.check_port(findings, where, port)
    common.check_labels(findings, f"{path}.labels", endpoint.labels)
