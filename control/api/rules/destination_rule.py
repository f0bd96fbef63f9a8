"""DestinationRule rules (Istio's ValidateDestinationRule)."""

from __future__ import annotations

from control.api.models.destination_rule import DestinationRule
from control.api.rules import common
from control.api.rules.context import Findings
from control.api.rules.http_parts import check_subset_name
from control.api.rules.traffic_policy import check_traffic_policy


def _credential_names(spec: DestinationRule) -> list[str]:
    """The paths of the SIMPLE / MUTUAL `tls` settings that name a `credentialName`."""
    found: list[str] = []
    policies = [("spec.trafficPolicy", spec.traffic_policy)]
    policies += [(f"spec.subsets[{i}].trafficPolicy", s.traffic_policy)
                 for i, s in enumerate(spec.subsets)]  # fmt: skip
    for path, policy in policies:
        if policy is None:
            continue
        settings = [(f"{path}.tls", policy.tls)]
        settings += [(f"{path}.portLevelSettings[{i}].tls", p.tls)
                     for i, p in enumerate(policy.port_level_settings)]  # fmt: skip
        for where, tls in settings:
            if tls is not None and tls.credential_name and tls.mode in ("SIMPLE", "MUTUAL"):
                found.append(f"{where}.credentialName")
    return found


def check(spec: DestinationRule, findings: Findings) -> None:
    problem = common.wildcard_domain_error(spec.host or "")
    if spec.host is None:
        findings.error("spec.host", "host is required")
    elif problem:
        findings.error("spec.host", problem)
    if spec.traffic_policy is not None:
        check_traffic_policy(findings, "spec.trafficPolicy", spec.traffic_policy)
    names: set[str] = set()
    for index, subset in enumerate(spec.subsets):
        where = f"spec.subsets[{index}]"
        name = subset.name or ""
        if name in names:
            findings.error(f"{where}.name", f"duplicate subset names: {name}")
        names.add(name)
        check_subset_name(findings, f"{where}.name", name)
        common.check_labels(findings, f"{where}.labels", subset.labels)
        if not subset.labels:
            findings.warn(
                where,
                f"subset {name or '#' + str(index)} has no labels: it selects "
                "every endpoint of the host",
            )
        if subset.traffic_policy is not None:
            check_traffic_policy(findings, f"{where}.trafficPolicy", subset.traffic_policy)
    common.check_export_to(findings, "spec.exportTo", spec.export_to)
    if spec.workload_selector is None:
        for where in _credential_names(spec):
            findings.warn(
                where,
                "applies to sidecars only in a DestinationRule with a workloadSelector (Istio: "
                "otherwise for gateways only); mizzen's sidecars fail these connections closed",
            )
    if spec.workload_selector is not None:
        common.check_selector_labels(
            findings, "spec.workloadSelector.matchLabels", spec.workload_selector.match_labels
        )
        if any(entry != "." for entry in spec.export_to):
            findings.error(
                "spec.exportTo",
                "destination rule with workload selector cannot have "
                "exportTo beyond current namespace",
            )
